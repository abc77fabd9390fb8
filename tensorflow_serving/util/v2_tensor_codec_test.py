"""Tests for v2_tensor_codec: datatypes, raw and typed contents, REST JSON and
the binary tensor data extension, and hostile input.

The clients' view (tritonclient and kserve encoding and decoding the same
tensors) is in v2_tensor_codec_clients_test.
"""

import json
import random
import struct

from absl.testing import absltest
from absl.testing import parameterized
import ml_dtypes
import numpy as np
import tensorflow as tf

from tensorflow.core.framework import tensor_shape_pb2
from tensorflow.core.framework import types_pb2
from tensorflow_serving.apis import grpc_service_pb2
from tensorflow_serving.util import status
from tensorflow_serving.util import v2_tensor_codec as codec

Code = status.Code
DT = types_pb2.DataType

# name -> (TensorFlow DataType, numpy dtype, InferTensorContents field).
_TABLE = {
    "BOOL": (DT.DT_BOOL, np.bool_, "bool_contents"),
    "UINT8": (DT.DT_UINT8, np.uint8, "uint_contents"),
    "UINT16": (DT.DT_UINT16, np.uint16, "uint_contents"),
    "UINT32": (DT.DT_UINT32, np.uint32, "uint_contents"),
    "UINT64": (DT.DT_UINT64, np.uint64, "uint64_contents"),
    "INT8": (DT.DT_INT8, np.int8, "int_contents"),
    "INT16": (DT.DT_INT16, np.int16, "int_contents"),
    "INT32": (DT.DT_INT32, np.int32, "int_contents"),
    "INT64": (DT.DT_INT64, np.int64, "int64_contents"),
    "FP16": (DT.DT_HALF, np.float16, None),
    "BF16": (DT.DT_BFLOAT16, ml_dtypes.bfloat16, None),
    "FP32": (DT.DT_FLOAT, np.float32, "fp32_contents"),
    "FP64": (DT.DT_DOUBLE, np.float64, "fp64_contents"),
    "BYTES": (DT.DT_STRING, object, "bytes_contents"),
}

_FIXED = [n for n in _TABLE if n != "BYTES"]


def _sample(name: str, shape=(2, 3), utf8: bool = False) -> np.ndarray:
  """Deterministic values that every datatype holds exactly; BYTES ones
  include bytes that are not UTF-8 unless `utf8`."""
  count = int(np.prod(shape))
  if name == "BYTES":
    pool = [b"", b"a", b"\x00\x7f" if utf8 else b"\x00\xff", "é".encode(),
            b"x" * 300, b"z"]
    flat = np.empty(count, dtype=object)
    flat[:] = [pool[i % len(pool)] for i in range(count)]
    return flat.reshape(shape)
  if name == "BOOL":
    return (np.arange(count) % 3 == 0).reshape(shape)
  dtype = np.dtype(_TABLE[name][1])
  values = np.arange(count) - count // 2
  if dtype.kind == "u":
    values = np.arange(count) * 7
  if dtype.kind in ("f", "V"):
    values = values * 0.5
  return values.astype(dtype).reshape(shape)


def _code(fn, *args, **kwargs) -> status.Code:
  try:
    fn(*args, **kwargs)
  except status.ServingError as e:
    return e.code
  return Code.OK


class DatatypeTest(parameterized.TestCase):

  def test_every_v2_datatype_a_tensor_can_hold(self):
    self.assertEqual(set(codec.DATATYPE_NAMES), set(_TABLE))

  @parameterized.named_parameters((n, n) for n in _TABLE)
  def test_mapping(self, name):
    tf_dtype, np_dtype, field = _TABLE[name]
    dt = codec.datatype(name)
    self.assertEqual(dt.name, name)
    self.assertEqual(str(dt), name)
    self.assertEqual(dt.tf_dtype, tf_dtype)
    self.assertEqual(dt.numpy_dtype, np.dtype(np_dtype))
    self.assertEqual(dt.contents_field, field)
    self.assertIs(codec.datatype_of_tf_dtype(tf_dtype), dt)
    self.assertIs(codec.datatype_of_numpy_dtype(np.dtype(np_dtype)), dt)
    # TensorFlow agrees on the numpy dtype of each DataType.
    tf_numpy = tf.as_dtype(tf_dtype).as_numpy_dtype
    self.assertEqual(np.dtype(tf_numpy), dt.numpy_dtype)

  def test_itemsizes(self):
    sizes = {n: codec.datatype(n).itemsize for n in _TABLE}
    self.assertEqual(sizes, {
        "BOOL": 1, "UINT8": 1, "UINT16": 2, "UINT32": 4, "UINT64": 8,
        "INT8": 1, "INT16": 2, "INT32": 4, "INT64": 8, "FP16": 2, "BF16": 2,
        "FP32": 4, "FP64": 8, "BYTES": 0})

  def test_unknown_names(self):
    for name in ("fp32", "FLOAT", "", "STRING", "COMPLEX64", None, 3, ["FP32"]):
      with self.subTest(name=name):
        with self.assertRaises(status.ServingError) as e:
          codec.datatype(name, "input 'x'")
        self.assertEqual(e.exception.code, Code.INVALID_ARGUMENT)
        self.assertIn("input 'x'", e.exception.message)

  def test_tf_dtypes_without_v2_datatype(self):
    for tf_dtype in (DT.DT_COMPLEX64, DT.DT_RESOURCE, DT.DT_VARIANT,
                     DT.DT_QINT8, DT.DT_INVALID, 9999):
      with self.subTest(dtype=tf_dtype):
        self.assertEqual(_code(codec.datatype_of_tf_dtype, tf_dtype),
                         Code.INVALID_ARGUMENT)

  def test_numpy_dtypes(self):
    for np_dtype in ("<U3", "S5", object):
      self.assertEqual(codec.datatype_of_numpy_dtype(np.dtype(np_dtype)).name,
                       "BYTES")
    self.assertEqual(codec.datatype_of_numpy_dtype(np.dtype(">f4")).name,
                     "FP32")
    self.assertEqual(_code(codec.datatype_of_numpy_dtype, np.complex64),
                     Code.INVALID_ARGUMENT)

  def test_metadata_shape(self):
    shape = tensor_shape_pb2.TensorShapeProto()
    shape.dim.add(size=-1)
    shape.dim.add(size=784)
    self.assertEqual(codec.metadata_shape(shape), [-1, 784])
    self.assertEqual(codec.metadata_shape(tensor_shape_pb2.TensorShapeProto()),
                     [])
    self.assertEqual(
        codec.metadata_shape(tensor_shape_pb2.TensorShapeProto(
            unknown_rank=True)), [-1])


class ParameterTest(absltest.TestCase):

  def test_round_trip(self):
    for value, field in ((True, "bool_param"), (False, "bool_param"),
                         (-5, "int64_param"), (2**63 - 1, "int64_param"),
                         (2**63, "uint64_param"), (2**64 - 1, "uint64_param"),
                         ("serving_default", "string_param"),
                         (0.5, "double_param")):
      with self.subTest(value=value):
        p = grpc_service_pb2.InferParameter()
        codec.set_parameter(p, value)
        self.assertEqual(p.WhichOneof("parameter_choice"), field)
        got = codec.parameter_value(p)
        self.assertEqual(got, value)
        self.assertIs(type(got), type(value))

  def test_unset_and_bad(self):
    self.assertIsNone(codec.parameter_value(grpc_service_pb2.InferParameter()))
    for value in (2**64, -2**63 - 1, None, [1], b"x"):
      with self.subTest(value=value):
        self.assertEqual(
            _code(codec.set_parameter, grpc_service_pb2.InferParameter(),
                  value), Code.INVALID_ARGUMENT)

  def test_parameters_dict(self):
    request = grpc_service_pb2.ModelInferRequest()
    request.parameters["signature_name"].string_param = "sig"
    request.parameters["binary_data_output"].bool_param = True
    self.assertEqual(codec.parameters_dict(request.parameters),
                     {"signature_name": "sig", "binary_data_output": True})


class ShapeTest(absltest.TestCase):

  def test_good(self):
    self.assertEqual(codec.check_shape([2, 0, 3]), (2, 0, 3))
    self.assertEqual(codec.check_shape([]), ())
    request = grpc_service_pb2.ModelInferRequest()
    request.inputs.add(shape=[1, 784])
    self.assertEqual(codec.check_shape(request.inputs[0].shape), (1, 784))

  def test_bad(self):
    for shape in ([-1], [2, -3], [True], [1.0], ["2"], [None], "23", 5, None,
                  {"a": 1}, [2**63], [1] * 65):
      with self.subTest(shape=shape):
        with self.assertRaises(status.ServingError) as e:
          codec.check_shape(shape, "input 'x'")
        self.assertEqual(e.exception.code, Code.INVALID_ARGUMENT)
        self.assertIn("input 'x'", e.exception.message)


class RawTest(parameterized.TestCase):

  @parameterized.named_parameters((n, n) for n in _TABLE)
  def test_round_trip(self, name):
    dt = codec.datatype(name)
    for shape in ((2, 3), (), (0, 4), (5,)):
      with self.subTest(shape=shape):
        array = _sample(name, shape)
        data = codec.encode_raw(array, dt)
        if dt.itemsize:
          self.assertLen(data, array.size * dt.itemsize)
        got = codec.decode_raw(dt, shape, data)
        self.assertEqual(got.shape, shape)
        self.assertEqual(got.dtype, dt.numpy_dtype)
        self.assertEqual(got.tolist(), array.tolist())
        # The datatype is found from the array, too.
        self.assertEqual(codec.encode_raw(array), data)

  def test_little_endian_row_major_layout(self):
    self.assertEqual(
        codec.encode_raw(np.array([[1, 2], [3, 256]], np.int32)),
        struct.pack("<4i", 1, 2, 3, 256))
    self.assertEqual(codec.encode_raw(np.array([1.5], np.float16)),
                     struct.pack("<e", 1.5))
    self.assertEqual(codec.encode_raw(np.array([1.5], ml_dtypes.bfloat16)),
                     struct.pack("<f", 1.5)[2:])
    self.assertEqual(codec.encode_raw(np.array([1.0], ">f8")),
                     struct.pack("<d", 1.0))
    self.assertEqual(codec.encode_raw(np.array([True, False])), b"\x01\x00")

  def test_bytes_layout(self):
    array = np.array([b"ab", b"", "é"], dtype=object)
    self.assertEqual(codec.encode_raw(array),
                     b"\x02\x00\x00\x00ab" + b"\x00" * 4 +
                     b"\x02\x00\x00\x00" + "é".encode())
    self.assertEqual(codec.encode_raw(np.array(["x", "yz"])),
                     b"\x01\x00\x00\x00x\x02\x00\x00\x00yz")

  def test_fixed_size_decodes_without_a_copy(self):
    data = struct.pack("<4f", 1, 2, 3, 4)
    got = codec.decode_raw(codec.datatype("FP32"), (2, 2), data)
    self.assertFalse(got.flags.writeable)
    self.assertTrue(np.shares_memory(got, np.frombuffer(data, np.uint8)))
    view = memoryview(bytearray(data))[4:]
    self.assertEqual(
        codec.decode_raw(codec.datatype("FP32"), (3,), view).tolist(),
        [2, 3, 4])

  def test_bool_bytes_other_than_one_are_true(self):
    got = codec.decode_raw(codec.datatype("BOOL"), (4,), b"\x00\x01\x02\xff")
    self.assertEqual(got.dtype, np.bool_)
    self.assertEqual(got.tolist(), [False, True, True, True])

  def test_size_mismatch(self):
    with self.assertRaises(status.ServingError) as e:
      codec.decode_raw(codec.datatype("FP32"), (2, 3), b"\x00" * 20,
                       "input 'images'")
    self.assertEqual(e.exception.code, Code.INVALID_ARGUMENT)
    self.assertEqual(e.exception.message,
                     "input byte size mismatch for input 'images'. "
                     "Expected 24, got 20")
    self.assertEqual(
        _code(codec.decode_raw, codec.datatype("INT64"), (1,), b"\x00" * 16),
        Code.INVALID_ARGUMENT)

  def test_bad_bytes_elements(self):
    dt = codec.datatype("BYTES")
    one = b"\x01\x00\x00\x00a"
    for shape, data in (((1,), b""), ((1,), b"\x01\x00\x00"),
                        ((1,), b"\x05\x00\x00\x00abc"),
                        ((1,), one + b"x"), ((2,), one), ((3,), one * 2),
                        ((1,), b"\xff\xff\xff\xffab"), ((0,), one)):
      with self.subTest(shape=shape, data=data):
        with self.assertRaises(status.ServingError) as e:
          codec.decode_raw(dt, shape, data, "input 's'")
        self.assertEqual(e.exception.code, Code.INVALID_ARGUMENT)
        self.assertIn("input 's'", e.exception.message)

  def test_claimed_sizes_are_checked_before_allocating(self):
    # A shape of 2^62 elements with a few bytes must fail at once, for every
    # datatype, without trying to build such an array.
    for name in _TABLE:
      with self.subTest(datatype=name):
        self.assertEqual(
            _code(codec.decode_raw, codec.datatype(name), (2**31, 2**31),
                  b"\x00" * 64), Code.INVALID_ARGUMENT)

  def test_encode_errors(self):
    self.assertEqual(_code(codec.encode_raw, np.array([1j])),
                     Code.INVALID_ARGUMENT)
    self.assertEqual(_code(codec.encode_raw, np.array([1, None], object)),
                     Code.INVALID_ARGUMENT)


class ContentsTest(parameterized.TestCase):

  @parameterized.named_parameters(
      (n, n) for n in _TABLE if _TABLE[n][2] is not None)
  def test_round_trip(self, name):
    dt = codec.datatype(name)
    array = _sample(name)
    contents = grpc_service_pb2.InferTensorContents()
    codec.encode_contents(array, contents, dt)
    self.assertEqual(contents.ListFields()[0][0].name, dt.contents_field)
    self.assertLen(contents.ListFields(), 1)
    got = codec.decode_contents(dt, array.shape, contents)
    self.assertEqual(got.dtype, dt.numpy_dtype)
    self.assertEqual(got.tolist(), array.tolist())

  def test_fields_per_spec(self):
    contents = grpc_service_pb2.InferTensorContents(
        int_contents=[-128, 127], uint_contents=[0, 65535],
        uint64_contents=[2**64 - 1], int64_contents=[-2**63],
        bool_contents=[True], bytes_contents=[b"a"])
    self.assertEqual(
        codec.decode_contents(codec.datatype("INT8"), (2,), contents).tolist(),
        [-128, 127])
    self.assertEqual(
        codec.decode_contents(codec.datatype("UINT16"), (2,),
                              contents).tolist(), [0, 65535])
    self.assertEqual(
        codec.decode_contents(codec.datatype("UINT64"), (1,),
                              contents).tolist(), [2**64 - 1])
    self.assertEqual(
        codec.decode_contents(codec.datatype("INT64"), (1,),
                              contents).tolist(), [-2**63])

  def test_out_of_range_small_integers_are_refused(self):
    for name, field, value in (("INT8", "int_contents", 128),
                               ("INT8", "int_contents", -129),
                               ("INT16", "int_contents", 40000),
                               ("UINT8", "uint_contents", 256),
                               ("UINT16", "uint_contents", 70000)):
      with self.subTest(datatype=name, value=value):
        contents = grpc_service_pb2.InferTensorContents()
        getattr(contents, field).append(value)
        with self.assertRaises(status.ServingError) as e:
          codec.decode_contents(codec.datatype(name), (1,), contents, "input 'x'")
        self.assertIn(str(value), e.exception.message)

  def test_half_floats_have_no_contents(self):
    for name in ("FP16", "BF16"):
      with self.subTest(datatype=name):
        with self.assertRaises(status.ServingError) as e:
          codec.decode_contents(codec.datatype(name), (1,),
                                grpc_service_pb2.InferTensorContents(
                                    fp32_contents=[1.0]), "input 'h'")
        self.assertIn("raw", e.exception.message)
        self.assertEqual(
            _code(codec.encode_contents, np.zeros(1, _TABLE[name][1]),
                  grpc_service_pb2.InferTensorContents()),
            Code.INVALID_ARGUMENT)

  def test_count_mismatch(self):
    contents = grpc_service_pb2.InferTensorContents(fp32_contents=[1, 2, 3])
    for shape in ((2, 2), (2,), (0,)):
      with self.subTest(shape=shape):
        with self.assertRaises(status.ServingError) as e:
          codec.decode_contents(codec.datatype("FP32"), shape, contents,
                                "input 'x'")
        self.assertIn("input 'x'", e.exception.message)
    # Values in another datatype's field are not this datatype's values.
    self.assertEqual(
        _code(codec.decode_contents, codec.datatype("FP64"), (3,), contents),
        Code.INVALID_ARGUMENT)
    # A huge shape against few values fails before any allocation.
    self.assertEqual(
        _code(codec.decode_contents, codec.datatype("FP32"), (2**40,),
              contents), Code.INVALID_ARGUMENT)


class InferRequestTest(absltest.TestCase):

  def _request(self, raw: bool) -> grpc_service_pb2.ModelInferRequest:
    request = grpc_service_pb2.ModelInferRequest(model_name="m")
    a = request.inputs.add(name="a", datatype="FP32", shape=[1, 2])
    b = request.inputs.add(name="b", datatype="BYTES", shape=[2])
    if raw:
      request.raw_input_contents.append(struct.pack("<2f", 1.5, -2))
      request.raw_input_contents.append(
          b"\x01\x00\x00\x00x\x00\x00\x00\x00")
    else:
      a.contents.fp32_contents.extend([1.5, -2])
      b.contents.bytes_contents.extend([b"x", b""])
    return request

  def test_typed_and_raw_decode_alike(self):
    for raw in (False, True):
      with self.subTest(raw=raw):
        got = codec.decode_infer_request_inputs(self._request(raw))
        self.assertEqual(list(got), ["a", "b"])
        self.assertEqual(got["a"].tolist(), [[1.5, -2.0]])
        self.assertEqual(got["a"].dtype, np.float32)
        self.assertEqual(got["b"].tolist(), [b"x", b""])

  def test_raw_count_must_match_inputs(self):
    request = self._request(raw=True)
    del request.raw_input_contents[1]
    with self.assertRaises(status.ServingError) as e:
      codec.decode_infer_request_inputs(request)
    self.assertIn("raw_input_contents", e.exception.message)

  def test_raw_and_typed_together(self):
    request = self._request(raw=True)
    request.inputs[0].contents.fp32_contents.extend([1, 2])
    self.assertEqual(_code(codec.decode_infer_request_inputs, request),
                     Code.INVALID_ARGUMENT)

  def test_repeated_input(self):
    request = self._request(raw=False)
    request.inputs.add().CopyFrom(request.inputs[0])
    with self.assertRaises(status.ServingError) as e:
      codec.decode_infer_request_inputs(request)
    self.assertIn("'a'", e.exception.message)

  def test_bad_input_names_the_input(self):
    request = self._request(raw=False)
    request.inputs[1].datatype = "STRING"
    with self.assertRaises(status.ServingError) as e:
      codec.decode_infer_request_inputs(request)
    self.assertIn("input 'b'", e.exception.message)
    request = self._request(raw=False)
    request.inputs[0].shape[0] = -1
    self.assertEqual(_code(codec.decode_infer_request_inputs, request),
                     Code.INVALID_ARGUMENT)

  def test_add_infer_output(self):
    response = grpc_service_pb2.ModelInferResponse()
    codec.add_infer_output(response, "scores",
                           np.array([[0.25, 0.75]], np.float32))
    codec.add_infer_output(response, "labels",
                           np.array([b"cat", b"dog"], dtype=object))
    codec.add_infer_output(response, "half",
                           np.array([1, 2], np.float32), codec.datatype("BF16"))
    self.assertEqual(
        [(o.name, o.datatype, list(o.shape)) for o in response.outputs],
        [("scores", "FP32", [1, 2]), ("labels", "BYTES", [2]),
         ("half", "BF16", [2])])
    self.assertLen(response.raw_output_contents, 3)
    self.assertFalse(response.outputs[0].HasField("contents"))
    self.assertEqual(response.raw_output_contents[0],
                     struct.pack("<2f", 0.25, 0.75))
    self.assertEqual(
        codec.decode_raw(codec.datatype("BYTES"), (2,),
                         response.raw_output_contents[1]).tolist(),
        [b"cat", b"dog"])
    self.assertEqual(response.raw_output_contents[2],
                     struct.pack("<f", 1)[2:] + struct.pack("<f", 2)[2:])


class JsonTest(parameterized.TestCase):

  @parameterized.named_parameters((n, n) for n in _TABLE)
  def test_round_trip(self, name):
    dt = codec.datatype(name)
    array = _sample(name, utf8=True)
    data = codec.to_json_data(array, dt)
    self.assertLen(data, array.size)  # flat
    data = json.loads(json.dumps(data))
    got = codec.decode_json_data(dt, array.shape, data)
    self.assertEqual(got.dtype, dt.numpy_dtype)
    self.assertEqual(got.tolist(), array.tolist())

  def test_nested_flat_and_scalar(self):
    dt = codec.datatype("INT32")
    for data in ([[1, 2], [3, 4]], [1, 2, 3, 4], [[1, 2, 3, 4]]):
      self.assertEqual(codec.decode_json_data(dt, (2, 2), data).tolist(),
                       [[1, 2], [3, 4]])
    self.assertEqual(codec.decode_json_data(dt, (), 7).tolist(), 7)
    self.assertEqual(codec.decode_json_data(dt, (1,), [7]).tolist(), [7])
    self.assertEqual(
        codec.decode_json_data(codec.datatype("BYTES"), (2, 1),
                               [["a"], ["é"]]).tolist(),
        [[b"a"], ["é".encode()]])
    # Each level is all lists or all values; the count is what must match.
    self.assertEqual(
        codec.decode_json_data(dt, (2, 2), [[1, 2, 3], [4]]).tolist(),
        [[1, 2], [3, 4]])
    self.assertEqual(
        codec.decode_json_data(codec.datatype("FP32"), (0, 3), []).shape,
        (0, 3))

  def test_numbers_by_datatype(self):
    self.assertEqual(
        codec.decode_json_data(codec.datatype("FP32"), (2,), [1, 2.5]).tolist(),
        [1.0, 2.5])
    self.assertEqual(
        codec.decode_json_data(codec.datatype("UINT64"), (2,),
                               [0, 2**64 - 1]).tolist(), [0, 2**64 - 1])
    self.assertEqual(
        codec.decode_json_data(codec.datatype("INT64"), (2,),
                               [-2**63, 2**63 - 1]).tolist(),
        [-2**63, 2**63 - 1])
    self.assertEqual(
        codec.decode_json_data(codec.datatype("FP16"), (1,), [0.5]).dtype,
        np.float16)

  def test_bad_data(self):
    cases = [
        ("INT32", (2,), [1, 2.5]),
        ("INT32", (2,), [1, True]),
        ("INT32", (1,), ["1"]),
        ("INT8", (1,), [128]),
        ("UINT8", (1,), [-1]),
        ("UINT64", (2,), [0, 2**64]),
        ("INT64", (2,), [0, 2**63]),
        ("BOOL", (2,), [True, 1]),
        ("BOOL", (1,), ["true"]),
        ("FP32", (2,), [1, "x"]),
        ("FP32", (2,), [1, None]),
        ("FP32", (1,), [True]),
        ("FP64", (1,), {"a": 1}),
        ("FP32", (2, 2), [[1, 2], [3]]),
        ("FP32", (3,), [1, 2]),
        ("FP32", (1,), [1, 2]),
        ("BYTES", (2,), ["a", 1]),
        ("BYTES", (1,), [b"a"]),
        ("BYTES", (1,), [None]),
        ("BYTES", (2,), ["a"]),
        ("FP32", (2,), [1.5, True]),
        ("FP64", (1,), [10**400]),
        ("INT32", (2, 2), [[1, 2], 3, 4]),
    ]
    for name, shape, data in cases:
      with self.subTest(datatype=name, data=data):
        with self.assertRaises(status.ServingError) as e:
          codec.decode_json_data(codec.datatype(name), shape, data,
                                 "input 'x'")
        self.assertEqual(e.exception.code, Code.INVALID_ARGUMENT)
        self.assertIn("input 'x'", e.exception.message)

  def test_deep_nesting(self):
    data = "a"
    for _ in range(100):
      data = [data]
    self.assertEqual(
        _code(codec.decode_json_data, codec.datatype("BYTES"), (1,), data),
        Code.INVALID_ARGUMENT)
    self.assertEqual(
        _code(codec.decode_json_data, codec.datatype("FP32"), (1,),
              json.loads("[" * 100 + "1" + "]" * 100)), Code.INVALID_ARGUMENT)

  def test_strings_among_numbers_allocate_nothing_large(self):
    # numpy would make a 10^6 x 10^6-character array of this; the codec
    # refuses it by looking at the values' types, and quotes it briefly.
    with self.assertRaises(status.ServingError) as e:
      codec.decode_json_data(codec.datatype("FP32"), (10**6,),
                             ["x" * 10**6] + [1.0] * (10**6 - 1), "input 'x'")
    self.assertLess(len(e.exception.message), 400)

  def test_to_json_data(self):
    self.assertEqual(codec.to_json_data(np.array([[True, False]])),
                     [True, False])
    self.assertEqual(codec.to_json_data(np.array([b"a", "é"], object)),
                     ["a", "é"])
    out = codec.to_json_data(np.array([1.5], np.float32))
    self.assertIs(type(out[0]), float)
    out = codec.to_json_data(np.array([1.5], ml_dtypes.bfloat16))
    self.assertEqual(out, [1.5])
    self.assertIs(type(out[0]), float)
    self.assertIs(type(codec.to_json_data(np.array([7], np.uint64))[0]), int)
    with self.assertRaises(status.ServingError) as e:
      codec.to_json_data(np.array([b"\xff"], object))
    self.assertIn("binary_data", e.exception.message)

  def test_encode_json_output(self):
    array = np.array([[1, 2]], np.int64)
    output, blob = codec.encode_json_output("y", array)
    self.assertEqual(output, {"name": "y", "datatype": "INT64",
                              "shape": [1, 2], "data": [1, 2]})
    self.assertIsNone(blob)
    output, blob = codec.encode_json_output("y", array, binary=True)
    self.assertEqual(output, {"name": "y", "datatype": "INT64",
                              "shape": [1, 2],
                              "parameters": {"binary_data_size": 16}})
    self.assertEqual(blob, struct.pack("<2q", 1, 2))

  def test_decode_json_input(self):
    name, value = codec.decode_json_input(
        {"name": "x", "shape": [2], "datatype": "UINT32", "data": [1, 2]})
    self.assertEqual((name, value.tolist(), value.dtype),
                     ("x", [1, 2], np.uint32))
    name, value = codec.decode_json_input(
        {"name": "x", "shape": [2], "datatype": "UINT32",
         "parameters": {"binary_data_size": 8}}, struct.pack("<2I", 3, 4))
    self.assertEqual(value.tolist(), [3, 4])
    for tensor, blob in (
        ([], None),
        ({"shape": [1], "datatype": "FP32", "data": [1]}, None),
        ({"name": 3, "shape": [1], "datatype": "FP32", "data": [1]}, None),
        ({"name": "x", "datatype": "FP32", "data": [1]}, None),
        ({"name": "x", "shape": [1], "data": [1]}, None),
        ({"name": "x", "shape": [1], "datatype": "FP32"}, None),
        ({"name": "x", "shape": [1], "datatype": "FP32", "data": [1]},
         b"\x00" * 4),
        ({"name": "x", "shape": [1], "datatype": "FP32"}, b"\x00" * 3),
    ):
      with self.subTest(tensor=tensor, blob=blob):
        self.assertEqual(_code(codec.decode_json_input, tensor, blob),
                         Code.INVALID_ARGUMENT)


class BinaryExtensionTest(absltest.TestCase):

  def _triton_doc_example(self) -> tuple[bytes, int]:
    # The request of Triton's binary tensor data extension document: a
    # [2, 2] UINT32 input (16 bytes) and a [3] BOOL input (3 bytes).
    header = json.dumps({
        "model_name": "mymodel",
        "inputs": [
            {"name": "input0", "shape": [2, 2], "datatype": "UINT32",
             "parameters": {"binary_data_size": 16}},
            {"name": "input1", "shape": [3], "datatype": "BOOL",
             "parameters": {"binary_data_size": 3}},
        ],
        "outputs": [{"name": "output0", "parameters": {"binary_data": True}}],
    }).encode()
    body = header + struct.pack("<4I", 1, 2, 3, 4) + b"\x01\x00\x01"
    return body, len(header)

  def test_triton_doc_request(self):
    body, length = self._triton_doc_example()
    header, binary = codec.split_binary_body(body, str(length))
    request = json.loads(bytes(header))
    blobs = codec.take_binary_inputs(request["inputs"], binary)
    self.assertEqual([len(b) for b in blobs], [16, 3])
    inputs = dict(codec.decode_json_input(t, b)
                  for t, b in zip(request["inputs"], blobs))
    self.assertEqual(inputs["input0"].tolist(), [[1, 2], [3, 4]])
    self.assertEqual(inputs["input1"].tolist(), [True, False, True])
    self.assertTrue(codec.output_wants_binary(request, "output0"))

  def test_split_without_header_is_all_json(self):
    header, binary = codec.split_binary_body(b'{"inputs": []}', None)
    self.assertEqual(bytes(header), b'{"inputs": []}')
    self.assertEqual(len(binary), 0)
    header, binary = codec.split_binary_body(b"{}xyz", 2)
    self.assertEqual((bytes(header), bytes(binary)), (b"{}", b"xyz"))

  def test_bad_header_lengths(self):
    for value in ("-1", "abc", "1e3", "", " ", "3.0", "0x10", "٣",
                  "99999999999999999999999", "6", 6, -1, True, 2.0, b"2"):
      with self.subTest(value=value):
        self.assertEqual(_code(codec.split_binary_body, b"{}ab", value),
                         Code.INVALID_ARGUMENT)

  def test_take_binary_inputs(self):
    inputs = [{"name": "a", "parameters": {"binary_data_size": 2}},
              {"name": "b", "data": [1]},
              {"name": "c", "parameters": {"binary_data_size": 0}},
              {"name": "d", "parameters": {"binary_data_size": 3}}]
    blobs = codec.take_binary_inputs(inputs, b"12345")
    self.assertEqual([None if b is None else bytes(b) for b in blobs],
                     [b"12", None, b"", b"345"])

  def test_bad_claims(self):
    cases = [
        ([{"name": "a", "parameters": {"binary_data_size": 6}}], b"12345"),
        ([{"name": "a", "parameters": {"binary_data_size": 4}}], b"12345"),
        ([{"name": "a"}], b"1"),
        ([{"name": "a", "parameters": {"binary_data_size": -1}}], b""),
        ([{"name": "a", "parameters": {"binary_data_size": True}}], b"1"),
        ([{"name": "a", "parameters": {"binary_data_size": 1.0}}], b"1"),
        ([{"name": "a", "parameters": {"binary_data_size": "1"}}], b"1"),
        ([{"name": "a", "parameters": {"binary_data_size": 2**70}}], b"1"),
        ([{"name": "a", "parameters": [1]}], b""),
        ({"name": "a"}, b""),
        ("inputs", b""),
    ]
    for inputs, binary in cases:
      with self.subTest(inputs=inputs):
        self.assertEqual(_code(codec.take_binary_inputs, inputs, binary),
                         Code.INVALID_ARGUMENT)

  def test_output_wants_binary(self):
    request = {"parameters": {"binary_data_output": True},
               "outputs": [{"name": "a", "parameters": {"binary_data": False}},
                           {"name": "b"}]}
    self.assertFalse(codec.output_wants_binary(request, "a"))
    self.assertTrue(codec.output_wants_binary(request, "b"))
    self.assertTrue(codec.output_wants_binary(request, "c"))
    self.assertFalse(codec.output_wants_binary({}, "a"))
    self.assertTrue(codec.output_wants_binary(
        {"outputs": [{"name": "a", "parameters": {"binary_data": True}}]}, "a"))
    for request in ({"parameters": {"binary_data_output": 1}},
                    {"parameters": "yes"},
                    {"outputs": [{"name": "a",
                                  "parameters": {"binary_data": "true"}}]}):
      with self.subTest(request=request):
        self.assertEqual(_code(codec.output_wants_binary, request, "a"),
                         Code.INVALID_ARGUMENT)

  def test_encode_json_response(self):
    outputs = [("a", np.array([1.5, 2], np.float32)),
               ("b", np.array([b"xy"], object)),
               ("c", np.array([[True]]))]
    request = {"outputs": [{"name": "a", "parameters": {"binary_data": True}},
                           {"name": "c", "parameters": {"binary_data": True}}]}
    body, length = codec.encode_json_response(
        {"model_name": "m", "model_version": "1", "id": "7"}, outputs, request)
    header = json.loads(body[:length])
    self.assertEqual(header["id"], "7")
    self.assertEqual(header["outputs"][0]["parameters"],
                     {"binary_data_size": 8})
    self.assertEqual(header["outputs"][1]["data"], ["xy"])
    self.assertEqual(header["outputs"][2]["parameters"],
                     {"binary_data_size": 1})
    self.assertEqual(body[length:], struct.pack("<2f", 1.5, 2) + b"\x01")
    # All JSON: no header length, and a custom serializer.
    body, length = codec.encode_json_response(
        {"model_name": "m"}, outputs, None,
        dumps=lambda doc: json.dumps(doc, indent=1).encode())
    self.assertIsNone(length)
    self.assertEqual(json.loads(body)["outputs"][0]["data"], [1.5, 2.0])

  def test_build_binary_body(self):
    self.assertEqual(codec.build_binary_body("{}", []), (b"{}", None))
    self.assertEqual(codec.build_binary_body(b"{}", [b"ab", b"c"]),
                     (b"{}abc", 2))


class HostileInputTest(absltest.TestCase):
  """Random and adversarial bytes: every failure is a ServingError."""

  def test_random_raw_bytes(self):
    rng = random.Random(1234)
    for _ in range(3000):
      name = rng.choice(codec.DATATYPE_NAMES)
      shape = tuple(rng.choice([0, 1, 2, 3, 7, 2**20, 2**40])
                    for _ in range(rng.randint(0, 3)))
      data = bytes(rng.getrandbits(8) for _ in range(rng.randint(0, 40)))
      if rng.random() < 0.3:  # plausible BYTES prefixes
        data = struct.pack("<I", rng.choice([0, 1, 5, 2**31])) + data
      try:
        codec.decode_raw(codec.datatype(name), shape, data)
      except status.ServingError as e:
        self.assertEqual(e.code, Code.INVALID_ARGUMENT)

  def test_random_rest_bodies(self):
    rng = random.Random(99)
    for _ in range(2000):
      header = json.dumps({"inputs": [
          {"name": "x", "datatype": rng.choice(codec.DATATYPE_NAMES + ("X",)),
           "shape": [rng.choice([-1, 0, 1, 2, 3, 2**40])
                     for _ in range(rng.randint(0, 2))],
           "parameters": {"binary_data_size":
                              rng.choice([0, 1, 4, 8, 12, -5, 2**62])}}
      ]}).encode()
      body = header + bytes(rng.getrandbits(8)
                            for _ in range(rng.randint(0, 24)))
      length = rng.choice([str(len(header)), str(len(body) + 1), "x", None])
      try:
        json_part, binary = codec.split_binary_body(body, length)
        request = json.loads(bytes(json_part))
        blobs = codec.take_binary_inputs(request["inputs"], binary)
        for tensor, blob in zip(request["inputs"], blobs):
          codec.decode_json_input(tensor, blob)
      except status.ServingError as e:
        self.assertEqual(e.code, Code.INVALID_ARGUMENT)
      except (json.JSONDecodeError, UnicodeDecodeError):
        pass  # the header length cut the JSON: the caller's parser says so

  def test_random_typed_contents(self):
    rng = random.Random(7)
    fields = {
        "bool_contents": lambda: rng.random() < 0.5,
        "int_contents": lambda: rng.randint(-2**31, 2**31 - 1),
        "int64_contents": lambda: rng.randint(-2**63, 2**63 - 1),
        "uint_contents": lambda: rng.randint(0, 2**32 - 1),
        "uint64_contents": lambda: rng.randint(0, 2**64 - 1),
        "fp32_contents": lambda: rng.uniform(-1e30, 1e30),
        "fp64_contents": lambda: rng.uniform(-1e300, 1e300),
        "bytes_contents": lambda: bytes(rng.getrandbits(8) for _ in range(3)),
    }
    for _ in range(1000):
      contents = grpc_service_pb2.InferTensorContents()
      for field, make in fields.items():
        if rng.random() < 0.3:
          getattr(contents, field).extend(
              make() for _ in range(rng.randint(0, 5)))
      name = rng.choice(codec.DATATYPE_NAMES)
      shape = (rng.choice([0, 1, 2, 3, 5, 2**33]),)
      try:
        got = codec.decode_contents(codec.datatype(name), shape, contents)
        self.assertEqual(got.shape, shape)
      except status.ServingError as e:
        self.assertEqual(e.code, Code.INVALID_ARGUMENT)


if __name__ == "__main__":
  absltest.main()
