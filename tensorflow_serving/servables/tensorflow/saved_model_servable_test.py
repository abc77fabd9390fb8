"""Tests for servables/tensorflow/saved_model_servable.py."""

import numpy as np
import tensorflow as tf
from absl.testing import absltest

from tensorflow_serving.apis import get_model_metadata_pb2
from tensorflow_serving.apis import predict_pb2
from tensorflow_serving.core import servable_id
from tensorflow_serving.servables.tensorflow import saved_model_servable
from tensorflow_serving.servables.tensorflow import servable
from tensorflow_serving.servables.tensorflow.test_util import half_plus_two
from tensorflow_serving.servables.tensorflow.test_util import requests
from tensorflow_serving.util import status


class SavedModelServableTest(absltest.TestCase):

  @classmethod
  def setUpClass(cls):
    super().setUpClass()
    bundles = half_plus_two.load_test_bundles(
        "servable_test")
    cls.tf1 = saved_model_servable.SavedModelServable(
        servable_id.ServableId("half", 12), bundles["tf1"])
    cls.tf2_checked = saved_model_servable.SavedModelServable(
        servable_id.ServableId("half", 13), bundles["tf2"],
        saved_model_servable.SavedModelServable.Options(
            enable_signature_method_name_check=True))

  @classmethod
  def tearDownClass(cls):
    cls.tf1.close()
    cls.tf2_checked.close()
    super().tearDownClass()

  def test_is_a_servable(self):
    self.assertIsInstance(self.tf1, servable.Servable)
    self.assertEqual(self.tf1.name, "half")
    self.assertEqual(self.tf1.version, 12)
    self.assertIn("greet", self.tf1.signatures)

  def test_predict_echoes_version(self):
    request = predict_pb2.PredictRequest()
    request.model_spec.name = "half"
    request.inputs["x"].CopyFrom(
        tf.make_tensor_proto(np.array([[2.0]], np.float32)))
    response = self.tf1.predict(request)
    self.assertEqual(response.model_spec.version.value, 12)
    self.assertEqual(list(response.outputs["y"].float_val), [3.0])
    response = self.tf1.predict(request, tensor_content=True)
    self.assertEqual(tf.make_ndarray(response.outputs["y"]).tolist(), [[3.0]])

  def test_predict_output_filter(self):
    request = predict_pb2.PredictRequest(output_filter=["sum"])
    request.model_spec.name = "half"
    request.model_spec.signature_name = "sum_and_diff"
    request.inputs["a"].CopyFrom(
        tf.make_tensor_proto(np.array([3.0], np.float32)))
    request.inputs["b"].CopyFrom(
        tf.make_tensor_proto(np.array([1.0], np.float32)))
    outputs = self.tf1.predict(request).outputs
    self.assertEqual(list(outputs), ["sum"])
    self.assertEqual(tf.make_ndarray(outputs["sum"]).tolist(), [4.0])

  def test_signature_inputs(self):
    inputs = self.tf1.get_signature_inputs("")
    self.assertEqual(list(inputs), ["x"])
    self.assertEqual(inputs["x"].dtype, tf.float32.as_datatype_enum)
    self.assertCountEqual(self.tf1.get_signature_inputs("sum_and_diff"),
                          ["a", "b"])
    self.assertIsNone(self.tf1.get_signature_inputs("nope"))

  def test_signature_outputs(self):
    outputs = self.tf1.get_signature_outputs("")
    self.assertEqual(list(outputs), ["y"])
    self.assertEqual(outputs["y"].dtype, tf.float32.as_datatype_enum)
    self.assertCountEqual(self.tf1.get_signature_outputs("sum_and_diff"),
                          ["sum", "diff"])
    self.assertIsNone(self.tf1.get_signature_outputs("nope"))

  def test_method_name_check_option(self):
    request = requests.regression_request("regress_x_to_y", 2.0)
    self.assertEqual(self.tf1.regress(request).result.regressions[0].value,
                     3.0)
    with self.assertRaises(status.ServingError) as ctx:
      self.tf2_checked.regress(request)
    self.assertIn("Was: tensorflow/serving/predict", ctx.exception.message)

  def test_classify_and_multi_inference(self):
    request = requests.classification_request("classify_x_to_y", 2.0)
    response = self.tf1.classify(request)
    self.assertEqual(response.result.classifications[0].classes[0].score, 3.0)
    response = self.tf1.multi_inference(
        requests.multi_inference_request(
            [("regress_x_to_y", "tensorflow/serving/regress")], 2.0))
    self.assertEqual(response.results[0].model_spec.version.value, 12)

  def test_get_model_metadata(self):
    request = get_model_metadata_pb2.GetModelMetadataRequest(
        metadata_field=["signature_def"])
    request.model_spec.name = "half"
    first = self.tf1.get_model_metadata(request)
    second = self.tf1.get_model_metadata(request)
    self.assertEqual(first, second)
    self.assertEqual(first.model_spec.version.value, 12)
    signature_def_map = get_model_metadata_pb2.SignatureDefMap()
    first.metadata["signature_def"].Unpack(signature_def_map)
    self.assertCountEqual(signature_def_map.signature_def,
                          half_plus_two.SIGNATURES)


if __name__ == "__main__":
  absltest.main()
