"""Tests for servables/tensorflow/saved_model_bundle_source_adapter.py."""

import os

import numpy as np
from absl.testing import absltest
from absl.testing import parameterized

from tensorflow_serving.apis import predict_pb2
from tensorflow_serving.core import servable_data
from tensorflow_serving.core import servable_id
from tensorflow_serving.servables.tensorflow import saved_model_bundle_source_adapter as adapter_lib
from tensorflow_serving.servables.tensorflow import saved_model_servable
from tensorflow_serving.servables.tensorflow.test_util import half_plus_two
from tensorflow_serving.servables.tensorflow.test_util import requests
from tensorflow_serving.util import metrics
from tensorflow_serving.util import status
from tensorflow_serving.util import tensor_codec

_Adapter = adapter_lib.SavedModelBundleSourceAdapter


class SourceAdapterTest(parameterized.TestCase):

  @classmethod
  def setUpClass(cls):
    super().setUpClass()
    base = half_plus_two.fresh_dir("adapter_test")
    cls.paths = {
        "tf1": half_plus_two.write_tf1(os.path.join(base, "tf1", "1")),
        "tf2": half_plus_two.write_tf2(os.path.join(base, "tf2", "1")),
        "keras": half_plus_two.write_keras(os.path.join(base, "keras", "1")),
    }

  @parameterized.parameters("tf1", "tf2", "keras")
  def test_loader_lifecycle(self, kind):
    path = self.paths[kind]
    loader = _Adapter().convert(servable_id.ServableId("half", 1), path)
    loader.load()
    servable = loader.servable()
    self.assertIsInstance(servable, saved_model_servable.SavedModelServable)
    self.assertEqual(servable.version, 1)
    request = predict_pb2.PredictRequest()
    request.model_spec.name = "half"
    request.inputs["x"].CopyFrom(tensor_codec.ndarray_to_tensor_proto(
        np.array([[4.0]], np.float32)))
    output, = servable.predict(request).outputs.values()
    self.assertEqual(
        tensor_codec.tensor_proto_to_ndarray(output).tolist(), [[4.0]])
    session = servable.bundle.session
    loader.unload()
    self.assertTrue(session._closed)  # pylint: disable=protected-access
    self.assertIsNone(loader.servable())

  def test_load_attempts_counted(self):
    ok = metrics.LOAD_ATTEMPT_COUNT.get_cell(self.paths["tf1"], "success")
    before = ok.value()
    loader = _Adapter().convert(servable_id.ServableId("half", 1),
                                self.paths["tf1"])
    loader.load()
    loader.unload()
    self.assertEqual(ok.value(), before + 1)

  def test_convert_does_not_load(self):
    loader = _Adapter().convert(servable_id.ServableId("half", 1), "/no/dir")
    failed = metrics.LOAD_ATTEMPT_COUNT.get_cell("/no/dir", "fail")
    before = failed.value()
    with self.assertRaises(status.ServingError) as ctx:
      loader.load()
    self.assertEqual(ctx.exception.code, status.Code.NOT_FOUND)
    self.assertEqual(failed.value(), before + 1)

  def test_adapt_passes_loaders_on(self):
    adapter = _Adapter()
    received = []
    adapter.set_aspired_versions_callback(
        lambda name, versions: received.append((name, versions)))
    sid = servable_id.ServableId("half", 1)
    adapter.get_aspired_versions_callback()(
        "half", [servable_data.ServableData.ok(sid, self.paths["tf1"])])
    (name, (version,)), = received
    self.assertEqual(name, "half")
    self.assertTrue(version.is_ok())
    self.assertEqual(version.id, sid)

  def test_tags_option(self):
    options = _Adapter.Options(
        saved_model_tags=adapter_lib.parse_saved_model_tags("tpu,serve"))
    self.assertEqual(options.saved_model_tags, ("tpu", "serve"))
    loader = _Adapter(options).convert(servable_id.ServableId("half", 1),
                                       self.paths["tf1"])
    with self.assertRaises(status.ServingError) as ctx:
      loader.load()
    self.assertEqual(ctx.exception.code, status.Code.NOT_FOUND)
    self.assertIn("{ tpu serve }", ctx.exception.message)

  def test_method_name_check_option(self):
    loader = _Adapter(_Adapter.Options(
        enable_signature_method_name_check=True)).convert(
            servable_id.ServableId("half", 1), self.paths["tf2"])
    loader.load()
    try:
      with self.assertRaises(status.ServingError) as ctx:
        loader.servable().regress(
            requests.regression_request("regress_x_to_y", 1.0))
      self.assertIn("method_name", ctx.exception.message)
    finally:
      loader.unload()

if __name__ == "__main__":
  absltest.main()
