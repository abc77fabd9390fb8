"""Tests of the DataPlane with no transport at all.

A real ServerCore serves a hashmap model, a half_plus_two SavedModel and a
servable that raises (the "faulty" platform); the tests call the data plane
directly, as a front end would, and check what it adds to the servable call:
the handle, the kind check, the deadline, request logging, the metrics and
the one catch-all code.
"""

import os
import threading
import time
from typing import Mapping

import numpy as np
from absl.testing import absltest

from tensorflow_serving.apis import get_model_metadata_pb2
from tensorflow_serving.apis import get_model_status_pb2
from tensorflow_serving.apis import model_pb2
from tensorflow_serving.apis import predict_pb2
from tensorflow_serving.model_servers import data_plane
from tensorflow_serving.model_servers import server_core as server_core_lib
from tensorflow_serving.model_servers.test_util import faulty_servable
from tensorflow_serving.model_servers.test_util import server_core_test_util
from tensorflow_serving.servables.hashmap import hashmap_source_adapter
from tensorflow_serving.servables.hashmap.test_util import hashmap_test_util
from tensorflow_serving.servables.tensorflow import saved_model_bundle_source_adapter
from tensorflow_serving.servables.tensorflow.test_util import half_plus_two
from tensorflow_serving.servables.tensorflow.test_util import requests
from tensorflow_serving.util import metrics
from tensorflow_serving.util import status
from tensorflow_serving.util import tensor_codec

RequestContext = data_plane.RequestContext
Code = status.Code
UNKNOWN = metrics.UNKNOWN


def _count(model, code, api="Predict", version="4",
           signature="serving_default"):
  """The request_count cell of a data_plane_test request ("TEST")."""
  return metrics.REQUEST_COUNT.get_cell(model, code, api, "TEST", version,
                                        signature)


def _series_naming(text: str) -> list[tuple[str, ...]]:
  """Every request metric series with `text` among its label values."""
  return [labels for metric in (metrics.REQUEST_COUNT, metrics.REQUEST_LATENCY)
          for labels, _ in metric.cells() if text in labels]


class _RecordingCore:
  """A ServerCore whose request logging is recorded (a ServingCore too)."""

  def __init__(self, core: server_core_lib.ServerCore) -> None:
    self._core = core
    self.logged = []
    self._mu = threading.Lock()

  def get_servable_handle(self, model_spec):
    return self._core.get_servable_handle(model_spec)

  @property
  def servable_state_monitor(self):
    return self._core.servable_state_monitor

  def log_request(self, request, response):
    with self._mu:
      self.logged.append((request, response))

  def configured_model_names(self):
    return self._core.configured_model_names()


def _spec(name: str, signature_name: str = "") -> model_pb2.ModelSpec:
  return model_pb2.ModelSpec(name=name, signature_name=signature_name)


def _predict_request(model: str, *xs: float) -> predict_pb2.PredictRequest:
  request = predict_pb2.PredictRequest(model_spec=_spec(model))
  request.inputs["x"].CopyFrom(tensor_codec.ndarray_to_tensor_proto(
      np.array([[x] for x in xs], np.float32)))
  return request


def _ys(response: predict_pb2.PredictResponse) -> list[float]:
  return tensor_codec.tensor_proto_to_ndarray(
      response.outputs["y"]).ravel().tolist()


class DataPlaneTest(absltest.TestCase):

  @classmethod
  def setUpClass(cls):
    super().setUpClass()
    base = half_plus_two.fresh_dir("data_plane_test")
    table = os.path.join(base, "table")
    hashmap_test_util.write_version(table, 1, {"a": "1"})
    faulty = os.path.join(base, "faulty")
    hashmap_test_util.write_version(faulty, 1, {})
    half = half_plus_two.write_versions(os.path.join(base, "half"),
                                        half_plus_two.write_tf1, (4,))
    config = server_core_test_util.model_config({"table": table})
    for name, path, platform in (
        ("half", half, server_core_lib.TENSORFLOW_MODEL_PLATFORM),
        ("faulty", faulty, faulty_servable.FAULTY_PLATFORM)):
      config.model_config_list.config.add(
          name=name, base_path=path, model_platform=platform)
    cls.server_core = server_core_lib.ServerCore.create(
        server_core_test_util.options(
            config,
            platform_source_adapters={
                server_core_test_util.HASHMAP_PLATFORM:
                    hashmap_source_adapter.HashmapSourceAdapter,
                server_core_lib.TENSORFLOW_MODEL_PLATFORM:
                    saved_model_bundle_source_adapter
                    .SavedModelBundleSourceAdapter,
                faulty_servable.FAULTY_PLATFORM:
                    faulty_servable.FaultySourceAdapter,
            }))

  @classmethod
  def tearDownClass(cls):
    cls.server_core.stop()
    super().tearDownClass()

  def setUp(self):
    super().setUp()
    self.core = _RecordingCore(self.server_core)
    self.plane = data_plane.DataPlane(self.core)

  def context(self, api="Predict", timeout=None) -> RequestContext:
    return RequestContext.with_timeout("TEST", api, timeout)

  def assert_error(self, code: Code, message: str, call, *args, **kwargs):
    with self.assertRaises(status.ServingError) as cm:
      call(*args, **kwargs)
    self.assertEqual((cm.exception.code, cm.exception.message),
                     (code, message))

  # ---------------------------------------------------- a SavedModel

  def test_predict_runs_logs_and_counts(self):
    ok = _count("half", "OK")
    latency = metrics.REQUEST_LATENCY.get_cell("half", "Predict", "TEST", "4",
                                               "serving_default")
    ok_before, latency_before = ok.value(), latency.snapshot()[2]
    request = _predict_request("half", 1.0, 2.0)
    response = self.plane.predict(request, self.context())
    self.assertEqual(_ys(response), [2.5, 3.0])
    self.assertEqual(response.model_spec.version.value, 4)
    self.assertEqual(self.core.logged, [(request, response)])
    self.assertEqual(ok.value(), ok_before + 1)
    self.assertEqual(latency.snapshot()[2], latency_before + 1)

  def test_predict_decodes_inside_the_handle(self):
    request = predict_pb2.PredictRequest(model_spec=_spec("half"))
    seen = []

    def decode(servable):
      inputs = servable.get_signature_inputs("")
      seen.append((servable.version, list(inputs)))
      request.inputs["x"].CopyFrom(tensor_codec.ndarray_to_tensor_proto(
          np.array([[4.0]], np.float32)))

    response = self.plane.predict(request, self.context(), decode=decode)
    self.assertEqual(seen, [(4, ["x"])])
    self.assertEqual(_ys(response), [4.0])
    # A decode error is the call's error.

    def bad_decode(servable):
      del servable
      raise status.invalid_argument("bad JSON")

    self.assert_error(Code.INVALID_ARGUMENT, "bad JSON", self.plane.predict,
                      request, self.context(), decode=bad_decode)

  def test_predict_with_decoded_arrays(self):
    # The V2 protocol's path: decode returns the inputs as arrays; the
    # request logged is built (inputs filled in) only when it is logged.
    request = predict_pb2.PredictRequest(model_spec=_spec("half"))
    response = self.plane.predict(
        request, self.context(),
        decode=lambda servable: {"x": np.array([[2.0]], np.float32)})
    self.assertEqual(_ys(response), [3.0])
    self.assertEmpty(request.inputs)
    (logged, logged_response), = self.core.logged
    self.assertIs(logged_response, response)
    self.assertTrue(callable(logged))
    self.assertEqual(tensor_codec.tensor_proto_to_ndarray(
        logged().inputs["x"]).tolist(), [[2.0]])

  def test_tensor_content(self):
    response = self.plane.predict(_predict_request("half", 2.0),
                                  self.context(), tensor_content=True)
    self.assertTrue(response.outputs["y"].tensor_content)

  def test_classify_regress_multi_inference(self):
    response = self.plane.classify(
        requests.classification_request("classify_x_to_y", 2.0),
        self.context("Classify"))
    self.assertEqual(response.result.classifications[0].classes[0].score, 3.0)
    response = self.plane.regress(
        requests.regression_request("regress_x_to_y", 2.0),
        self.context("Regress"))
    self.assertEqual(response.result.regressions[0].value, 3.0)
    response = self.plane.multi_inference(
        requests.multi_inference_request(
            [("regress_x_to_y", "tensorflow/serving/regress")], 2.0),
        self.context(None))
    self.assertEqual(response.results[0].model_spec.version.value, 4)
    self.assertLen(self.core.logged, 3)

  def test_metadata_is_checked_before_the_lookup(self):
    request = get_model_metadata_pb2.GetModelMetadataRequest(
        model_spec=_spec("nope"))
    self.assert_error(
        Code.INVALID_ARGUMENT,
        "GetModelMetadataRequest must specify at least one metadata_field",
        self.plane.get_model_metadata, request, self.context(None))
    request.model_spec.name = "half"
    request.metadata_field.append("signature_def")
    response = self.plane.get_model_metadata(request, self.context(None))
    self.assertEqual(response.model_spec.version.value, 4)
    self.assertEmpty(self.core.logged)

  def test_model_status(self):
    request = get_model_status_pb2.GetModelStatusRequest(
        model_spec=_spec("half"))
    response = self.plane.get_model_status(request, self.context(""))
    self.assertEqual([v.version for v in response.model_version_status], [4])
    self.assert_error(Code.NOT_FOUND, "Could not find any versions of model x",
                      self.plane.get_model_status,
                      get_model_status_pb2.GetModelStatusRequest(
                          model_spec=_spec("x")), self.context(""))

  # ------------------------------------------- the rules, on every call

  def test_unknown_model_is_not_found_and_counted(self):
    # Under the placeholder: a client's names make no series of their own.
    not_found = _count(UNKNOWN, "NOT_FOUND", version=UNKNOWN,
                       signature=UNKNOWN)
    before = not_found.value()
    for name in ("dp_nope", "dp_nope2"):
      self.assert_error(Code.NOT_FOUND,
                        f"Servable not found for request: Latest({name})",
                        self.plane.predict, _predict_request(name, 1.0),
                        self.context())
      self.assertEqual(_series_naming(name), [])
    self.assertEqual(not_found.value(), before + 2)
    self.assertEmpty(self.core.logged)

  def test_labels_come_from_what_answered(self):
    # A known model, but no such version: the model is named, the version
    # and signature are not.
    request = _predict_request("half", 1.0)
    request.model_spec.version.value = 987654
    request.model_spec.signature_name = "sig_987654"
    cell = _count("half", "NOT_FOUND", version=UNKNOWN, signature=UNKNOWN)
    before = cell.value()
    with self.assertRaises(status.ServingError):
      self.plane.predict(request, self.context())
    self.assertEqual(cell.value(), before + 1)
    self.assertEqual(_series_naming("987654"), [])
    self.assertEqual(_series_naming("sig_987654"), [])
    # A version that answers, with a signature it lacks: the version is
    # named, the signature is not.
    request.model_spec.ClearField("version")
    cell = _count("half", "FAILED_PRECONDITION", signature=UNKNOWN)
    before = cell.value()
    with self.assertRaises(status.ServingError):
      self.plane.predict(request, self.context())
    self.assertEqual(cell.value(), before + 1)
    self.assertEqual(_series_naming("sig_987654"), [])
    # A signature the version has is named as such.
    cell = _count("half", "OK", api="Classify", signature="classify_x_to_y")
    before = cell.value()
    self.plane.classify(
        requests.classification_request("classify_x_to_y", 1.0, model="half"),
        self.context("Classify"))
    self.assertEqual(cell.value(), before + 1)
    # Status calls have no version or signature; metadata calls no
    # signature; an unknown model's status is under the placeholder.
    status_request = get_model_status_pb2.GetModelStatusRequest(
        model_spec=_spec("half"))
    cell = _count("half", "OK", api="", version="", signature="")
    before = cell.value()
    self.plane.get_model_status(status_request, self.context(""))
    self.assertEqual(cell.value(), before + 1)
    cell = _count("half", "OK", api="", signature="")
    before = cell.value()
    self.plane.get_model_metadata(
        get_model_metadata_pb2.GetModelMetadataRequest(
            model_spec=_spec("half"), metadata_field=["signature_def"]),
        self.context(""))
    self.assertEqual(cell.value(), before + 1)
    cell = _count(UNKNOWN, "NOT_FOUND", api="", version="", signature="")
    before = cell.value()
    with self.assertRaises(status.ServingError):
      self.plane.get_model_status(
          get_model_status_pb2.GetModelStatusRequest(
              model_spec=_spec("dp_status_nope")), self.context(""))
    self.assertEqual(cell.value(), before + 1)
    # run() names the signature it is told of.
    cell = _count("half", "OK", api="infer", signature="serving_default")
    before = cell.value()
    self.plane.run(_spec("half"), self.context("infer"), lambda s: s.version,
                   signature="")
    self.assertEqual(cell.value(), before + 1)

  def test_list_models(self):
    cell = _count("", "OK", api="", version="", signature="")
    before = cell.value()
    statuses = self.plane.list_models(self.context(""))
    self.assertEqual([m.name for m in statuses],
                     ["table", "half", "faulty"])  # The config's order.
    self.assertEqual(
        [[v.version for v in m.response.model_version_status]
         for m in statuses], [[1], [4], [1]])
    self.assertEqual([m.error for m in statuses], [None] * 3)
    self.assertEqual(cell.value(), before + 1)

  def test_wrong_servable_kind_is_unimplemented(self):
    for call, request in (
        (self.plane.predict, _predict_request("table", 1.0)),
        (self.plane.classify,
         requests.classification_request("", 1.0, model="table")),
        (self.plane.get_model_metadata,
         get_model_metadata_pb2.GetModelMetadataRequest(
             model_spec=_spec("table"), metadata_field=["signature_def"]))):
      self.assert_error(Code.UNIMPLEMENTED,
                        "Servable table does not support this API", call,
                        request, self.context())

  def test_generic_entry_runs_on_any_kind(self):
    value = self.plane.run(_spec("table"), self.context(""),
                           lambda table: table["a"], kind=Mapping)
    self.assertEqual(value, "1")
    # Servable is the default kind: a hashmap is not one.
    self.assert_error(Code.UNIMPLEMENTED,
                      "Servable table does not support this API",
                      self.plane.run, _spec("table"), self.context(""), len)
    self.assertEqual(
        self.plane.run(_spec("half"), self.context(""),
                       lambda s: s.version), 4)

  def test_foreign_exceptions_have_the_catch_all_code(self):
    unknown = _count("faulty", "UNKNOWN", version="1")
    before = unknown.value()
    with self.assertLogs(level="ERROR"):  # With the traceback.
      self.assert_error(status.CATCH_ALL_CODE, faulty_servable.ERROR_TEXT,
                        self.plane.predict, _predict_request("faulty", 1.0),
                        self.context())
    self.assertEqual(unknown.value(), before + 1)
    # The same from the generic entry, whatever the exception.
    with self.assertLogs(level="ERROR"):
      self.assert_error(status.CATCH_ALL_CODE, "'missing'", self.plane.run,
                        _spec("table"), self.context(),
                        lambda table: table["missing"], kind=Mapping)

  def test_a_passed_deadline_runs_nothing(self):
    calls = []
    context = RequestContext("TEST", "", deadline=time.monotonic() - 1,
                             start=time.monotonic() - 1.5)
    self.assert_error(Code.DEADLINE_EXCEEDED,
                      "Deadline exceeded: the request took longer than 500 ms",
                      self.plane.run, _spec("half"), context, calls.append)
    self.assertEmpty(calls)

  def test_a_deadline_passing_during_the_call(self):
    context = self.context(timeout=0.05)

    def decode(servable):
      del servable
      while time.monotonic() < context.deadline:
        time.sleep(0.01)

    request = _predict_request("half", 1.0)
    self.assert_error(Code.DEADLINE_EXCEEDED,
                      "Deadline exceeded: the request took longer than 50 ms",
                      self.plane.predict, request, context, decode=decode)
    self.assertEmpty(self.core.logged)  # The client has gone.

  def test_a_context_without_api_is_not_counted(self):
    ok = _count("half", "OK")
    before = ok.value()
    self.plane.predict(_predict_request("half", 1.0), self.context(None))
    self.assertEqual(ok.value(), before)

  def test_count_refused(self):
    cell = _count(UNKNOWN, "INVALID_ARGUMENT", version=UNKNOWN,
                  signature=UNKNOWN)
    half = _count("half", "INVALID_ARGUMENT", version=UNKNOWN,
                  signature=UNKNOWN)
    before = cell.value(), half.value()
    self.plane.count_refused(self.context(), "dp_refused",
                             status.invalid_argument("bad URL"))
    self.plane.count_refused(self.context(None), "dp_refused",
                             status.invalid_argument("bad URL"))
    self.plane.count_refused(self.context(), "half",
                             status.invalid_argument("bad body"))
    self.assertEqual((cell.value(), half.value()),
                     (before[0] + 1, before[1] + 1))
    self.assertEqual(_series_naming("dp_refused"), [])


if __name__ == "__main__":
  absltest.main()
