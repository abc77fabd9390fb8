"""Tests for saved_model_warmup: records run on a servable, and in loads."""

import os

from absl.testing import absltest

from tensorflow_serving.apis import prediction_log_pb2
from tensorflow_serving.core import servable_id
from tensorflow_serving.servables.tensorflow import saved_model_bundle_source_adapter as adapter_lib
from tensorflow_serving.servables.tensorflow import saved_model_servable
from tensorflow_serving.servables.tensorflow import saved_model_warmup
from tensorflow_serving.servables.tensorflow import servable as servable_lib
from tensorflow_serving.servables.tensorflow.test_util import half_plus_two
from tensorflow_serving.servables.tensorflow.test_util import warmup_requests
from tensorflow_serving.util import status


class _Spy(servable_lib.Servable):
  """Forwards to a real servable and records which methods ran."""

  def __init__(self, inner: servable_lib.Servable):
    self.inner = inner
    self.calls = []

  name = property(lambda self: self.inner.name)
  version = property(lambda self: self.inner.version)

  def get_signature_inputs(self, signature_name):
    return self.inner.get_signature_inputs(signature_name)

  def get_signature_outputs(self, signature_name):
    return self.inner.get_signature_outputs(signature_name)

  def predict(self, request, *, tensor_content=False, deadline=None,
              inputs=None):
    self.calls.append("predict")
    return self.inner.predict(request, inputs=inputs)

  def classify(self, request, *, deadline=None):
    self.calls.append("classify")
    return self.inner.classify(request)

  def regress(self, request, *, deadline=None):
    self.calls.append("regress")
    return self.inner.regress(request)

  def multi_inference(self, request, *, deadline=None):
    self.calls.append("multi_inference")
    return self.inner.multi_inference(request)

  def get_model_metadata(self, request):
    return self.inner.get_model_metadata(request)


class SavedModelWarmupTest(absltest.TestCase):

  @classmethod
  def setUpClass(cls):
    super().setUpClass()
    cls.base = half_plus_two.fresh_dir("warmup")
    bundles = half_plus_two.load_test_bundles("warmup_bundles", kinds=("tf1",))
    cls.servable = saved_model_servable.SavedModelServable(
        servable_id.ServableId("half", 1), bundles["tf1"])

  @classmethod
  def tearDownClass(cls):
    cls.servable.close()
    super().tearDownClass()

  def test_every_supported_kind_runs(self):
    export_dir = self.create_tempdir().full_path
    warmup_requests.write(export_dir, warmup_requests.half_plus_two_records())
    spy = _Spy(self.servable)
    options = saved_model_warmup.ModelWarmupOptions()
    options.num_request_iterations.value = 2
    saved_model_warmup.run_saved_model_warmup(options, export_dir, spy)
    self.assertEqual(spy.calls, [
        "predict", "predict", "classify", "classify", "regress", "regress",
        "multi_inference", "multi_inference"
    ])

  def test_session_run_log_is_unsupported(self):
    record = prediction_log_pb2.PredictionLog()
    record.session_run_log.request.model_spec.name = "half"
    with self.assertRaises(status.ServingError) as cm:
      saved_model_warmup.run_warmup_request(self.servable, record)
    self.assertEqual(cm.exception.code, status.Code.UNIMPLEMENTED)
    self.assertEqual(cm.exception.message,
                     "Unsupported log_type for warmup: 5")

  def test_empty_record_is_skipped(self):
    spy = _Spy(self.servable)
    saved_model_warmup.run_warmup_request(spy,
                                          prediction_log_pb2.PredictionLog())
    self.assertEmpty(spy.calls)

  def test_request_the_model_rejects(self):
    record = warmup_requests.predict_record(signature_name="nope")
    with self.assertRaises(status.ServingError) as cm:
      saved_model_warmup.run_warmup_request(self.servable, record)
    self.assertEqual(cm.exception.code, status.Code.FAILED_PRECONDITION)
    self.assertEqual(cm.exception.message,
                     'Serving signature key "nope" not found.')


class AdapterWarmupTest(absltest.TestCase):
  """The source adapter warms each version up as part of its load."""

  def load(self, export_dir: str, **options):
    adapter = adapter_lib.SavedModelBundleSourceAdapter(
        adapter_lib.SavedModelBundleSourceAdapterOptions(**options))
    loader = adapter.convert(servable_id.ServableId("half", 1), export_dir)
    loader.load()
    loader.unload()

  def test_good_warmup_loads_and_bad_warmup_fails_the_load(self):
    base = half_plus_two.fresh_dir("adapter_warmup")
    good = half_plus_two.write_tf1(os.path.join(base, "good"))
    warmup_requests.write(good, warmup_requests.half_plus_two_records())
    self.load(good)

    bad = half_plus_two.write_tf1(os.path.join(base, "bad"))
    warmup_requests.write_raw(bad, b"definitely not TFRecord data")
    with self.assertRaises(status.ServingError) as cm:
      self.load(bad)
    self.assertEqual(cm.exception.code, status.Code.DATA_LOSS)
    self.assertIn("Please verify your warmup data is in TFRecord format.",
                  cm.exception.message)
    # --enable_model_warmup=false: the file is not read at all.
    self.load(bad, enable_model_warmup=False)

  def test_tf2_export_replays_every_kind(self):
    # The multi_inference record's classify and regress tasks take their
    # examples through different input tensors in a TF2 export; the replay
    # feeds both, as a MultiInference request does, and the load succeeds.
    export_dir = half_plus_two.write_tf2(
        os.path.join(half_plus_two.fresh_dir("adapter_warmup_tf2"), "1"))
    warmup_requests.write(export_dir, warmup_requests.half_plus_two_records())
    self.load(export_dir)


if __name__ == "__main__":
  absltest.main()
