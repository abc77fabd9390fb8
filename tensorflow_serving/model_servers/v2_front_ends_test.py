"""The V2 protocol's gRPC service and /v2 REST API on real sockets.

A Server (in this process, with its real gRPC and HTTP servers) serves the
dtypes model (a signature per V2 datatype), half_plus_two and, later,
models added by reloads and by the repository API. Requests are built by
hand here (our protos, http.client), so every wire detail is checked: typed
and raw gRPC contents, JSON and binary REST bodies, Triton's raw binary
request, gzip, status codes and error bodies, and the health service
following readiness through a reload and a shutdown. Third-party clients
(tritonclient, the kserve SDK) are v2_clients_e2e_test's.
"""

import gzip
import http.client
import json
import os
import socket
import threading
import time

from absl.testing import absltest
import grpc
from grpc_health.v1 import health_pb2
from grpc_health.v1 import health_pb2_grpc
import numpy as np

from tensorflow_serving.apis import get_model_status_pb2
from tensorflow_serving.apis import grpc_service_pb2
from tensorflow_serving.apis import grpc_service_pb2_grpc
from tensorflow_serving.apis import model_management_pb2
from tensorflow_serving.apis import model_service_pb2_grpc
from tensorflow_serving.apis import predict_pb2
from tensorflow_serving.apis import prediction_service_pb2_grpc
from tensorflow_serving.model_servers import server as server_lib
from tensorflow_serving.servables.tensorflow.test_util import dtypes_model
from tensorflow_serving.servables.tensorflow.test_util import half_plus_two
from tensorflow_serving.util import tensor_codec
from tensorflow_serving.util import v2_tensor_codec as codec

WAIT = 60.0
SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING
HEALTH_NAMES = ("", "inference.GRPCInferenceService", "PredictionService",
                "tensorflow.serving.ModelService")


def _free_port() -> int:
  with socket.socket() as s:
    s.bind(("localhost", 0))
    return s.getsockname()[1]


def _config(models: dict[str, str]) -> str:
  entries = "".join(
      f'  config {{ name: "{name}" base_path: "{path}" '
      'model_platform: "tensorflow" }\n' for name, path in models.items())
  return "model_config_list {\n" + entries + "}\n"


class V2FrontEndsTest(absltest.TestCase):

  @classmethod
  def setUpClass(cls):
    super().setUpClass()
    cls.root = half_plus_two.fresh_dir("v2_front_ends_test")
    cls.dtypes = os.path.join(cls.root, "dtypes")
    dtypes_model.write(os.path.join(cls.dtypes, "1"))
    cls.half = half_plus_two.write_versions(os.path.join(cls.root, "half"),
                                            half_plus_two.write_tf2, (2,))
    config_file = os.path.join(cls.root, "models.config")
    with open(config_file, "w") as f:
      f.write(_config({"dtypes": cls.dtypes, "half": cls.half}))
    cls.server = server_lib.Server()
    cls.server.build_and_start(server_lib.ServerOptions(
        port=_free_port(), rest_api_port=_free_port(),
        model_config_file=config_file, file_system_poll_wait_seconds=1,
        rest_api_num_threads=4, grpc_max_threads=8))
    cls.channel = grpc.insecure_channel(f"localhost:{cls.server.grpc_port}")
    cls.stub = grpc_service_pb2_grpc.GRPCInferenceServiceStub(cls.channel)
    cls.health = health_pb2_grpc.HealthStub(cls.channel)

  @classmethod
  def tearDownClass(cls):
    cls.channel.close()
    cls.server.stop()
    super().tearDownClass()

  # ---------------------------------------------------------------- helpers

  def rest(self, method, path, body=b"", headers=None):
    """(status, headers, body) of one HTTP call."""
    conn = http.client.HTTPConnection("localhost", self.server.rest_port,
                                      timeout=WAIT)
    try:
      conn.request(method, path, body=body, headers=headers or {})
      response = conn.getresponse()
      return response.status, dict(response.getheaders()), response.read()
    finally:
      conn.close()

  def rest_json(self, method, path, doc=None, expect=200):
    body = b"" if doc is None else json.dumps(doc).encode()
    code, headers, data = self.rest(method, path, body)
    self.assertEqual(code, expect, data)
    self.assertEqual(headers["Content-Type"], "application/json")
    return json.loads(data) if data else None

  def assert_rest_error(self, method, path, body, code, message,
                        headers=None):
    status, response_headers, data = self.rest(method, path, body, headers)
    self.assertEqual(status, code, data)
    self.assertEqual(response_headers["Content-Type"], "application/json")
    self.assertEqual(json.loads(data), {"error": message})

  def assert_grpc_error(self, call, request, code, message):
    with self.assertRaises(grpc.RpcError) as cm:
      call(request, timeout=WAIT)
    self.assertEqual(cm.exception.code(), code)
    self.assertEqual(cm.exception.details(), message)

  def predict(self, model, signature, inputs):
    request = predict_pb2.PredictRequest()
    request.model_spec.name = model
    request.model_spec.signature_name = signature
    for name, value in inputs.items():
      tensor_codec.ndarray_to_tensor_proto(value, request.inputs[name])
    stub = prediction_service_pb2_grpc.PredictionServiceStub(self.channel)
    response = stub.Predict(request, timeout=WAIT)
    return {k: tensor_codec.tensor_proto_to_ndarray(v)
            for k, v in response.outputs.items()}

  def health_status(self, service=""):
    return self.health.Check(
        health_pb2.HealthCheckRequest(service=service), timeout=WAIT).status

  def assert_equal_arrays(self, actual, expected):
    self.assertEqual(actual.dtype, expected.dtype)
    self.assertEqual(actual.shape, expected.shape)
    self.assertEqual(actual.tolist(), expected.tolist())

  # ------------------------------------------------------------ gRPC, infer

  def test_grpc_raw_and_typed_contents_equal_predict(self):
    x = np.array([-3, 0, 5], np.int16)
    expected = self.predict("dtypes", "int16", {"x": x})["y"]
    raw = grpc_service_pb2.ModelInferRequest(
        model_name="dtypes", id="abc",
        inputs=[grpc_service_pb2.ModelInferRequest.InferInputTensor(
            name="x", datatype="INT16", shape=[3])],
        raw_input_contents=[x.tobytes()])
    raw.parameters["signature_name"].string_param = "int16"
    typed = grpc_service_pb2.ModelInferRequest()
    typed.CopyFrom(raw)
    del typed.raw_input_contents[:]
    typed.inputs[0].contents.int_contents.extend(x.tolist())
    for request in (raw, typed):
      response = self.stub.ModelInfer(request, timeout=WAIT)
      self.assertEqual((response.model_name, response.model_version,
                        response.id), ("dtypes", "1", "abc"))
      self.assertEqual([(o.name, o.datatype, list(o.shape))
                        for o in response.outputs], [("y", "INT16", [3])])
      self.assertLen(response.raw_output_contents, 1)
      y = codec.decode_raw(codec.datatype("INT16"), [3],
                           response.raw_output_contents[0])
      self.assert_equal_arrays(y, expected)

  def test_grpc_every_datatype_raw(self):
    for signature, (datatype, _) in dtypes_model.DATATYPES.items():
      with self.subTest(datatype=datatype):
        dt = codec.datatype(datatype)
        if datatype == "BYTES":
          x = np.array([b"", b"\x00\xff", b"abc"], dtype=object)
        elif datatype == "BOOL":
          x = np.array([True, False, False])
        else:
          x = np.array([1, 2, 3], dtype=dt.numpy_dtype)
        request = grpc_service_pb2.ModelInferRequest(model_name="dtypes")
        request.parameters["signature_name"].string_param = signature
        request.inputs.add(name="x", datatype=datatype, shape=[3])
        request.raw_input_contents.append(codec.encode_raw(x, dt))
        response = self.stub.ModelInfer(request, timeout=WAIT)
        y = codec.decode_raw(dt, response.outputs[0].shape,
                             response.raw_output_contents[0])
        self.assert_equal_arrays(
            y, self.predict("dtypes", signature, {"x": x})["y"])

  def test_grpc_errors_keep_serving(self):
    def request(**kwargs):
      r = grpc_service_pb2.ModelInferRequest(model_name="half", **kwargs)
      return r
    ok = request(inputs=[grpc_service_pb2.ModelInferRequest.InferInputTensor(
        name="x", datatype="FP32", shape=[1, 1])],
                 raw_input_contents=[np.float32(2).tobytes()])
    infer = self.stub.ModelInfer
    bad = request()
    bad.CopyFrom(ok)
    bad.model_name = "nope"
    self.assert_grpc_error(infer, bad, grpc.StatusCode.NOT_FOUND,
                           "Servable not found for request: Latest(nope)")
    bad.CopyFrom(ok)
    bad.model_version = "7"
    self.assert_grpc_error(infer, bad, grpc.StatusCode.NOT_FOUND,
                           "Servable not found for request: Specific(half, 7)")
    bad.CopyFrom(ok)
    bad.inputs[0].datatype = "FP64"
    bad.raw_input_contents[0] = np.float64(2).tobytes()
    self.assert_grpc_error(
        infer, bad, grpc.StatusCode.INVALID_ARGUMENT,
        "inference input 'x' data-type is 'FP64', but model 'half' expects "
        "'FP32'")
    bad.CopyFrom(ok)
    bad.raw_input_contents[0] = b"\x00" * 6
    self.assert_grpc_error(
        infer, bad, grpc.StatusCode.INVALID_ARGUMENT,
        "input byte size mismatch for input 'x'. Expected 4, got 6")
    bad.CopyFrom(ok)
    del bad.inputs[:]
    del bad.raw_input_contents[:]
    with self.assertRaises(grpc.RpcError) as cm:
      infer(bad, timeout=WAIT)
    self.assertEqual(cm.exception.code(), grpc.StatusCode.INVALID_ARGUMENT)
    self.assertIn("Missing but required: {x}", cm.exception.details())
    response = infer(ok, timeout=WAIT)
    self.assertEqual(
        np.frombuffer(response.raw_output_contents[0], np.float32).tolist(),
        [3.0])

  # --------------------------------------------- gRPC, metadata and health

  def test_grpc_metadata_and_readiness(self):
    self.assertTrue(self.stub.ServerLive(
        grpc_service_pb2.ServerLiveRequest(), timeout=WAIT).live)
    self.assertTrue(self.stub.ServerReady(
        grpc_service_pb2.ServerReadyRequest(), timeout=WAIT).ready)
    metadata = self.stub.ServerMetadata(
        grpc_service_pb2.ServerMetadataRequest(), timeout=WAIT)
    self.assertEqual(list(metadata.extensions),
                     ["binary_tensor_data", "model_repository"])
    ready = self.stub.ModelReady
    self.assertTrue(ready(grpc_service_pb2.ModelReadyRequest(name="half"),
                          timeout=WAIT).ready)
    self.assertFalse(ready(grpc_service_pb2.ModelReadyRequest(
        name="half", version="9"), timeout=WAIT).ready)
    self.assertFalse(ready(grpc_service_pb2.ModelReadyRequest(name="nope"),
                           timeout=WAIT).ready)
    model = self.stub.ModelMetadata(
        grpc_service_pb2.ModelMetadataRequest(name="half"), timeout=WAIT)
    self.assertEqual((model.name, list(model.versions), model.platform),
                     ("half", ["2"], "tensorflow_savedmodel"))
    self.assertEqual([(t.name, t.datatype, list(t.shape)) for t in
                      model.inputs], [("x", "FP32", [-1, 1])])
    self.assert_grpc_error(
        self.stub.ModelMetadata,
        grpc_service_pb2.ModelMetadataRequest(name="nope"),
        grpc.StatusCode.NOT_FOUND,
        "Servable not found for request: Latest(nope)")
    for name in HEALTH_NAMES:
      self.assertEqual(self.health_status(name), SERVING, name)

  # ------------------------------------------------------------------ REST

  def test_rest_health_metadata_and_ready(self):
    self.assertEqual(self.rest_json("GET", "/v2/health/live"), {"live": True})
    self.assertEqual(self.rest_json("GET", "/v2/health/ready"),
                     {"ready": True})
    self.assertEqual(self.rest_json("GET", "/v2")["extensions"],
                     ["binary_tensor_data", "model_repository"])
    self.assertEqual(self.rest_json("GET", "/v2/models/half/ready"),
                     {"name": "half", "ready": True})
    self.assertEqual(
        self.rest_json("GET", "/v2/models/half/versions/3/ready",
                       expect=400), {"name": "half", "ready": False})
    self.assertEqual(self.rest_json("GET", "/v2/models/nope/ready",
                                    expect=400),
                     {"name": "nope", "ready": False})
    self.assertEqual(
        self.rest_json("GET", "/v2/models/dtypes/versions/1"), {
            "name": "dtypes", "versions": ["1"],
            "platform": "tensorflow_savedmodel",
            "inputs": [{"name": "f", "datatype": "FP32", "shape": [-1, 2]},
                       {"name": "i", "datatype": "INT64", "shape": [-1]},
                       {"name": "s", "datatype": "BYTES", "shape": [-1]}],
            "outputs": [
                {"name": "bracketed", "datatype": "BYTES", "shape": [-1]},
                {"name": "doubled", "datatype": "FP32", "shape": [-1, 2]},
                {"name": "incremented", "datatype": "INT64", "shape": [-1]},
                {"name": "row_sum", "datatype": "FP32", "shape": [-1]}]})
    self.assert_rest_error("GET", "/v2/models/nope", b"", 404,
                           "Servable not found for request: Latest(nope)")
    self.assert_rest_error("GET", "/v2/models/half/infer", b"", 400,
                           "Malformed request: GET /v2/models/half/infer")
    # /v1 is still TF Serving's API.
    code, _, body = self.rest("GET", "/v1/models/half")
    self.assertEqual(code, 200)
    self.assertIn(b"AVAILABLE", body)

  def test_rest_json_infer_equals_predict(self):
    doc = {
        "id": "q",
        "inputs": [
            {"name": "f", "datatype": "FP32", "shape": [2, 2],
             "data": [[1.5, 2], [3, 4]]},
            {"name": "i", "datatype": "INT64", "shape": [2], "data": [1, 2]},
            {"name": "s", "datatype": "BYTES", "shape": [2],
             "data": ["a", "\u00e9"]},
        ],
        "outputs": [{"name": "row_sum"}, {"name": "bracketed"}],
    }
    response = self.rest_json("POST", "/v2/models/dtypes/infer", doc)
    expected = self.predict("dtypes", "", {
        "f": np.array([[1.5, 2], [3, 4]], np.float32),
        "i": np.array([1, 2], np.int64),
        "s": np.array([b"a", "\u00e9".encode()], dtype=object)})
    self.assertEqual(response, {
        "model_name": "dtypes", "model_version": "1", "id": "q",
        "outputs": [
            {"name": "row_sum", "datatype": "FP32", "shape": [2],
             "data": expected["row_sum"].tolist()},
            {"name": "bracketed", "datatype": "BYTES", "shape": [2],
             "data": ["<a>", "<\u00e9>"]}]})

  def test_rest_binary_infer_gzip_and_raw_request(self):
    x = np.array([1.0, -2.5, 7.0], np.float64)
    header = json.dumps({
        "parameters": {"signature_name": "fp64",
                       "binary_data_output": True},
        "inputs": [{"name": "x", "datatype": "FP64", "shape": [3],
                    "parameters": {"binary_data_size": 24}}],
    }).encode()
    expected = self.predict("dtypes", "fp64", {"x": x})["y"]
    for body, headers in (
        (header + x.tobytes(),
         {"Inference-Header-Content-Length": str(len(header))}),
        (gzip.compress(header + x.tobytes()),
         {"Inference-Header-Content-Length": str(len(header)),
          "Content-Encoding": "gzip"})):
      code, response_headers, data = self.rest(
          "POST", "/v2/models/dtypes/versions/1/infer", body, headers)
      self.assertEqual(code, 200, data)
      self.assertEqual(response_headers["Content-Type"],
                       "application/octet-stream")
      length = int(response_headers["Inference-Header-Content-Length"])
      doc = json.loads(data[:length])
      self.assertEqual(doc["outputs"], [{
          "name": "y", "datatype": "FP64", "shape": [3],
          "parameters": {"binary_data_size": 24}}])
      self.assertEqual(np.frombuffer(data[length:], np.float64).tolist(),
                       expected.tolist())
    # Triton's raw binary request: the body is half's only input, [-1, 1].
    code, response_headers, data = self.rest(
        "POST", "/v2/models/half/infer",
        np.array([2, 4], np.float32).tobytes(),
        {"Inference-Header-Content-Length": "0"})
    self.assertEqual(code, 200, data)
    length = int(response_headers["Inference-Header-Content-Length"])
    self.assertEqual(json.loads(data[:length])["outputs"][0]["shape"], [2, 1])
    self.assertEqual(np.frombuffer(data[length:], np.float32).tolist(),
                     [3.0, 4.0])
    self.assert_rest_error(
        "POST", "/v2/models/dtypes/infer", b"abc", 400,
        "a raw binary request (Inference-Header-Content-Length: 0) needs a "
        "model with one input; model 'dtypes' has 3",
        {"Inference-Header-Content-Length": "0"})

  def test_rest_errors_keep_serving(self):
    def infer(doc):
      return json.dumps(doc).encode()
    x = {"name": "x", "datatype": "FP32", "shape": [1, 1], "data": [2]}
    path = "/v2/models/half/infer"
    self.assert_rest_error("POST", "/v2/models/nope/infer",
                           infer({"inputs": [x]}), 404,
                           "Servable not found for request: Latest(nope)")
    self.assert_rest_error(
        "POST", "/v2/models/half/versions/7/infer", infer({"inputs": [x]}),
        404, "Servable not found for request: Specific(half, 7)")
    self.assert_rest_error(
        "POST", path, infer({"inputs": [dict(x, datatype="FP64")]}), 400,
        "inference input 'x' data-type is 'FP64', but model 'half' expects "
        "'FP32'")
    header = infer({"inputs": [dict(
        x, data=None, parameters={"binary_data_size": 6})]})
    self.assert_rest_error(
        "POST", path, header + b"\x00" * 6, 400,
        "input byte size mismatch for input 'x'. Expected 4, got 6",
        {"Inference-Header-Content-Length": str(len(header))})
    status, _, data = self.rest("POST", path, infer({"inputs": []}))
    self.assertEqual(status, 400)
    self.assertIn("Missing but required: {x}", json.loads(data)["error"])
    status, _, data = self.rest("POST", path, b"{not json")
    self.assertEqual(status, 400)
    self.assertIn("failed to parse the request JSON buffer",
                  json.loads(data)["error"])
    self.assertEqual(
        self.rest_json("POST", path, {"inputs": [x]})["outputs"][0]["data"],
        [3.0])

  # ------------------------------------------------------------ repository

  def model_status(self, name):
    request = get_model_status_pb2.GetModelStatusRequest()
    request.model_spec.name = name
    response = model_service_pb2_grpc.ModelServiceStub(
        self.channel).GetModelStatus(request, timeout=WAIT)
    return {str(v.version): get_model_status_pb2.ModelVersionStatus.State.Name(
        v.state) for v in response.model_version_status}

  def test_repository_over_grpc_and_rest(self):
    base = half_plus_two.write_versions(os.path.join(self.root, "repo"),
                                        half_plus_two.write_tf1, (4,))
    # Load a new model over gRPC (base_path), unload it over REST, index
    # both ways, load it back by name over REST, unload over gRPC.
    load = grpc_service_pb2.RepositoryModelLoadRequest(model_name="repo")
    load.parameters["base_path"].string_param = base
    self.stub.RepositoryModelLoad(load, timeout=WAIT)
    self.assertEqual(self.model_status("repo"), {"4": "AVAILABLE"})
    rest_index = self.rest_json("POST", "/v2/repository/index")
    self.assertIn({"name": "repo", "version": "4", "state": "READY"},
                  rest_index)
    self.assertEqual(
        self.rest("POST", "/v2/repository/models/repo/unload",
                  b'{"parameters": {"unload_dependents": false}}')[0], 200)
    self.assertEqual(self.model_status("repo"), {"4": "END"})
    grpc_index = self.stub.RepositoryIndex(
        grpc_service_pb2.RepositoryIndexRequest(), timeout=WAIT)
    entries = [(m.version, m.state, m.reason) for m in grpc_index.models
               if m.name == "repo"]
    self.assertEqual(entries, [("4", "UNAVAILABLE", "unloaded")])
    self.assertNotIn("repo", [m["name"] for m in self.rest_json(
        "POST", "/v2/repository/index", {"ready": True})])
    # The other models never stopped.
    self.assertEqual(self.model_status("half"), {"2": "AVAILABLE"})
    self.assertEqual(self.rest("POST", "/v2/repository/models/repo/load")[0],
                     200)
    self.assertEqual(self.model_status("repo"), {"4": "AVAILABLE"})
    self.assert_rest_error(
        "POST", "/v2/repository/models/repo/load",
        b'{"parameters": {"max_batch_size": 4}}', 400,
        "unexpected parameter(s) max_batch_size for loading model 'repo'; "
        "accepted: base_path, model_platform, config")
    self.assert_rest_error(
        "POST", "/v2/repository/models/other/unload", b"", 404,
        "Model other is not in the model configuration")
    self.stub.RepositoryModelUnload(
        grpc_service_pb2.RepositoryModelUnloadRequest(model_name="repo"),
        timeout=WAIT)
    self.assertEqual(self.model_status("repo"), {"4": "END"})
    self.assert_grpc_error(
        self.stub.RepositoryModelLoad,
        grpc_service_pb2.RepositoryModelLoadRequest(model_name="missing"),
        grpc.StatusCode.NOT_FOUND,
        "Model missing is not in the model configuration; give its base_path "
        "to add it")

  # ------------------------------------------------------------- readiness

  def test_zz_readiness_through_a_reload_and_a_shutdown(self):
    # Runs last (zz): it stops the server. A reload (ModelService, as the
    # config file poller would) adds a model whose base path has nothing
    # yet: every readiness answer turns false until it loads.
    late = os.path.join(self.root, "late")
    config = model_management_pb2.ReloadConfigRequest()
    for name, path in (("dtypes", self.dtypes), ("half", self.half),
                       ("late", late)):
      config.config.model_config_list.config.add(
          name=name, base_path=path, model_platform="tensorflow")
    model_service = model_service_pb2_grpc.ModelServiceStub(self.channel)
    reload = model_service.HandleReloadConfigRequest.future(config,
                                                            timeout=WAIT)
    deadline = time.monotonic() + WAIT
    while self.health_status() == SERVING:
      self.assertLess(time.monotonic(), deadline)
      time.sleep(0.05)
    for name in HEALTH_NAMES:
      self.assertEqual(self.health_status(name), NOT_SERVING, name)
    self.assertFalse(self.stub.ServerReady(
        grpc_service_pb2.ServerReadyRequest(), timeout=WAIT).ready)
    self.assertEqual(self.rest_json("GET", "/v2/health/ready", expect=400),
                     {"ready": False})
    self.assertEqual(self.rest_json("GET", "/v2/health/live"), {"live": True})
    self.assertEqual(self.predict("half", "", {"x": np.ones((1, 1),
                                                            np.float32)})["y"]
                     .tolist(), [[2.5]])  # The others still serve.
    half_plus_two.write_versions(late, half_plus_two.write_tf2, (1,))
    self.assertEqual(reload.result().status.error_code, 0)
    for name in HEALTH_NAMES:
      self.assertEqual(self.health_status(name), SERVING, name)
    self.assertEqual(self.rest_json("GET", "/v2/health/ready"),
                     {"ready": True})
    # A shutdown: a health watcher hears NOT_SERVING at its first moment.
    watch = self.health.Watch(health_pb2.HealthCheckRequest(
        service="inference.GRPCInferenceService"), timeout=WAIT)
    self.assertEqual(next(watch).status, SERVING)
    stopper = threading.Thread(target=self.server.stop)
    stopper.start()
    self.assertEqual(next(watch).status, NOT_SERVING)
    watch.cancel()
    stopper.join(WAIT)
    self.assertFalse(stopper.is_alive())


if __name__ == "__main__":
  absltest.main()
