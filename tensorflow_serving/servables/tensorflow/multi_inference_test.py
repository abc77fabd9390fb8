"""Tests for servables/tensorflow/multi_inference.py."""

from absl.testing import absltest
from absl.testing import parameterized

from tensorflow_serving.servables.tensorflow import multi_inference
from tensorflow_serving.servables.tensorflow.test_util import half_plus_two
from tensorflow_serving.servables.tensorflow.test_util import requests
from tensorflow_serving.util import status

_CLASSIFY = "tensorflow/serving/classify"
_REGRESS = "tensorflow/serving/regress"
_PREDICT = "tensorflow/serving/predict"


class MultiInferenceTest(parameterized.TestCase):

  @classmethod
  def setUpClass(cls):
    super().setUpClass()
    cls.bundles = half_plus_two.load_test_bundles(
        "multi_inference_test")

  @classmethod
  def tearDownClass(cls):
    for bundle in cls.bundles.values():
      bundle.close()
    super().tearDownClass()

  def _infer(self, kind, request, **kwargs):
    return multi_inference.run_multi_inference(self.bundles[kind], request,
                                               9, **kwargs)

  def _assert_error(self, kind, request, code, text):
    with self.assertRaises(status.ServingError) as ctx:
      self._infer(kind, request)
    self.assertEqual(ctx.exception.code, code, ctx.exception.message)
    self.assertIn(text, ctx.exception.message)

  def test_regress_and_classify(self):
    request = requests.multi_inference_request(
        [("regress_x_to_y", _REGRESS), ("regress_x_to_y2", _REGRESS),
         ("classify_x_to_y_with_classes", _CLASSIFY)], 2.0)
    response = self._infer("tf1", request)
    self.assertLen(response.results, 3)
    first, second, third = response.results
    self.assertEqual(first.model_spec.name, "half")
    self.assertEqual(first.model_spec.signature_name, "regress_x_to_y")
    self.assertEqual(first.model_spec.version.value, 9)
    self.assertEqual(first.regression_result.regressions[0].value, 3.0)
    self.assertEqual(second.regression_result.regressions[0].value, 4.0)
    cls = third.classification_result.classifications[0].classes[0]
    self.assertEqual((cls.label, cls.score), ("x=2.0", 3.0))

  @parameterized.parameters("tf1", "tf2")
  def test_single_task(self, kind):
    request = requests.multi_inference_request(
        [("classify_x_to_y", _CLASSIFY)], 2.0, 4.0)
    response = self._infer(kind, request)
    scores = [c.classes[0].score
              for c in response.results[0].classification_result
              .classifications]
    self.assertEqual(scores, [3.0, 4.0])

  @parameterized.parameters("tf1", "tf2")
  def test_signatures_with_different_input_tensors(self, kind):
    # Upstream's testMultiInferenceTf2: in a TF2 export every signature
    # function has its own placeholder, so regress_x_to_y and classify_x_to_y
    # take the examples through different tensors; HEAD feeds the same
    # examples to each (in TF1 the two share one tensor: one feed).
    regress = self.bundles[kind].signatures["regress_x_to_y"]
    classify = self.bundles[kind].signatures["classify_x_to_y"]
    shared = regress.input_names["inputs"] == classify.input_names["inputs"]
    self.assertEqual(shared, kind == "tf1")
    request = requests.multi_inference_request(
        [("regress_x_to_y", _REGRESS), ("classify_x_to_y", _CLASSIFY),
         ("regress_x_to_y2", _REGRESS)], 2.0, 6.0)
    response = self._infer(kind, request)
    self.assertLen(response.results, 3)
    regress_result, classify_result, regress2_result = response.results
    self.assertEqual(
        [r.value for r in regress_result.regression_result.regressions],
        [3.0, 5.0])
    self.assertEqual(
        [c.classes[0].score
         for c in classify_result.classification_result.classifications],
        [3.0, 5.0])
    self.assertEqual(
        [r.value for r in regress2_result.regression_result.regressions],
        [4.0, 6.0])
    for task, result in zip(request.tasks, response.results):
      self.assertEqual(result.model_spec.name, "half")
      self.assertEqual(result.model_spec.signature_name,
                       task.model_spec.signature_name)
      self.assertEqual(result.model_spec.version.value, 9)

  @parameterized.parameters("tf1", "tf2")
  def test_input_tensor_that_cannot_take_examples(self, kind):
    # regress_x2_to_y3 takes a float tensor, not serialized examples: the
    # examples are fed to it too and TensorFlow refuses them, in the words of
    # upstream's session, which numbers the feeds by sorted tensor name:
    # TF1 "tf_example:0" < "x2:0"; TF2 "regress_x2_to_y3_inputs:0" <
    # "regress_x_to_y_inputs:0".
    index = {"tf1": 1, "tf2": 0}[kind]
    self._assert_error(
        kind,
        requests.multi_inference_request(
            [("regress_x_to_y", _REGRESS), ("regress_x2_to_y3", _REGRESS)],
            1.0), status.Code.INVALID_ARGUMENT,
        f"Expects arg[{index}] to be float but string is provided")

  def test_errors(self):
    self._assert_error(
        "tf1",
        requests.multi_inference_request([("regress_x_to_y", _REGRESS)]),
        status.Code.INVALID_ARGUMENT, "Input is empty.")
    self._assert_error(
        "tf1", requests.multi_inference_request([("nope", _REGRESS)], 1.0),
        status.Code.INVALID_ARGUMENT,
        "Requested signature not found in model graph: nope")
    request = requests.multi_inference_request(
        [("regress_x_to_y", _REGRESS), ("regress_x_to_y2", _REGRESS)], 1.0)
    request.tasks[1].model_spec.name = "other"
    self._assert_error(
        "tf1", request, status.Code.INVALID_ARGUMENT,
        "All ModelSpecs in a MultiInferenceRequest must access the same model "
        "name.")
    request.tasks[1].model_spec.name = ""
    self._assert_error("tf1", request, status.Code.INVALID_ARGUMENT,
                       "Found ModelSpec with an empty model name.")
    self._assert_error(
        "tf1",
        requests.multi_inference_request(
            [("regress_x_to_y", _REGRESS), ("regress_x_to_y", _REGRESS)], 1.0),
        status.Code.INVALID_ARGUMENT,
        "Duplicate evaluation of signature: regress_x_to_y")
    self._assert_error(
        "tf1",
        requests.multi_inference_request([("serving_default", _PREDICT)], 1.0),
        status.Code.UNIMPLEMENTED,
        "Unsupported signature method_name: tensorflow/serving/predict")
    self._assert_error(
        "tf1",
        requests.multi_inference_request([("classify_x_to_y", _REGRESS)], 1.0),
        status.Code.INVALID_ARGUMENT,
        "No regression outputs found in SignatureDef")
    self._assert_error("tf1", requests.multi_inference_request([], 1.0),
                       status.Code.INVALID_ARGUMENT, "at least one task")


if __name__ == "__main__":
  absltest.main()
