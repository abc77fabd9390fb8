"""End to end: GET /v1/models and the per-version metrics, on the binary.

Issue 14's items 1 and 5 (not in upstream), with the built
tensorflow_model_server in its own process, real files and real sockets:
  * the model list follows the config file as it is polled: a model added
    with no version yet is listed with GetModelStatus's NOT_FOUND, a model
    whose only version fails to load is listed with that version in END and
    its error, and both turn up as they change;
  * the Prometheus page labels requests with the version and signature
    that answered, over REST and gRPC; names a client makes up (a model, a
    version, a signature) appear nowhere on it; each version's state and
    load time are there.
"""

import http.client
import json
import os
import shutil
import time
import uuid

from absl.testing import absltest
import grpc
import numpy as np
from prometheus_client import parser

from tensorflow_serving.apis import predict_pb2
from tensorflow_serving.apis import prediction_service_pb2_grpc
from tensorflow_serving.model_servers.test_util import model_server_process
from tensorflow_serving.servables.tensorflow.test_util import half_plus_two
from tensorflow_serving.util import tensor_codec

_WAIT = 120.0
_METRICS_PATH = "/monitoring/prometheus/metrics"
_OK = {"error_code": "OK", "error_message": ""}


def _wait_for(what, predicate, timeout=_WAIT):
  deadline = time.monotonic() + timeout
  while time.monotonic() < deadline:
    value = predicate()
    if value:
      return value
    time.sleep(0.2)
  raise AssertionError(f"timed out after {timeout:g} s waiting for {what}")


def _model_config(models: dict[str, str]) -> str:
  entries = "".join(
      f'  config {{ name: "{name}" base_path: "{path}" '
      'model_platform: "tensorflow" }\n' for name, path in models.items())
  return f"model_config_list {{\n{entries}}}\n"


class ModelStatusE2eTest(absltest.TestCase):

  @classmethod
  def setUpClass(cls):
    super().setUpClass()
    root = half_plus_two.fresh_dir("model_status_e2e")
    cls.paths = {name: os.path.join(root, name)
                 for name in ("half", "later", "broken")}
    half_plus_two.write_tf1(os.path.join(cls.paths["half"], "1"))
    os.makedirs(cls.paths["later"])
    # A complete-looking version whose graph is garbage: it fails to load.
    broken = half_plus_two.write_tf1(os.path.join(root, "broken_export"))
    with open(os.path.join(broken, "saved_model.pb"), "wb") as f:
      f.write(b"this is not a SavedModel")
    os.makedirs(cls.paths["broken"])
    shutil.move(broken, os.path.join(cls.paths["broken"], "1"))
    cls.config_path = os.path.join(root, "models.config")
    cls.write_config({"half": cls.paths["half"]})
    monitoring = os.path.join(root, "monitoring.config")
    with open(monitoring, "w") as f:
      f.write(f'prometheus_config {{ enable: true path: "{_METRICS_PATH}" }}\n')
    cls.grpc_port = model_server_process.free_port()
    cls.rest_port = model_server_process.free_port()
    cls.server = model_server_process.ModelServerProcess([
        f"--port={cls.grpc_port}", f"--rest_api_port={cls.rest_port}",
        f"--model_config_file={cls.config_path}",
        "--model_config_file_poll_wait_seconds=1",
        "--file_system_poll_wait_seconds=1", "--max_num_load_retries=0",
        f"--monitoring_config_file={monitoring}"])
    try:
      cls.server.start()
      _wait_for("the REST port", lambda: cls.get("/v1/models/half")[0] == 200)
    except BaseException:
      cls.server.kill()
      raise

  @classmethod
  def tearDownClass(cls):
    try:
      cls.server.stop()
    finally:
      cls.server.kill()
    super().tearDownClass()

  @classmethod
  def write_config(cls, models: dict[str, str]) -> None:
    # Replaced whole, so that a poll never reads half a file.
    tmp = cls.config_path + ".tmp"
    with open(tmp, "w") as f:
      f.write(_model_config(models))
    os.replace(tmp, cls.config_path)

  @classmethod
  def get(cls, path: str) -> tuple[int, str]:
    try:
      conn = http.client.HTTPConnection("localhost", cls.rest_port, timeout=30)
      try:
        conn.request("GET", path)
        response = conn.getresponse()
        return response.status, response.read().decode()
      finally:
        conn.close()
    except OSError:
      return 0, ""

  def post(self, path: str, body: dict) -> int:
    conn = http.client.HTTPConnection("localhost", self.rest_port, timeout=30)
    try:
      conn.request("POST", path, json.dumps(body))
      response = conn.getresponse()
      response.read()
      return response.status
    finally:
      conn.close()

  def models(self) -> dict[str, dict]:
    code, body = self.get("/v1/models")
    self.assertEqual(code, 200, body)
    return {entry.pop("name"): entry for entry in json.loads(body)["models"]}

  def samples(self) -> tuple[str, list]:
    """The Prometheus page and its samples."""
    code, page = self.get(_METRICS_PATH)
    self.assertEqual(code, 200)
    return page, [sample for family in parser.text_string_to_metric_families(
        page) for sample in family.samples]

  def value(self, samples, name: str, **labels) -> float:
    # (prometheus_client's parser names a counter's samples "<name>_total".)
    found = [s.value for s in samples
             if s.name in (name, name + "_total") and s.labels == labels]
    self.assertLen(found, 1, f"{name}{labels}")
    return found[0]

  def test_model_list_follows_the_config(self):
    self.assertEqual(self.models(), {"half": {
        "model_version_status": [
            {"version": "1", "state": "AVAILABLE", "status": _OK}],
        "status": _OK}})
    self.write_config(self.paths)

    def listed():
      models = self.models()
      broken = models.get("broken", {}).get("model_version_status")
      return models if broken and broken[0]["state"] == "END" else None

    models = _wait_for("the new models to be listed", listed)
    self.assertEqual(list(models), ["half", "later", "broken"])
    # No version yet: what GetModelStatus says of it.
    self.assertEqual(models["later"], {
        "model_version_status": [],
        "status": {"error_code": "NOT_FOUND",
                   "error_message": "Could not find any versions of model "
                                    "later"}})
    self.assertEqual(json.loads(self.get("/v1/models/later")[1]),
                     {"error": "Could not find any versions of model later"})
    # Its only version failed: listed in END with the load's error.
    [version] = models["broken"]["model_version_status"]
    self.assertEqual((version["version"], version["state"]), ("1", "END"))
    self.assertNotEqual(version["status"]["error_code"], "OK")
    self.assertEqual(models["broken"]["status"], _OK)
    # A version arrives for "later": listed once it serves.
    export = half_plus_two.write_tf1(
        os.path.join(self.paths["later"] + ".export", "1"))
    shutil.move(export, os.path.join(self.paths["later"], "1"))
    _wait_for("later/1 to be listed AVAILABLE",
              lambda: self.models()["later"]["model_version_status"] == [
                  {"version": "1", "state": "AVAILABLE", "status": _OK}])
    # Each version's state and load time, from the same event bus.
    _, samples = self.samples()
    state = ":tensorflow:serving:model_version_state"
    self.assertEqual(self.value(samples, state, model_name="later",
                                version="1"), 30)
    self.assertEqual(self.value(samples, state, model_name="broken",
                                version="1"), 50)
    self.assertGreater(
        self.value(samples, ":tensorflow:serving:model_version_load_latency",
                   model_name="later", version="1"), 0)

  def test_requests_are_labelled_by_what_answered(self):
    made_up = f"made_up_{uuid.uuid4().hex}"
    self.assertEqual(self.post("/v1/models/half:predict",
                               {"instances": [[1.0]]}), 200)
    self.assertEqual(self.post("/v1/models/half:predict",
                               {"signature_name": made_up,
                                "instances": [[1.0]]}), 400)
    self.assertEqual(self.post(f"/v1/models/{made_up}:predict",
                               {"instances": [[1.0]]}), 404)
    self.assertEqual(self.post("/v1/models/half/versions/987654321:predict",
                               {"instances": [[1.0]]}), 404)
    request = predict_pb2.PredictRequest()
    request.model_spec.name = "half"
    request.model_spec.signature_name = "serving_default"
    request.inputs["x"].CopyFrom(tensor_codec.ndarray_to_tensor_proto(
        np.array([[2.0]], np.float32)))
    with grpc.insecure_channel(f"localhost:{self.grpc_port}") as channel:
      stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
      stub.Predict(request, timeout=30)
      request.model_spec.name = made_up
      with self.assertRaises(grpc.RpcError):
        stub.Predict(request, timeout=30)
    page, samples = self.samples()
    count = ":tensorflow:serving:request_count"
    self.assertGreaterEqual(self.value(
        samples, count, model_name="half", status="OK", API="predict",
        entrypoint="REST", version="1", signature="serving_default"), 1)
    self.assertGreaterEqual(self.value(
        samples, count, model_name="half", status="OK", API="Predict",
        entrypoint="GRPC", version="1", signature="serving_default"), 1)
    self.assertGreaterEqual(self.value(
        samples, count, model_name="half", status="INVALID_ARGUMENT",
        API="predict", entrypoint="REST", version="1",
        signature="__unknown__"), 1)
    self.assertGreaterEqual(self.value(
        samples, count, model_name="half", status="NOT_FOUND", API="predict",
        entrypoint="REST", version="__unknown__", signature="__unknown__"), 1)
    self.assertGreaterEqual(self.value(
        samples, count, model_name="__unknown__", status="NOT_FOUND",
        API="Predict", entrypoint="GRPC", version="__unknown__",
        signature="__unknown__"), 1)
    self.assertGreaterEqual(self.value(
        samples, ":tensorflow:serving:request_latency_count",
        model_name="half", API="predict", entrypoint="REST", version="1",
        signature="serving_default"), 1)
    self.assertGreaterEqual(self.value(
        samples, ":tensorflow:serving:runtime_latency_count",
        model_name="half", API="Predict", runtime="TF1", version="1",
        signature="serving_default"), 2)
    # What the client made up is nowhere on the page.
    self.assertNotIn(made_up, page)
    self.assertNotIn("987654321", page)


if __name__ == "__main__":
  absltest.main()
