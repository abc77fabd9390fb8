"""Tests for servables/tensorflow/predict_util.py on TF1 and TF2 exports."""

import numpy as np
import tensorflow as tf
from absl.testing import absltest
from absl.testing import parameterized

from tensorflow.core.framework import tensor_pb2
from tensorflow_serving.apis import predict_pb2
from tensorflow_serving.servables.tensorflow import predict_util
from tensorflow_serving.servables.tensorflow import saved_model_bundle
from tensorflow_serving.servables.tensorflow.test_util import half_plus_two
from tensorflow_serving.util import metrics
from tensorflow_serving.util import status

_KINDS = ("tf1", "tf2")


def _request(signature_name="", **inputs) -> predict_pb2.PredictRequest:
  request = predict_pb2.PredictRequest()
  request.model_spec.name = "half"
  request.model_spec.signature_name = signature_name
  for alias, value in inputs.items():
    request.inputs[alias].CopyFrom(
        value if isinstance(value, tensor_pb2.TensorProto) else
        tf.make_tensor_proto(value))
  return request


class PredictTest(parameterized.TestCase):

  @classmethod
  def setUpClass(cls):
    super().setUpClass()
    cls.bundles = half_plus_two.load_test_bundles(
        "predict_util_test")
    # A second view of the TF1 model with signatures upstream's half_plus_two
    # lacks: a default input and a non-standard method name.
    meta_graph_def = type(cls.bundles["tf1"].meta_graph_def)()
    meta_graph_def.CopyFrom(cls.bundles["tf1"].meta_graph_def)
    sum_and_diff = meta_graph_def.signature_def["sum_and_diff"]
    sum_and_diff.defaults["b"].CopyFrom(
        tf.make_tensor_proto(np.array([10.0], np.float32)))
    meta_graph_def.signature_def["greet"].method_name = "my/method"
    cls.edited = saved_model_bundle.SavedModelBundle(
        cls.bundles["tf1"].session, meta_graph_def)

  @classmethod
  def tearDownClass(cls):
    for bundle in cls.bundles.values():
      bundle.close()
    super().tearDownClass()

  def _predict(self, kind, request, **kwargs):
    return predict_util.run_predict(self.bundles[kind], request, 7, **kwargs)

  def _assert_error(self, code, text, kind, request, **kwargs):
    with self.assertRaises(status.ServingError) as ctx:
      self._predict(kind, request, **kwargs)
    self.assertEqual(ctx.exception.code, code, ctx.exception.message)
    self.assertIn(text, ctx.exception.message)
    return ctx.exception.message

  @parameterized.parameters(*_KINDS)
  def test_default_signature(self, kind):
    response = self._predict(
        kind, _request(x=np.array([[1.0], [2.0]], np.float32)))
    self.assertEqual(response.model_spec.name, "half")
    self.assertEqual(response.model_spec.version.value, 7)
    self.assertEqual(response.model_spec.signature_name, "serving_default")
    y = response.outputs["y"]
    self.assertEqual(list(y.float_val), [2.5, 3.0])
    self.assertEqual([d.size for d in y.tensor_shape.dim], [2, 1])
    self.assertEqual(y.tensor_content, b"")

  def test_runtime_latency_recorded(self):
    # Labelled with the version and the signature that ran (not in
    # upstream).
    cell = metrics.RUNTIME_LATENCY.get_cell("half", "Predict", "TF1", "7",
                                            "serving_default")
    before = cell.snapshot()[2]
    self._predict("tf1", _request(x=np.array([[1.0]], np.float32)))
    self.assertEqual(cell.snapshot()[2], before + 1)

  @parameterized.parameters(*_KINDS)
  def test_tensor_content_option(self, kind):
    response = self._predict(
        kind, _request(x=np.array([[2.0]], np.float32)), tensor_content=True)
    y = response.outputs["y"]
    self.assertEmpty(y.float_val)
    np.testing.assert_array_equal(tf.make_ndarray(y), [[3.0]])

  @parameterized.parameters(*_KINDS)
  def test_typed_field_input_and_flexible_shape(self, kind):
    x = tensor_pb2.TensorProto(dtype=1, float_val=[2.0, 4.0])
    x.tensor_shape.dim.add().size = 2
    response = self._predict(kind, _request(x=x))
    self.assertEqual(list(response.outputs["y"].float_val), [3.0, 4.0])

  @parameterized.parameters(*_KINDS)
  def test_string_and_int_signatures(self, kind):
    response = self._predict(
        kind, _request("greet", name=np.array([b"ann", b"bo"], object)))
    self.assertEqual(list(response.outputs["greeting"].string_val),
                     [b"hi ann", b"hi bo"])
    self.assertEqual(response.model_spec.signature_name, "greet")
    response = self._predict(
        kind, _request("int_plus_one", i=np.array([1, 2**40], np.int64)))
    self.assertEqual(list(response.outputs["i_plus_one"].int64_val),
                     [2, 2**40 + 1])

  @parameterized.parameters(*_KINDS)
  def test_output_filter(self, kind):
    request = _request("sum_and_diff", a=np.array([5.0], np.float32),
                       b=np.array([3.0], np.float32))
    response = self._predict(kind, request)
    self.assertEqual(sorted(response.outputs), ["diff", "sum"])
    request.output_filter.append("diff")
    response = self._predict(kind, request)
    self.assertEqual(list(response.outputs), ["diff"])
    self.assertEqual(list(response.outputs["diff"].float_val), [2.0])

  @parameterized.parameters(*_KINDS)
  def test_unknown_signature(self, kind):
    message = self._assert_error(
        status.Code.FAILED_PRECONDITION, "", kind,
        _request("nope", x=np.zeros((1, 1), np.float32)))
    self.assertEqual(message, 'Serving signature key "nope" not found.')

  @parameterized.parameters(*_KINDS)
  def test_inputs_given_as_arrays(self, kind):
    # The V2 protocol's path: the same result and the same checks, with the
    # inputs decoded already and request.inputs left empty.
    request = _request("sum_and_diff")
    response = self._predict(
        kind, request, inputs={"a": np.array([3.0], np.float32),
                               "b": np.array([1.0], np.float32)})
    self.assertEqual(tf.make_ndarray(response.outputs["sum"]).tolist(), [4.0])
    message = self._assert_error(
        status.Code.INVALID_ARGUMENT, "", kind, request,
        inputs={"a": np.array([3.0], np.float32)})
    self.assertIn("Missing but required: {b}.", message)
    self._assert_error(
        status.Code.INVALID_ARGUMENT,
        "Expects arg[0] to be float but double is provided", kind,
        _request(), inputs={"x": np.ones((1, 1), np.float64)})

  @parameterized.parameters(*_KINDS)
  def test_missing_input(self, kind):
    message = self._assert_error(
        status.Code.INVALID_ARGUMENT, "", kind,
        _request("sum_and_diff", a=np.zeros(1, np.float32)))
    self.assertEqual(
        message, "input size does not match signature: 1!=2 len({a}) != "
        "len({a,b}). Sent extra: {}. Missing but required: {b}.")

  @parameterized.parameters(*_KINDS)
  def test_extra_input(self, kind):
    message = self._assert_error(
        status.Code.INVALID_ARGUMENT, "", kind,
        _request(x=np.zeros((1, 1), np.float32),
                 z=np.zeros((1, 1), np.float32)))
    self.assertEqual(
        message, "input size does not match signature: 2!=1 len({x,z}) != "
        "len({x}). Sent extra: {z}. Missing but required: {}.")

  @parameterized.parameters(*_KINDS)
  def test_wrong_alias(self, kind):
    message = self._assert_error(
        status.Code.INVALID_ARGUMENT,
        "Signature input alias: x(feed name: ", kind,
        _request(z=np.zeros((1, 1), np.float32)))
    self.assertIn("not found in request and no default value provided. "
                  "Inputs expected to be in the request {z}", message)

  @parameterized.parameters(*_KINDS)
  def test_wrong_dtype(self, kind):
    # Upstream's text: TensorFlow's DirectSession numbers the feeds by sorted
    # tensor name.
    self._assert_error(
        status.Code.INVALID_ARGUMENT,
        "Expects arg[0] to be float but int32 is provided", kind,
        _request(x=np.ones((1, 1), np.int32)))

  @parameterized.parameters(*_KINDS)
  def test_malformed_tensor(self, kind):
    x = tensor_pb2.TensorProto(dtype=1, tensor_content=b"\0\0\0")
    x.tensor_shape.dim.add().size = 1
    self._assert_error(status.Code.INVALID_ARGUMENT,
                       "tensor parsing error: x: tensor_content has 3 bytes",
                       kind, _request(x=x))
    x = tensor_pb2.TensorProto(dtype=1, float_val=[1])
    x.tensor_shape.dim.add().size = -2
    self._assert_error(status.Code.INVALID_ARGUMENT,
                       "tensor parsing error: x: tensor shape [-2]", kind,
                       _request(x=x))
    x = tensor_pb2.TensorProto(float_val=[1])
    self._assert_error(status.Code.INVALID_ARGUMENT,
                       "tensor parsing error: x: tensor dtype is DT_INVALID",
                       kind, _request(x=x))

  @parameterized.parameters(*_KINDS)
  def test_shape_mismatch_reported_by_tensorflow(self, kind):
    self._assert_error(
        status.Code.INVALID_ARGUMENT, "Incompatible shapes", kind,
        _request("sum_and_diff", a=np.zeros(2, np.float32),
                 b=np.zeros(3, np.float32)))

  @parameterized.parameters(*_KINDS)
  def test_bad_output_filter(self, kind):
    request = _request(x=np.zeros((1, 1), np.float32))
    request.output_filter.append("z")
    message = self._assert_error(status.Code.INVALID_ARGUMENT, "", kind,
                                 request)
    self.assertEqual(message, "output tensor alias not found in signature: z "
                     "Outputs expected to be in the set {y}.")
    request.output_filter[:] = ["y", "y"]
    message = self._assert_error(status.Code.INVALID_ARGUMENT, "", kind,
                                 request)
    self.assertEqual(message, "duplicate output tensor alias: y")

  def test_default_inputs(self):
    request = _request("sum_and_diff", a=np.array([1.0], np.float32))
    response = predict_util.run_predict(self.edited, request, 1)
    self.assertEqual(list(response.outputs["sum"].float_val), [11.0])
    request.inputs["bogus"].CopyFrom(tf.make_tensor_proto([1.0]))
    with self.assertRaises(status.ServingError) as ctx:
      predict_util.run_predict(self.edited, request, 1)
    self.assertEqual(
        ctx.exception.message, "Inputs contains invalid name. Used request "
        "inputs: a, request input: a,bogus")

  def test_method_name_check(self):
    request = _request("greet", name=np.array([b"x"], object))
    predict_util.run_predict(self.edited, request, 1)
    with self.assertRaises(status.ServingError) as ctx:
      predict_util.run_predict(self.edited, request, 1,
                               method_name_check=True)
    self.assertEqual(ctx.exception.code, status.Code.INTERNAL)
    self.assertEqual(
        ctx.exception.message,
        "Expected prediction signature method_name to be one of "
        "{tensorflow/serving/predict, tensorflow/serving/classify, "
        "tensorflow/serving/regress}. Was: my/method")


if __name__ == "__main__":
  absltest.main()
