"""Tests for json_tensor: formats, dtypes, upstream's rules and error texts,
and the differential test that holds the decode paths to one result."""

import base64
import json
import math
import struct

from absl.testing import absltest
import hypothesis
from hypothesis import strategies as st
import tensorflow as tf

from tensorflow.core.framework import types_pb2
from tensorflow.core.protobuf import meta_graph_pb2
from tensorflow_serving.apis import classification_pb2
from tensorflow_serving.apis import predict_pb2
from tensorflow_serving.apis import regression_pb2
from tensorflow_serving.util import json_tensor
from tensorflow_serving.util import status
from tensorflow_serving.util import tensor_codec

DT = types_pb2.DataType
ROW = json_tensor.JsonPredictRequestFormat.ROW
COLUMNAR = json_tensor.JsonPredictRequestFormat.COLUMNAR


def _infos(**dtypes):
  out = {}
  for name, dtype in dtypes.items():
    out[name] = meta_graph_pb2.TensorInfo(dtype=dtype)
  return out


class PredictRequestTest(absltest.TestCase):

  def parse(self, body, **dtypes):
    request = predict_pb2.PredictRequest()
    seen = []

    def getter(signature_name):
      seen.append(signature_name)
      return _infos(**dtypes)

    fmt = json_tensor.fill_predict_request_from_json(body, getter, request)
    arrays = {name: tensor_codec.tensor_proto_to_ndarray(t)
              for name, t in request.inputs.items()}
    return fmt, arrays, request, seen

  def assertError(self, body, message, code=status.Code.INVALID_ARGUMENT,
                  **dtypes):
    with self.assertRaises(status.ServingError) as cm:
      self.parse(body, **dtypes)
    self.assertEqual(cm.exception.code, code)
    self.assertEqual(cm.exception.message, message)

  def test_row_format_single_input_stacks_rows(self):
    fmt, arrays, request, seen = self.parse(
        '{"signature_name": "sig", "instances": [[1, 2.5], [3, 4]]}',
        x=DT.DT_FLOAT)
    self.assertEqual(fmt, ROW)
    self.assertEqual(seen, ["sig"])
    self.assertEqual(request.model_spec.signature_name, "sig")
    self.assertEqual(arrays["x"].dtype.name, "float32")
    self.assertEqual(arrays["x"].tolist(), [[1, 2.5], [3, 4]])
    self.assertEqual(request.inputs["x"].dtype, DT.DT_FLOAT)

  def test_row_format_scalars_become_a_vector(self):
    _, arrays, _, seen = self.parse('{"instances": [1.0, 2.0, 5.0]}',
                                    x=DT.DT_FLOAT)
    self.assertEqual(seen, [""])
    self.assertEqual(arrays["x"].tolist(), [1, 2, 5])

  def test_row_format_named_inputs(self):
    _, arrays, _, _ = self.parse(
        '{"instances": [{"a": [1, 2], "b": "x"}, {"a": [3, 4], "b": "y"}]}',
        a=DT.DT_INT64, b=DT.DT_STRING)
    self.assertEqual(arrays["a"].tolist(), [[1, 2], [3, 4]])
    self.assertEqual(arrays["a"].dtype.name, "int64")
    self.assertEqual(arrays["b"].tolist(), [b"x", b"y"])

  def test_b64_strings(self):
    data = base64.b64encode(b"\x00\xffbin").decode()
    _, arrays, _, _ = self.parse(
        json.dumps({"instances": [{"b64": data}, "plain"]}), s=DT.DT_STRING)
    self.assertEqual(arrays["s"].tolist(), [b"\x00\xffbin", b"plain"])
    _, arrays, _, _ = self.parse(
        json.dumps({"inputs": {"b64": data}}), s=DT.DT_STRING)
    self.assertEqual(arrays["s"].tolist(), b"\x00\xffbin")

  def test_columnar_format_keeps_each_shape(self):
    fmt, arrays, _, _ = self.parse(
        '{"inputs": {"a": [[1, 2, 3]], "b": true, "c": [7]}}',
        a=DT.DT_INT32, b=DT.DT_BOOL, c=DT.DT_UINT8)
    self.assertEqual(fmt, COLUMNAR)
    self.assertEqual(arrays["a"].shape, (1, 3))
    self.assertEqual(arrays["b"].shape, ())
    self.assertTrue(arrays["b"])
    self.assertEqual(arrays["c"].dtype.name, "uint8")

  def test_columnar_single_input_plain_value(self):
    _, arrays, _, _ = self.parse('{"inputs": [[1, 2], [3, 4]]}',
                                 x=DT.DT_DOUBLE)
    self.assertEqual(arrays["x"].dtype.name, "float64")
    self.assertEqual(arrays["x"].shape, (2, 2))

  def test_nan_and_infinity_tokens(self):
    _, arrays, _, _ = self.parse('{"instances": [NaN, Infinity, -Infinity]}',
                                 x=DT.DT_FLOAT)
    self.assertTrue(math.isnan(arrays["x"][0]))
    self.assertEqual(arrays["x"][1:].tolist(), [math.inf, -math.inf])

  def test_integer_ranges(self):
    _, arrays, _, _ = self.parse(
        '{"inputs": {"a": [18446744073709551615], "b": [4294967295], '
        '"c": [-9223372036854775808]}}',
        a=DT.DT_UINT64, b=DT.DT_UINT32, c=DT.DT_INT64)
    self.assertEqual(arrays["a"].tolist(), [2**64 - 1])
    self.assertEqual(arrays["b"].tolist(), [2**32 - 1])
    self.assertEqual(arrays["c"].tolist(), [-2**63])
    self.assertError(
        '{"inputs": [2147483648]}',
        "JSON Value: 2147483648 Type: Number is not of expected type: int32",
        x=DT.DT_INT32)
    self.assertError(
        '{"inputs": [-1]}',
        "JSON Value: -1 Type: Number is not of expected type: uint32",
        x=DT.DT_UINT32)

  def test_float_input_rejects_lossy_numbers(self):
    self.assertError(
        '{"inputs": [16777217]}',
        "Cannot convert JSON value: 16777217 to float without loss of "
        "precision.", x=DT.DT_FLOAT)
    self.assertError(
        '{"inputs": [1e40]}',
        "Cannot convert JSON value: 1e+40 to float without loss of "
        "precision.", x=DT.DT_FLOAT)
    _, arrays, _, _ = self.parse('{"inputs": [16777217]}', x=DT.DT_DOUBLE)
    self.assertEqual(arrays["x"].tolist(), [16777217.0])

  def test_malformed_json(self):
    self.assertError("", "JSON Parse error: The document is empty",
                     x=DT.DT_FLOAT)
    self.assertError("   ",
                     "JSON Parse error: The document is empty. at offset: 3",
                     x=DT.DT_FLOAT)
    self.assertError('{"instances": [1.0,',
                     "JSON Parse error: Invalid value. at offset: 19",
                     x=DT.DT_FLOAT)
    self.assertError(
        '{"instances": [1.0 2.0]}',
        "JSON Parse error: Missing a comma or ']' after an array element. at "
        "offset: 19", x=DT.DT_FLOAT)
    self.assertError(
        '{"instances": [1] "x": 1}',
        "JSON Parse error: Missing a comma or '}' after an object member. at "
        "offset: 18", x=DT.DT_FLOAT)
    self.assertError('{"instances": [1]} x',
                     "JSON Parse error: The document root must not be "
                     "followed by other values. at offset: 19", x=DT.DT_FLOAT)
    self.assertError("[1]", "JSON Value: [\n    1\n] Is not object",
                     x=DT.DT_FLOAT)

  def test_request_shape_errors(self):
    self.assertError(
        '{"instances": [1], "inputs": [1]}',
        'JSON Value: {\n    "instances": [\n        1\n    ],\n    "inputs": '
        "[\n        1\n    ]\n} Not formatted correctly expecting only one of "
        "'inputs' or 'instances' keys to exist ", x=DT.DT_FLOAT)
    self.assertError('{"signature_name": "s"}',
                     "Missing 'inputs' or 'instances' key", x=DT.DT_FLOAT)
    self.assertError('{"instances": []}',
                     'JSON Value: {\n    "instances": []\n} No values in '
                     "'instances' array", x=DT.DT_FLOAT)
    self.assertError('{"instances": 1}',
                     'JSON Value: {\n    "instances": 1\n} Excepting '
                     "'instances' to be an list/array", x=DT.DT_FLOAT)
    self.assertError(
        '{"signature_name": 5, "instances": [1]}',
        'JSON Value: {\n    "signature_name": 5,\n    "instances": [\n'
        "        1\n    ]\n} not formatted correctly. 'signature_name' key "
        "must be a string value.", x=DT.DT_FLOAT)

  def test_ragged_lists(self):
    self.assertError(
        '{"instances": [[1, 2], [3]]}',
        "Failed to process element: 1 of 'instances' list. Error: "
        "INVALID_ARGUMENT: Expecting tensor size: 2 but got: 1",
        x=DT.DT_FLOAT)
    self.assertError(
        '{"instances": [[1, 2], [[3], [4]]]}',
        "Failed to process element: 1 of 'instances' list. Error: "
        "INVALID_ARGUMENT: Expecting shape [2] but got: [2,1]",
        x=DT.DT_FLOAT)
    self.assertError(
        '{"inputs": [[1, 2], [3]]}',
        "Encountered list at unexpected size: 1 at level: 1 expected size: 2",
        x=DT.DT_FLOAT)
    self.assertError(
        '{"inputs": [[1, 2], 3]}',
        "JSON Value: 3 found at incorrect level: 2 in the JSON DOM. Expected "
        "at level: 2", x=DT.DT_FLOAT)
    self.assertError(
        '{"inputs": [1, [2]]}',
        "Encountered list at unexpected level: 1 expected < 1",
        x=DT.DT_FLOAT)

  def test_wrong_types(self):
    self.assertError(
        '{"instances": [[1, "a"], [1, 2, 3]]}',
        "Failed to process element: 0 of 'instances' list. Error: "
        'INVALID_ARGUMENT: JSON Value: "a" Type: String is not of expected '
        "type: float", x=DT.DT_FLOAT)
    self.assertError(
        '{"inputs": [1.5]}',
        "JSON Value: 1.5 Type: Number is not of expected type: int32",
        x=DT.DT_INT32)
    self.assertError(
        '{"inputs": [true]}',
        "JSON Value: true Type: True is not of expected type: float",
        x=DT.DT_FLOAT)
    self.assertError(
        '{"inputs": [null]}',
        "JSON Value: null Type: Null is not of expected type: string",
        x=DT.DT_STRING)
    self.assertError(
        '{"inputs": [{"b64": "AA=="}]}',
        'JSON Value: {\n    "b64": "AA=="\n} Type: Object is not of expected '
        "type: float", x=DT.DT_FLOAT)
    self.assertError('{"inputs": [1.5]}',
                     "Conversion of JSON Value: 1.5 to type: half",
                     code=status.Code.UNIMPLEMENTED, x=DT.DT_HALF)

  def test_bad_base64(self):
    self.assertError('{"inputs": [{"b64": "!!!"}]}',
                     "Unable to base64 decode", x=DT.DT_STRING)
    self.assertError(
        '{"inputs": [{"b64": "AA==", "x": 1}]}',
        "inputs is a plain value/list, but expecting an object as multiple "
        "input tensors required as per tensorinfo_map",
        x=DT.DT_STRING, y=DT.DT_STRING)
    self.assertError(
        '{"inputs": [{"b64": 5}]}',
        'JSON Value: {\n    "b64": 5\n} not formatted correctly for base64 '
        "data", x=DT.DT_STRING)

  def test_missing_and_extra_named_inputs(self):
    self.assertError('{"inputs": {"a": [1]}}',
                     "Missing named input: b in 'inputs' object.",
                     a=DT.DT_FLOAT, b=DT.DT_FLOAT)
    self.assertError(
        '{"instances": [{"a": 1}]}',
        "Failed to process element: 0 of 'instances' list. JSON object: "
        '{\n    "a": 1\n} must only have keys: a,b', a=DT.DT_FLOAT,
        b=DT.DT_FLOAT)
    self.assertError(
        '{"instances": [{"a": 1, "c": 2}]}',
        "Failed to process element: 0 key: c of 'instances' list. Error: "
        "INVALID_ARGUMENT: JSON object: does not have named input: c",
        a=DT.DT_FLOAT)
    self.assertError(
        '{"instances": [1, 2]}',
        "instances is a plain list, but expecting list of objects as multiple "
        "input tensors required as per tensorinfo_map",
        a=DT.DT_FLOAT, b=DT.DT_FLOAT)
    self.assertError('{"instances": [{"a": 1}, 2]}',
                     "Expecting object but got list at item 1 of input list",
                     a=DT.DT_FLOAT)
    self.assertError('{"instances": [1, {"a": 2}]}',
                     "Expecting value/list but got object at item 1 of input "
                     "list", a=DT.DT_FLOAT)

  def test_numbers_that_are_not_numbers(self):
    self.assertError(
        '{"inputs": [1.5, null]}',
        "JSON Value: null Type: Null is not of expected type: float",
        x=DT.DT_FLOAT)
    self.assertError(
        '{"inputs": ["1.5"]}',
        'JSON Value: "1.5" Type: String is not of expected type: float',
        x=DT.DT_FLOAT)
    self.assertError(
        '{"inputs": [[1], [true]]}',
        "JSON Value: true Type: True is not of expected type: int64",
        x=DT.DT_INT64)
    _, arrays, _, _ = self.parse('{"inputs": [2e7, 1, NaN]}', x=DT.DT_FLOAT)
    self.assertEqual(arrays["x"].tolist()[:2], [2e7, 1.0])

  def test_fast_parser_never_changes_the_result(self):
    infos = _infos(x=DT.DT_FLOAT)
    for body in ('{"instances": [1.0, 2.0]}', '{"instances": [NaN]}',
                 '{"instances": [1.0,'):
      results = []
      for fast_loads in (None, json.loads, lambda b: 1 / 0, lambda b: [1]):
        request = predict_pb2.PredictRequest()
        try:
          json_tensor.fill_predict_request_from_json(
              body, lambda name: infos, request, fast_loads=fast_loads)
          results.append(request.SerializeToString())
        except status.ServingError as e:
          results.append(e.message)
      self.assertLen(set(results), 1, body)

  def test_getter_errors_pass_through(self):
    request = predict_pb2.PredictRequest()

    def getter(name):
      raise status.not_found(f"no {name}")

    with self.assertRaisesRegex(status.ServingError, "no x"):
      json_tensor.fill_predict_request_from_json(
          '{"signature_name": "x", "instances": [1]}', getter, request)
    with self.assertRaisesRegex(
        status.ServingError, "Failed to get input map for signature: DEFAULT"):
      json_tensor.fill_predict_request_from_json(
          '{"instances": [1]}', lambda name: {}, predict_pb2.PredictRequest())


class PredictResponseTest(absltest.TestCase):

  def outputs(self, **values):
    """name=(value, tf dtype) -> a response's output map."""
    response = predict_pb2.PredictResponse()
    for name, (value, dtype) in values.items():
      response.outputs[name].CopyFrom(tf.make_tensor_proto(value, dtype))
    return response.outputs

  def test_row_single_output_layout_and_floats(self):
    text = json_tensor.make_json_from_tensors(
        self.outputs(y=([3.0, 0.1, 2.5], tf.float32)), ROW)
    self.assertEqual(text, '{\n    "predictions": [3.0, 0.1, 2.5\n    ]\n}')

  def test_float_formatting(self):
    values = ([1 / 3, 1e-5, 1e7, 123456.0, -0.0, 16777216.0],
              tf.float32)
    text = json_tensor.make_json_from_tensors(self.outputs(y=values), ROW)
    self.assertIn("[0.333333343, 1e-05, 1e+07, 123456.0, -0.0, 16777216.0",
                  text)
    doubles = ([0.1, 1 / 3, 2.0], tf.float64)
    text = json_tensor.make_json_from_tensors(self.outputs(y=doubles), ROW)
    self.assertIn("[0.1, 0.33333333333333331, 2.0", text)

  def test_nan_and_infinity_written_as_tokens(self):
    text = json_tensor.make_json_from_tensors(
        self.outputs(y=([[math.nan, math.inf, -math.inf]], tf.float32)),
        COLUMNAR)
    self.assertIn("NaN,", text)
    self.assertIn("Infinity,", text)
    self.assertIn("-Infinity\n", text)
    parsed = json.loads(text)["outputs"][0]
    self.assertTrue(math.isnan(parsed[0]))

  def test_row_several_outputs_are_objects(self):
    text = json_tensor.make_json_from_tensors(
        self.outputs(a=([[1, 2], [3, 4]], tf.int32),
                     b=([b"x", b"y"], tf.string)), ROW)
    self.assertEqual(json.loads(text), {"predictions": [
        {"a": [1, 2], "b": "x"}, {"a": [3, 4], "b": "y"}]})
    self.assertTrue(text.startswith(
        '{\n    "predictions": [\n        {\n            "a": [1, 2],\n'))

  def test_columnar(self):
    text = json_tensor.make_json_from_tensors(
        self.outputs(a=([True, False], tf.bool), b=(7, tf.int64)),
        COLUMNAR)
    self.assertEqual(json.loads(text),
                     {"outputs": {"a": [True, False], "b": 7}})
    text = json_tensor.make_json_from_tensors(
        self.outputs(a=([[1.0]], tf.float32)), COLUMNAR)
    self.assertEqual(json.loads(text), {"outputs": [[1.0]]})

  def test_bytes_suffix_outputs_are_b64(self):
    text = json_tensor.make_json_from_tensors(
        self.outputs(img_bytes=([b"\xff\x00"], tf.string),
                     s=([b"t"], tf.string)), ROW)
    self.assertEqual(json.loads(text), {"predictions": [
        {"img_bytes": {"b64": "/wA="}, "s": "t"}]})

  def test_row_errors(self):
    with self.assertRaisesRegex(status.ServingError,
                                "Tensor name: s has no shape information "):
      json_tensor.make_json_from_tensors(self.outputs(s=(1.0, tf.float32)), ROW)
    with self.assertRaisesRegex(
        status.ServingError,
        "Tensor name: b has inconsistent batch size: 3 expecting: 2"):
      json_tensor.make_json_from_tensors(
          self.outputs(a=([0.0] * 2, tf.float32), b=([0.0] * 3, tf.float32)),
          ROW)
    with self.assertRaisesRegex(status.ServingError,
                                "Cannot convert empty tensor map to JSON"):
      json_tensor.make_json_from_tensors({}, ROW)
    with self.assertRaisesRegex(
        status.ServingError,
        "Failed to write JSON value for tensor type: half"):
      json_tensor.make_json_from_tensors(
          self.outputs(h=([0.0], tf.float16)), COLUMNAR)


class ClassifyRegressTest(absltest.TestCase):

  def test_examples_and_context(self):
    request = classification_pb2.ClassificationRequest()
    json_tensor.fill_classification_request_from_json(
        '{"signature_name": "s", "context": {"c": "v"}, "examples": ['
        '{"f": [1.5, 2.5], "i": [1, 2], "s": ["a", {"b64": "Yg=="}], '
        '"b": true, "one": 3.0}]}', request)
    self.assertEqual(request.model_spec.signature_name, "s")
    ctx = request.input.example_list_with_context
    self.assertEqual(ctx.context.features.feature["c"].bytes_list.value,
                     [b"v"])
    feature = ctx.examples[0].features.feature
    self.assertEqual(list(feature["f"].float_list.value), [1.5, 2.5])
    self.assertEqual(list(feature["i"].int64_list.value), [1, 2])
    self.assertEqual(list(feature["s"].bytes_list.value), [b"a", b"b"])
    self.assertEqual(list(feature["b"].int64_list.value), [1])
    self.assertEqual(list(feature["one"].float_list.value), [3.0])

  def test_plain_example_list(self):
    request = regression_pb2.RegressionRequest()
    json_tensor.fill_regression_request_from_json(
        '{"examples": [{"x": 1.0}, {"x": 2.0}]}', request)
    self.assertLen(request.input.example_list.examples, 2)

  def assertError(self, body, message):
    with self.assertRaises(status.ServingError) as cm:
      json_tensor.fill_classification_request_from_json(
          body, classification_pb2.ClassificationRequest())
    self.assertEqual(cm.exception.message, message)

  def test_errors(self):
    self.assertError(
        '{"context": {}}',
        'JSON Value: {\n    "context": {}\n} When method is classify, key '
        "'examples' is expected and was not found")
    self.assertError('{"examples": []}',
                     'JSON Value: {\n    "examples": []\n} \'examples\' value '
                     "is an empty array")
    self.assertError('{"examples": [1]}',
                     "Example must be JSON object but got JSON Number")
    self.assertError('{"examples": [{"x": [1, 0.5]}]}',
                     "Unexpected element type in feature: x expecting type: "
                     "int64")
    self.assertError('{"examples": [{"x": [null]}]}',
                     "Feature: x has element with unexpected JSON type: Null")
    self.assertError('{"examples": [{"x": 18446744073709551615}]}',
                     "Feature: x has uint64 element. Only int64 is "
                     "supported.")
    self.assertError('{"examples": [{"x": {"b64": "%%"}}]}',
                     "Unable to base64 decode")

  def test_results(self):
    result = classification_pb2.ClassificationResult()
    classes = result.classifications.add().classes
    classes.add(label="7", score=0.75)
    classes.add(label="1", score=0.25)
    result.classifications.add().classes.add(label="", score=3.0)
    text = json_tensor.make_json_from_classification_result(result)
    self.assertEqual(
        text, '{\n    "results": [[["7", 0.75], ["1", 0.25]], [["", 3.0]]\n'
        "    ]\n}")
    regression = regression_pb2.RegressionResult()
    regression.regressions.add(value=1.5)
    regression.regressions.add(value=2)
    self.assertEqual(json_tensor.make_json_from_regression_result(regression),
                     '{\n    "results": [1.5, 2.0]\n}')
    with self.assertRaisesRegex(status.ServingError, "empty"):
      json_tensor.make_json_from_regression_result(
          regression_pb2.RegressionResult())

  def test_error_body(self):
    self.assertEqual(json_tensor.make_json_error('bad "x"\n'),
                     '{\n    "error": "bad \\"x\\"\\n"\n}')


def _decode(body, infos, path):
  """Decodes with one path: "auto" (the public function: simdjson where it
  can, else the reference), "bulk" (the reference decoder) or "walk" (the
  reference decoder, value by value). Returns a comparable outcome."""
  request = predict_pb2.PredictRequest()
  raw = body if isinstance(body, bytes) else body.encode(
      "utf-8", "surrogatepass")
  try:
    if path == "auto":
      fmt = json_tensor.fill_predict_request_from_json(
          body, lambda name: infos, request)
    else:
      fmt = json_tensor._fill_predict_request_exact(  # pylint: disable=protected-access
          raw, lambda name: infos, request, bulk=path == "bulk")
  except status.ServingError as e:
    return ("error", e.code, e.message)
  return ("ok", fmt, request.model_spec.signature_name,
          {name: t.SerializeToString(deterministic=True)
           for name, t in sorted(request.inputs.items())})


class UpstreamRulesTest(absltest.TestCase):
  """One test per rule of upstream HEAD's util/json_tensor.cc (and the
  rapidjson 1.1.0 / absl behaviour it relies on), named after it; the
  docstrings say where upstream states it."""

  def decode(self, body, **dtypes):
    infos = _infos(**dtypes)
    outcome = _decode(body, infos, "auto")
    # Every rule holds on each path.
    self.assertEqual(_decode(body, infos, "bulk"), outcome, body)
    self.assertEqual(_decode(body, infos, "walk"), outcome, body)
    if outcome[0] == "error":
      raise status.ServingError(outcome[1], outcome[2])
    request = predict_pb2.PredictRequest()
    json_tensor.fill_predict_request_from_json(body, lambda n: infos, request)
    return {name: tensor_codec.tensor_proto_to_ndarray(t)
            for name, t in request.inputs.items()}

  def assertDecodeError(self, body, message, **dtypes):
    with self.assertRaises(status.ServingError) as cm:
      self.decode(body, **dtypes)
    self.assertEqual(cm.exception.message, message)

  def test_is_lossless_decimal_integer_tokens_into_float(self):
    """IsLosslessDecimal<float>: an integer token must be within 2^24 - 1
    (so 16777216, exact in float, is refused too); upstream test
    SingleUnnamedTensorErrors (16777217), MixedInputForFloatTensor."""
    self.assertEqual(self.decode('{"instances": [1, 16777215, -16777215]}',
                                 x=DT.DT_FLOAT)["x"].tolist(),
                     [1, 16777215, -16777215])
    for token in ("16777216", "-16777216", "4294967296"):
      self.assertDecodeError(
          '{"inputs": [%s]}' % token,
          f"Cannot convert JSON value: {token} to float without loss of "
          "precision.", x=DT.DT_FLOAT)
    # The same values as decimals are doubles, only range-checked.
    self.assertEqual(self.decode('{"inputs": [16777217.0]}',
                                 x=DT.DT_FLOAT)["x"].tolist(), [16777216.0])

  def test_is_lossless_decimal_integer_tokens_into_double(self):
    """IsLosslessDecimal<double>: integer tokens within 2^53 - 1; upstream
    test SingleUnnamedTensorErrors (9007199254740993),
    MixedInputForDoubleTensor."""
    self.assertEqual(
        self.decode('{"inputs": [9007199254740991, 2, 0.5]}',
                    x=DT.DT_DOUBLE)["x"].tolist(), [2**53 - 1, 2, 0.5])
    self.assertDecodeError(
        '{"inputs": [9007199254740993]}',
        "Cannot convert JSON value: 9007199254740993 to double without loss "
        "of precision.", x=DT.DT_DOUBLE)

  def test_is_lossless_decimal_int64_min_passes(self):
    """IsLosslessDecimal takes std::abs() of the int64, which leaves
    INT64_MIN negative: -9223372036854775808 passes for float and double."""
    self.assertEqual(
        self.decode('{"inputs": [-9223372036854775808]}',
                    x=DT.DT_FLOAT)["x"].tolist(), [-2.0**63])
    self.assertEqual(
        self.decode('{"inputs": [-9223372036854775808]}',
                    x=DT.DT_DOUBLE)["x"].tolist(), [-2.0**63])

  def test_is_lossless_decimal_float_range(self):
    """IsLosslessDecimal<float>: a double must lie within +-FLT_MAX; upstream
    test SingleUnnamedTensorErrors (DBL_MAX). Doubles are not range-checked
    for double inputs; tiny values underflow silently."""
    self.assertDecodeError(
        '{"inputs": [3.5e38]}',
        "Cannot convert JSON value: 3.5e+38 to float without loss of "
        "precision.", x=DT.DT_FLOAT)
    self.assertEqual(self.decode('{"inputs": [3.4e38, 1e-50]}',
                                 x=DT.DT_FLOAT)["x"].tolist()[1], 0.0)
    self.assertEqual(self.decode('{"inputs": [1e300]}',
                                 x=DT.DT_DOUBLE)["x"].tolist(), [1e300])

  def test_integers_beyond_64_bits_are_doubles(self):
    """rapidjson reads an integer token beyond 64 bits as a double: a float
    input takes it if in range, an integer input refuses it as a Number,
    and error messages print it as a decimal."""
    self.assertEqual(
        self.decode('{"inputs": [100000000000000000000]}',
                    x=DT.DT_FLOAT)["x"].tolist(),
        [struct.unpack("f", struct.pack("f", 1e20))[0]])
    self.assertDecodeError(
        '{"inputs": [100000000000000000000]}',
        "JSON Value: 1e+20 Type: Number is not of expected type: int64",
        x=DT.DT_INT64)

  def test_add_value_to_tensor_integer_ranges(self):
    """AddValueToTensor: int8/16/32 and uint8 need a value that fits int32
    (then narrow as C++ does), int64/uint32/uint64 their own range."""
    arrays = self.decode(
        '{"inputs": {"a": [300, -1], "b": [70000], "c": [4294967295], '
        '"d": [18446744073709551615]}}',
        a=DT.DT_UINT8, b=DT.DT_INT16, c=DT.DT_UINT32, d=DT.DT_UINT64)
    self.assertEqual(arrays["a"].tolist(), [44, 255])
    self.assertEqual(arrays["b"].tolist(), [70000 - 65536])
    self.assertEqual(arrays["c"].tolist(), [2**32 - 1])
    self.assertEqual(arrays["d"].tolist(), [2**64 - 1])
    self.assertDecodeError(
        '{"inputs": [9223372036854775808]}',
        "JSON Value: 9223372036854775808 Type: Number is not of expected "
        "type: int64", x=DT.DT_INT64)
    self.assertDecodeError(
        '{"inputs": [1.0]}',
        "JSON Value: 1.0 Type: Number is not of expected type: int8",
        x=DT.DT_INT8)

  def test_add_value_to_tensor_bools_and_strings(self):
    """AddValueToTensor: bool inputs take only true/false, string inputs
    only strings (or b64 objects); numbers are never inferred."""
    self.assertEqual(self.decode('{"inputs": [true, false]}',
                                 x=DT.DT_BOOL)["x"].tolist(), [True, False])
    self.assertDecodeError(
        '{"inputs": [1]}',
        "JSON Value: 1 Type: Number is not of expected type: bool",
        x=DT.DT_BOOL)
    self.assertDecodeError(
        '{"inputs": [false]}',
        "JSON Value: false Type: False is not of expected type: string",
        x=DT.DT_STRING)

  def test_parse_json_nan_and_inf_tokens(self):
    """ParseJson parses with kParseNanAndInfFlag: rapidjson 1.1.0 reads NaN,
    Inf, Infinity, -Inf, -Infinity (and -NaN) as numbers; upstream test
    MultipleNamedTensor (NaN, Infinity)."""
    values = self.decode(
        '{"instances": [NaN, Inf, Infinity, -Inf, -Infinity, -NaN]}',
        x=DT.DT_FLOAT)["x"].tolist()
    self.assertTrue(math.isnan(values[0]) and math.isnan(values[5]))
    self.assertEqual(values[1:5], [math.inf, math.inf, -math.inf, -math.inf])
    self.assertDecodeError('{"instances": [Infin]}',
                           "JSON Parse error: Invalid value. at offset: 20",
                           x=DT.DT_FLOAT)

  def test_parse_json_number_too_big(self):
    """rapidjson 1.1.0 refuses a number beyond double's range, and a positive
    exponent above 308 plus the fraction digits it counted (even "0e400"),
    with kParseErrorNumberTooBig at the number's start."""
    for token in ("1e400", "0e400", "-2e308", "0.5e309"):
      self.assertDecodeError(
          '{"inputs": [%s]}' % token,
          "JSON Parse error: Number too big to be stored in double. at "
          "offset: 12", x=DT.DT_DOUBLE)
    self.assertEqual(self.decode('{"inputs": [0.0001e309, 1e-400]}',
                                 x=DT.DT_DOUBLE)["x"].tolist(), [1e305, 0.0])

  def test_parse_json_error_texts_and_offsets(self):
    """ParseJson: "JSON Parse error: <GetParseError_En> at offset: <byte>",
    with rapidjson's messages and the byte where it stopped."""
    cases = [
        ('{"instances": [1.]}', "Miss fraction part in number.", 17),
        ('{"instances": [1e]}', "Miss exponent in number.", 17),
        ('{"instances": [nul]}', "Invalid value.", 18),
        ('{"instances": [-]}', "Invalid value.", 16),
        ('{"instances": ["abc', "Missing a closing quotation mark in "
         "string.", 19),
        ('{"instances": ["\\ud800"]}', "The surrogate pair in string is "
         "invalid.", 16),
        ('{"instances": ["\\q"]}', "Invalid escape character in string.",
         16),
        ('{"instances": [1],}', "Missing a name for object member.", 18),
        ('{"é": [1 2]}', "Missing a comma or ']' after an array element.",
         10),
    ]
    for body, message, offset in cases:
      self.assertDecodeError(
          body, f"JSON Parse error: {message} at offset: {offset}",
          x=DT.DT_FLOAT)

  def test_parse_json_bytes_as_rapidjson_reads_them(self):
    """rapidjson 1.1.0 does not validate UTF-8 (string inputs get the
    client's bytes), skips a BOM, and ends the document at a NUL byte."""
    self.assertEqual(
        self.decode(b'{"inputs": ["\xff\xfeok"]}', x=DT.DT_STRING)[
            "x"].tolist(), [b"\xff\xfeok"])
    self.assertEqual(self.decode(b'\xef\xbb\xbf{"inputs": [1]}\x00 junk',
                                 x=DT.DT_FLOAT)["x"].tolist(), [1.0])

  def test_find_member_takes_the_first_of_repeated_keys(self):
    """rapidjson keeps repeated keys and FindMember() returns the first."""
    arrays = self.decode('{"inputs": [1], "inputs": [2, 3]}', x=DT.DT_FLOAT)
    self.assertEqual(arrays["x"].tolist(), [1.0])

  def test_base64_unescape(self):
    """JsonDecodeBase64Object uses absl::Base64Unescape: whitespace skipped,
    padding ('=' or '.') optional but complete if present; upstream tests
    SingleUnnamedTensorBase64Scalars/Lists."""
    arrays = self.decode(
        '{"inputs": [{"b64": "aGVs\\nbG8="}, {"b64": "aGVsbG8"}, '
        '{"b64": "aGVsbG8."}, {"b64": ""}]}', x=DT.DT_STRING)
    self.assertEqual(arrays["x"].tolist(), [b"hello"] * 3 + [b""])
    for bad in ("aGVsbG8==", "aGVsbG8=x", "a", "aGVs!G8=", "\u00e9AAA"):
      self.assertDecodeError('{"inputs": [{"b64": "%s"}]}' % bad,
                             "Unable to base64 decode", x=DT.DT_STRING)

  def test_fill_tensor_proto_levels_and_sizes(self):
    """FillTensorProto: the first element's nesting fixes the shape; every
    leaf must sit at that depth and every list have that size;
    AddInstanceItem: rows must agree in size and shape."""
    self.assertDecodeError(
        '{"inputs": [[1, 2], [3, [4]]]}',
        "Encountered list at unexpected level: 2 expected < 2", x=DT.DT_FLOAT)
    self.assertDecodeError(
        '{"inputs": [[1, 2], [3, 4, 5]]}',
        "Encountered list at unexpected size: 3 at level: 1 expected size: 2",
        x=DT.DT_FLOAT)
    self.assertDecodeError(
        '{"instances": [[1, 2], [[3, 4]]]}',
        "Failed to process element: 1 of 'instances' list. Error: "
        "INVALID_ARGUMENT: Expecting shape [2] but got: [1,2]", x=DT.DT_FLOAT)
    arrays = self.decode('{"inputs": [[], []]}', x=DT.DT_FLOAT)
    self.assertEqual(arrays["x"].shape, (2, 0))

  def test_scalars_row_and_columnar(self):
    """Row format stacks each instance (scalars become a vector); columnar
    keeps each input's own shape, scalars included; upstream tests
    SingleUnnamedTensorColumnarFormat, MultipleNamedTensorColumnarFormat."""
    self.assertEqual(self.decode('{"inputs": 7}', x=DT.DT_INT32)["x"].shape,
                     ())
    arrays = self.decode('{"instances": [{"a": 1, "b": [1, 2]}, '
                         '{"a": 2, "b": [3, 4]}]}', a=DT.DT_INT64,
                         b=DT.DT_FLOAT)
    self.assertEqual(arrays["a"].tolist(), [1, 2])
    self.assertEqual(arrays["b"].shape, (2, 2))

  def test_write_decimal(self):
    """WriteDecimal: six significant digits when they round-trip, else
    max_digits10; ".0" on whole numbers; NaN/Infinity/-Infinity tokens;
    upstream tests FromJsonSingleFloatTensorSixDigitPrecision/NonFinite."""
    response = predict_pb2.PredictResponse()
    response.outputs["y"].CopyFrom(tf.make_tensor_proto(
        [[9000000, 999999, 0.5], [0.0003, 0.00003, 555557.5]], tf.float32))
    text = json_tensor.make_json_from_tensors(response.outputs, ROW)
    self.assertIn("[[9e+06, 999999.0, 0.5], [0.0003, 3e-05, 555557.5]", text)

  def test_zero_batch_outputs(self):
    """MakeRowFormatJsonFromTensors: a batch of 0 writes no rows; upstream
    tests FromJsonSingleZeroBatchTensor, FromJsonMultipleZeroBatchTensors
    and ...Errors (0 against 1 is inconsistent)."""
    response = predict_pb2.PredictResponse()
    response.outputs["a"].CopyFrom(
        tf.make_tensor_proto([], tf.int32, shape=[0, 2]))
    response.outputs["b"].CopyFrom(
        tf.make_tensor_proto([], tf.float32, shape=[0, 3, 4]))
    self.assertEqual(json_tensor.make_json_from_tensors(response.outputs, ROW),
                     '{\n    "predictions": []\n}')
    response.outputs["c"].CopyFrom(tf.make_tensor_proto(["x"]))
    with self.assertRaisesRegex(status.ServingError,
                                "inconsistent batch size: 1 expecting: 0"):
      json_tensor.make_json_from_tensors(response.outputs, ROW)

  def test_writer_string_escapes(self):
    """rapidjson's Writer::String: control characters as \\u00XX in upper
    case (or the short escapes), '"' and '\\\\'; nothing else; upstream test
    MakeJsonFromTensors.StatusError."""
    self.assertEqual(json_tensor.make_json_error('k: "\x1b\\\'\n'),
                     '{\n    "error": "k: \\"\\u001B\\\\\'\\n"\n}')

  def test_json_value_to_string_writes_as_rapidjson(self):
    """JsonValueToString (error messages): PrettyWriter layout, Grisu2
    doubles laid out by rapidjson (1e-7, 1e21, 100.0), output ending where
    the Writer refuses NaN."""
    self.assertDecodeError(
        '{"instances": [1e-7, 1e21, 100.0, NaN], "inputs": 1}',
        'JSON Value: {\n    "instances": [\n        1e-7,\n        1e21,\n'
        '        100.0,\n         Not formatted correctly expecting only one '
        "of 'inputs' or 'instances' keys to exist ", x=DT.DT_FLOAT)

  def test_examples_repeated_feature_keeps_the_last(self):
    """MakeExampleFromJsonObject assigns each member into the feature map:
    a repeated feature is checked each time and the last one kept."""
    request = classification_pb2.ClassificationRequest()
    json_tensor.fill_classification_request_from_json(
        '{"examples": [{"f": 1, "f": [2.5]}]}', request)
    feature = request.input.example_list.examples[0].features.feature["f"]
    self.assertEqual(list(feature.float_list.value), [2.5])
    with self.assertRaisesRegex(status.ServingError, "unexpected JSON type"):
      json_tensor.fill_classification_request_from_json(
          '{"examples": [{"f": null, "f": 1}]}',
          classification_pb2.ClassificationRequest())

  def test_fast_path_takes_the_common_bodies(self):
    """The simdjson path decodes the bodies real clients send (so the
    differential test below compares two real paths) and leaves the rest."""
    infos = _infos(x=DT.DT_FLOAT)
    fast = json_tensor._fill_predict_request_fast  # pylint: disable=protected-access
    for body in (b'{"instances": [[1, 2.5], [3, 4]]}',
                 b'{"signature_name": "s", "inputs": {"x": [1e-05]}}',
                 b'{"inputs": 3}'):
      self.assertIsNotNone(
          fast(body, lambda n: infos, predict_pb2.PredictRequest()), body)
    for body in (b'{"instances": [NaN]}', b'{"instances": [[1], [[2]]]}',
                 b'{"instances": [0e400]}', b'{"instances": [16777216]}',
                 b'{"instances": [1], "extra": 1}'):
      self.assertIsNone(
          fast(body, lambda n: infos, predict_pb2.PredictRequest()), body)


# --- The differential test: the decode paths agree ----------------------------

_DTYPES = (DT.DT_FLOAT, DT.DT_DOUBLE, DT.DT_INT32, DT.DT_INT16, DT.DT_INT8,
           DT.DT_UINT8, DT.DT_INT64, DT.DT_UINT32, DT.DT_UINT64, DT.DT_BOOL,
           DT.DT_STRING, DT.DT_HALF)
_NUMBER_TOKENS = (
    "0", "-0", "1", "-1", "0.5", "-0.0", "1e5", "1E+05", "2.5e-3", "16777215",
    "16777216", "-16777217", "2147483647", "2147483648", "-2147483649",
    "4294967295", "4294967296", "9007199254740991", "9007199254740993",
    "9223372036854775807", "9223372036854775808", "-9223372036854775808",
    "18446744073709551615", "18446744073709551616", "1e40", "3.4e38",
    "3.5e38", "1e-50", "1e308", "1e400", "0e400", "0.5e309", "NaN",
    "Infinity", "-Infinity", "Inf", "-Inf", "-NaN", "1.", "01")
_OTHER_TOKENS = ("true", "false", "null", '"a"', '"\\u00e9\\n"', '""',
                 '{"b64": "aGk="}', '{"b64": "aGk"}', '{"b64": "a"}',
                 '{"b64": 5}', '{"c": 1}', "[]")


@st.composite
def _leaf(draw, kind):
  """One JSON value as text: mostly what `kind` of input takes, sometimes an
  edge (the tokens above) or something else entirely."""
  edge = draw(st.integers(0, 29)) == 0
  if kind in ("int", "float"):
    if edge:
      return draw(st.sampled_from(_NUMBER_TOKENS))
    if kind == "int" or draw(st.booleans()):
      return str(draw(st.integers(-300, 300)))
    value = draw(st.floats(-1e6, 1e6, width=draw(st.sampled_from((32, 64)))))
    return draw(st.sampled_from((repr(value), "%.6g" % value, "%e" % value)))
  if kind == "bool":
    return draw(st.sampled_from(("true", "false")))
  if kind == "string" and not edge:
    return draw(st.one_of(
        st.text(max_size=4).map(json.dumps),
        st.binary(max_size=4).map(
            lambda b: '{"b64": "%s"}' % base64.b64encode(b).decode())))
  return draw(st.sampled_from(_OTHER_TOKENS + _NUMBER_TOKENS[:3]))


@st.composite
def _tensor(draw, kind):
  """A nested list (usually rectangular) of leaf tokens, as JSON text."""
  shape = draw(st.lists(st.integers(0, 3) if draw(st.integers(0, 9)) == 0
                        else st.integers(1, 3), max_size=3))
  mutate = draw(st.integers(0, 19))

  def build(dims):
    if not dims:
      if mutate == 0 and draw(st.booleans()):
        return "[" + draw(_leaf(kind)) + "]"  # Nested too deep.
      leaf_kind = (draw(st.sampled_from((kind, kind, "other")))
                   if mutate == 1 else kind)
      return draw(_leaf(leaf_kind))
    n = dims[0]
    if mutate == 2 and draw(st.booleans()):
      n = max(0, n + draw(st.sampled_from((-1, 1))))  # Ragged.
    return "[" + ", ".join(build(dims[1:]) for _ in range(n)) + "]"

  return build(shape)


@st.composite
def _request(draw):
  names = draw(st.lists(st.sampled_from(("a", "b", "x")), min_size=1,
                        max_size=2, unique=True))
  # Float inputs (what most models take) more often than the others.
  dtypes = {name: draw(st.sampled_from(_DTYPES + (DT.DT_FLOAT,) * 4))
            for name in names}

  def kind_of(dtype):
    if dtype in (DT.DT_FLOAT, DT.DT_DOUBLE):
      return "float"
    return {DT.DT_BOOL: "bool", DT.DT_STRING: "string",
            DT.DT_HALF: "float"}.get(dtype, "int")

  members = []
  if draw(st.booleans()):
    members.append('"signature_name": %s' % draw(
        st.sampled_from(('""', '"s"', '"s"', "5"))))
  if draw(st.booleans()):  # Row format.
    rows = draw(st.integers(1, 3))
    if len(names) == 1 and draw(st.booleans()):
      instances = [draw(_tensor(kind_of(dtypes[names[0]])))
                   for _ in range(rows)]
    else:
      instances = ["{" + ", ".join(
          '"%s": %s' % (name, draw(_tensor(kind_of(dtypes[name]))))
          for name in draw(st.permutations(names))) + "}"
                   for _ in range(rows)]
    members.append('"instances": [' + ", ".join(instances) + "]")
  elif len(names) == 1 and draw(st.booleans()):
    members.append('"inputs": ' + draw(_tensor(kind_of(dtypes[names[0]]))))
  else:
    members.append('"inputs": {' + ", ".join(
        '"%s": %s' % (name, draw(_tensor(kind_of(dtypes[name]))))
        for name in names) + "}")
  if draw(st.integers(0, 19)) == 0:
    members.append('"extra": [1]')
  if draw(st.integers(0, 19)) == 0:
    members.append(members[-1])  # A repeated key.
  body = "{" + ", ".join(draw(st.permutations(members))) + "}"
  return body, _infos(**dtypes)


class DifferentialTest(absltest.TestCase):
  """The fast path (simdjson), the reference decoder in bulk and the
  reference decoder value by value give equal requests or equal errors
  (code and text) on generated predict bodies. Derandomized, so CI sees the
  same examples every run; bodies that once disagreed stay as @example."""

  @hypothesis.settings(max_examples=400, derandomize=True, deadline=None,
                       database=None, suppress_health_check=list(
                           hypothesis.HealthCheck))
  @hypothesis.example(('{"instances": [0e400]}', _infos(x=DT.DT_FLOAT)))
  @hypothesis.example(('{"inputs": [[1, 2], [3, [4]]]}',
                       _infos(x=DT.DT_FLOAT)))
  @hypothesis.example(('{"inputs": {"a": [1, [2]], "b": [[1, 2], [3, 4]]}}',
                       _infos(a=DT.DT_FLOAT, b=DT.DT_FLOAT)))
  @hypothesis.given(_request())
  def test_paths_agree(self, case):
    body, infos = case
    outcome = _decode(body, infos, "auto")
    self.assertEqual(_decode(body, infos, "bulk"), outcome, body)
    self.assertEqual(_decode(body, infos, "walk"), outcome, body)


if __name__ == "__main__":
  absltest.main()
