"""The V2 protocol against the clients written for it, on the built binary.

tensorflow_model_server (the built binary, a subprocess) serves the MNIST
tutorial's model (exported by the tutorial's own exporter, trained on the
real MNIST files in $MNIST_DATA_DIR) and a TF2 model with a signature per
V2 datatype (test_util/dtypes_model). Then, each in its own virtualenv made
by tools/configure.sh (TRITONCLIENT_PYTHON, KSERVE_PYTHON; they need
protobuf < 7) and in a subprocess, as a user would run them:

  * tritonclient over gRPC, over HTTP with binary data, and over HTTP with
    JSON only;
  * the kserve SDK's InferenceGRPCClient, and its InferenceRESTClient with
    binary data and with JSON only;

send the same requests: the MNIST signatures (images to scores, and
serialized tf.Examples to class names and scores), every datatype, several
inputs and requested outputs. Every result must equal what this process
gets from our TF Serving Predict for the same input. Each error case
(unknown model, unknown version, wrong datatype, contents of the wrong
size, a missing input) must come back as a clean error with the status the
V2 protocol uses, and the server must keep serving. tritonclient then
drives the model repository over both transports (index, load with a
config, unload, load by name), which must agree with GetModelStatus; and a
SIGTERM must turn the health service NOT_SERVING before the server exits.

Without $MNIST_DATA_DIR (tools/run_tests.sh passes it) the test fails
rather than skips, so a CI set-up mistake cannot hide it.
"""

from __future__ import annotations

import base64
import os
import signal
import subprocess
from typing import Any

from absl.testing import absltest
import grpc
from grpc_health.v1 import health_pb2
from grpc_health.v1 import health_pb2_grpc
import numpy as np

from tensorflow.core.example import example_pb2
from tensorflow_serving.apis import get_model_status_pb2
from tensorflow_serving.apis import model_service_pb2_grpc
from tensorflow_serving.apis import predict_pb2
from tensorflow_serving.apis import prediction_service_pb2_grpc
from tensorflow_serving.apis.test_util import client_subprocess
from tensorflow_serving.example import mnist_input_data
from tensorflow_serving.model_servers.test_util import model_server_process
from tensorflow_serving.servables.tensorflow.test_util import dtypes_model
from tensorflow_serving.servables.tensorflow.test_util import half_plus_two
from tensorflow_serving.util import tensor_codec
from tensorflow_serving.util import v2_tensor_codec as codec

_TRAINING_ITERATIONS = 100
_CLIENT_TIMEOUT = 600
_ALL_MODES = ("triton_grpc", "triton_http_binary", "triton_http_json",
              "kserve_grpc", "kserve_rest_binary", "kserve_rest_json")


# --- what runs in the clients' virtualenvs (shipped there as source) --------


def _client_main(client: str, plan_path: str, reply_path: str) -> None:
  """Runs the plan's calls with one client library; writes the results.

  Each case is sent by every mode of the client (see _ALL_MODES) that can
  carry its datatypes; a result is the outputs (datatype, shape, values) as
  the client decoded them, or the error as the client reported it.
  """
  # pylint: disable=g-import-not-at-top,import-outside-toplevel
  import asyncio
  import base64
  import importlib
  import json
  import numpy as np
  # pylint: enable=g-import-not-at-top,import-outside-toplevel

  def load(name):
    # Named by string: the module exists only in the client's virtualenv.
    return importlib.import_module(name)

  try:
    bfloat16 = load("ml_dtypes").bfloat16
  except ImportError:  # the kserve environment has none (nor BF16)
    bfloat16 = None
  numpy_dtypes = {
      "BOOL": np.bool_, "INT8": np.int8, "INT16": np.int16,
      "INT32": np.int32, "INT64": np.int64, "UINT8": np.uint8,
      "UINT16": np.uint16, "UINT32": np.uint32, "UINT64": np.uint64,
      "FP16": np.float16, "BF16": bfloat16, "FP32": np.float32,
      "FP64": np.float64, "BYTES": np.object_,
  }

  with open(plan_path) as f:
    plan = json.load(f)

  def array_of(spec):
    if spec["datatype"] == "BYTES":
      flat = np.array([base64.b64decode(v) for v in spec["values"]] or [b""],
                      dtype=np.object_)[:len(spec["values"])]
    else:
      flat = np.frombuffer(base64.b64decode(spec["raw"]),
                           dtype=numpy_dtypes[spec["datatype"]]).copy()
    return flat.reshape(spec["shape"])

  def plain(array, datatype):
    array = np.asarray(array)
    if array.dtype == np.object_ or array.dtype.kind in ("S", "U"):
      values = [base64.b64encode(v if isinstance(v, bytes) else
                                 str(v).encode()).decode()
                for v in array.ravel().tolist()]
    elif array.dtype.kind in ("b", "i", "u"):
      values = array.ravel().tolist()
    else:
      values = array.astype(np.float64).ravel().tolist()
    return {"datatype": datatype, "shape": list(array.shape),
            "values": values}

  def skipped(mode, case):
    types = {t["datatype"] for t in case["inputs"]} | set(
        case.get("output_datatypes", []))
    if mode == "triton_http_json" and "BF16" in types:
      return True  # tritonclient sends BF16 over HTTP only as binary
    if mode.startswith("kserve") and "BF16" in types:
      return True  # the kserve SDK has no BF16
    if mode == "kserve_rest_json" and "FP16" in types:
      return True  # it refuses FP16 in JSON
    if mode.startswith("kserve_rest") and case.get("version"):
      return True  # its REST client has no way to name a version
    if mode.endswith("json") and case.get("binary_only"):
      return True  # JSON strings cannot hold bytes that are not UTF-8
    if mode.startswith("kserve_rest") and case.get("non_utf8_output"):
      return True  # its REST response parser turns BYTES into str
    return False

  def tamper_shape(spec):
    shape = list(spec["shape"])
    shape[0] += 1
    return shape

  reply = {"results": {}, "probes": {}, "repository": {}}

  if client == "tritonclient":
    grpcclient = load("tritonclient.grpc")
    httpclient = load("tritonclient.http")
    utils = load("tritonclient.utils")
    clients = {
        "grpc": grpcclient.InferenceServerClient(url=plan["grpc"]),
        "http": httpclient.InferenceServerClient(url=plan["http"]),
    }

    def run(mode, case):
      lib = grpcclient if mode == "triton_grpc" else httpclient
      binary = mode != "triton_http_json"
      inputs = []
      for spec in case["inputs"]:
        tensor = lib.InferInput(spec["name"], spec["shape"],
                                spec["datatype"])
        if mode == "triton_grpc":
          tensor.set_data_from_numpy(array_of(spec))
        else:
          tensor.set_data_from_numpy(array_of(spec), binary_data=binary)
        if case.get("tamper") == "size":
          tensor.set_shape(tamper_shape(spec))
        inputs.append(tensor)
      names = case.get("outputs") or case["all_outputs"]
      if mode == "triton_grpc":
        outputs = [lib.InferRequestedOutput(n) for n in names]
      else:
        outputs = [lib.InferRequestedOutput(n, binary_data=binary)
                   for n in names]
      client_ = clients["grpc" if mode == "triton_grpc" else "http"]
      result = client_.infer(
          case["model"], inputs, model_version=case.get("version", ""),
          outputs=outputs, request_id=case["key"],
          parameters=case.get("parameters") or None)
      response = result.get_response()
      if mode == "triton_grpc":
        header = {"id": response.id, "model_version": response.model_version,
                  "model_name": response.model_name}
        datatypes = {o.name: o.datatype for o in response.outputs}
      else:
        header = {k: response.get(k) for k in ("id", "model_version",
                                               "model_name")}
        datatypes = {o["name"]: o["datatype"] for o in response["outputs"]}
      return header, {n: plain(result.as_numpy(n), datatypes[n])
                      for n in names}

    def describe(error):
      if isinstance(error, utils.InferenceServerException):
        return {"status": str(error.status()), "message": error.message()}
      return {"status": "client", "message": repr(error)}

    modes = ("triton_grpc", "triton_http_binary", "triton_http_json")
    for kind, client_ in clients.items():
      reply["probes"][kind] = {
          "live": client_.is_server_live(),
          "ready": client_.is_server_ready(),
          "model_ready": client_.is_model_ready("mnist"),
          "model_ready_version": client_.is_model_ready("mnist", "1"),
          "unknown_model_ready": client_.is_model_ready("nope"),
      }
      metadata = client_.get_server_metadata()
      model = client_.get_model_metadata("dtypes")
      if kind == "grpc":
        metadata = {"extensions": list(metadata.extensions)}
        model = {"versions": list(model.versions), "platform": model.platform,
                 "inputs": [[t.name, t.datatype, list(t.shape)]
                            for t in model.inputs]}
      else:
        metadata = {"extensions": metadata["extensions"]}
        model = {"versions": model["versions"], "platform": model["platform"],
                 "inputs": [[t["name"], t["datatype"], t["shape"]]
                            for t in model["inputs"]]}
      reply["probes"][kind]["metadata"] = metadata
      reply["probes"][kind]["model"] = model

    if plan.get("repository"):
      repo = plan["repository"]
      grpc_c, http_c = clients["grpc"], clients["http"]

      def grpc_index():
        return [{"name": m.name, "version": m.version, "state": m.state,
                 "reason": m.reason}
                for m in grpc_c.get_model_repository_index().models]

      steps = reply["repository"]
      steps["index_grpc"] = grpc_index()
      steps["index_http"] = http_c.get_model_repository_index()
      grpc_c.load_model(repo["name"],
                        config=json.dumps({"base_path": repo["base_path"]}))
      steps["after_load"] = {
          "ready": http_c.is_model_ready(repo["name"]),
          "server_ready": grpc_c.is_server_ready(),
          "index_grpc": grpc_index()}
      http_c.unload_model(repo["name"])
      steps["after_unload"] = {
          "ready": grpc_c.is_model_ready(repo["name"]),
          "server_ready": http_c.is_server_ready(),
          "index_http": http_c.get_model_repository_index()}
      http_c.load_model(repo["name"])
      steps["after_reload"] = {"ready": grpc_c.is_model_ready(repo["name"])}
      try:
        http_c.load_model("missing")
      except utils.InferenceServerException as e:
        steps["load_unknown_http"] = describe(e)
      try:
        grpc_c.load_model(repo["name"], config='{"max_batch_size": 4}')
      except utils.InferenceServerException as e:
        steps["load_bad_config_grpc"] = describe(e)
      grpc_c.unload_model(repo["name"])
      steps["after_second_unload"] = {
          "ready": http_c.is_model_ready(repo["name"])}

  else:  # kserve
    kserve = load("kserve")
    requested_output = load("kserve.protocol.infer_type").RequestedOutput
    httpx = load("httpx")
    grpc = load("grpc")
    modes = ("kserve_grpc", "kserve_rest_binary", "kserve_rest_json")

    async def run_async(mode, case, grpc_client, rest_client):
      binary = mode != "kserve_rest_json"
      inputs = []
      for spec in case["inputs"]:
        tensor = kserve.InferInput(spec["name"], spec["shape"],
                                   spec["datatype"])
        tensor.set_data_from_numpy(array_of(spec), binary_data=binary)
        if case.get("tamper") == "size":
          tensor.shape = tamper_shape(spec)
        inputs.append(tensor)
      outputs = None
      if case.get("outputs"):
        outputs = [requested_output(
            n, {"binary_data": True} if mode == "kserve_rest_binary" else None)
                   for n in case["outputs"]]
      parameters = dict(case.get("parameters") or {})
      if mode == "kserve_rest_binary" and not outputs:
        parameters["binary_data_output"] = True
      request = kserve.InferRequest(
          model_name=case["model"], infer_inputs=inputs,
          request_id=case["key"], parameters=parameters or None,
          request_outputs=outputs, model_version=case.get("version") or None)
      if mode == "kserve_grpc":
        response = await grpc_client.infer(request)
      else:
        response = await rest_client.infer(plan["rest_base"], request,
                                           model_name=case["model"])
      header = {"id": response.id, "model_name": response.model_name,
                "model_version": response.model_version}
      return header, {o.name: plain(o.as_numpy(), o.datatype)
                      for o in response.outputs}

    def describe(error):
      if isinstance(error, grpc.RpcError):
        return {"status": str(error.code()), "message": error.details()}
      if isinstance(error, httpx.HTTPStatusError):
        return {"status": str(error.response.status_code),
                "message": str(error)}
      return {"status": "client", "message": repr(error)}

    async def probes(grpc_client, rest_client):
      base = plan["rest_base"]
      return {
          "grpc": {
              "live": await grpc_client.is_server_live(),
              "ready": await grpc_client.is_server_ready(),
              "model_ready": await grpc_client.is_model_ready("mnist"),
              "unknown_model_ready": await grpc_client.is_model_ready("nope"),
          },
          "rest": {
              "live": await rest_client.is_server_live(base),
              "ready": await rest_client.is_server_ready(base),
              "model_ready": await rest_client.is_model_ready(base, "mnist"),
              "unknown_model_ready": await rest_client.is_model_ready(
                  base, "nope"),
          },
      }

    async def main_async():
      grpc_client = kserve.InferenceGRPCClient(url=plan["grpc"])
      rest_client = kserve.InferenceRESTClient(
          kserve.RESTConfig(protocol="v2"))
      reply["probes"] = await probes(grpc_client, rest_client)
      for mode in modes:
        results = reply["results"].setdefault(mode, {})
        for case in plan["cases"]:
          if skipped(mode, case):
            continue
          try:
            header, outputs = await run_async(mode, case, grpc_client,
                                              rest_client)
            results[case["key"]] = {"header": header, "outputs": outputs}
          except Exception as e:  # pylint: disable=broad-except
            results[case["key"]] = {"error": describe(e)}
      await grpc_client.close()
      await rest_client.close()

  if client == "tritonclient":
    for mode in modes:
      results = reply["results"].setdefault(mode, {})
      for case in plan["cases"]:
        if skipped(mode, case):
          continue
        try:
          header, outputs = run(mode, case)
          results[case["key"]] = {"header": header, "outputs": outputs}
        except Exception as e:  # pylint: disable=broad-except
          results[case["key"]] = {"error": describe(e)}
  else:
    asyncio.run(main_async())

  with open(reply_path, "w") as f:
    json.dump(reply, f)


# --- the test --------------------------------------------------------------


def _b64(data: bytes) -> str:
  return base64.b64encode(data).decode("ascii")


def _tensor_spec(name: str, array: np.ndarray) -> dict[str, Any]:
  dt = codec.datatype_of_numpy_dtype(array.dtype)
  spec = {"name": name, "datatype": dt.name, "shape": list(array.shape)}
  if dt.name == "BYTES":
    spec["values"] = [_b64(v) for v in array.ravel().tolist()]
  else:
    spec["raw"] = _b64(codec.encode_raw(array, dt))
  return spec


def _serialized_example(pixels: np.ndarray) -> bytes:
  example = example_pb2.Example()
  example.features.feature["x"].float_list.value.extend(pixels.tolist())
  return example.SerializeToString()


def _run_client(client: str, plan: dict[str, Any]) -> dict[str, Any]:
  """Runs _client_main in the client's own virtualenv; returns its reply."""
  return client_subprocess.run_functions(
      client_subprocess.v2_client_python(client), [], _client_main, [client],
      plan, what=f"the {client} subprocess", timeout=_CLIENT_TIMEOUT)


class V2ClientsEndToEndTest(absltest.TestCase):

  @classmethod
  def setUpClass(cls):
    super().setUpClass()
    data_dir = os.environ.get(mnist_input_data.DATA_DIR_ENV, "")
    if not data_dir or not all(
        os.path.isfile(os.path.join(data_dir, f))
        for f in mnist_input_data.FILES):
      raise AssertionError(
          f"{mnist_input_data.DATA_DIR_ENV}={data_dir!r} must hold the MNIST "
          "files: run with --test_env=MNIST_DATA_DIR=<absolute path of "
          "../shared/mnist>, as tools/run_tests.sh does.")
    cls.root = half_plus_two.fresh_dir("v2_clients_e2e_test")
    mnist = os.path.join(cls.root, "mnist")
    exporter = os.path.join(os.environ["TEST_SRCDIR"],
                            os.environ.get("TEST_WORKSPACE", "tf_serving"),
                            "tensorflow_serving", "example",
                            "mnist_saved_model")
    subprocess.run([exporter, f"--training_iteration={_TRAINING_ITERATIONS}",
                    f"--work_dir={data_dir}", mnist], check=True,
                   stdout=subprocess.DEVNULL, timeout=600)
    dtypes = os.path.join(cls.root, "dtypes")
    dtypes_model.write(os.path.join(dtypes, "1"))
    cls.added = half_plus_two.write_versions(
        os.path.join(cls.root, "added"), half_plus_two.write_tf2, (3,))
    config = os.path.join(cls.root, "models.config")
    with open(config, "w") as f:
      f.write("model_config_list {\n" + "".join(
          f'  config {{ name: "{n}" base_path: "{p}" '
          'model_platform: "tensorflow" }\n'
          for n, p in (("mnist", mnist), ("dtypes", dtypes))) + "}\n")
    cls.grpc_port = model_server_process.free_port()
    cls.rest_port = model_server_process.free_port()
    cls.server = model_server_process.ModelServerProcess([
        f"--port={cls.grpc_port}", f"--rest_api_port={cls.rest_port}",
        f"--model_config_file={config}", "--file_system_poll_wait_seconds=1",
    ])
    cls.server.start()
    cls.channel = grpc.insecure_channel(f"localhost:{cls.grpc_port}")
    images = mnist_input_data.read_test_set(data_dir).images[:4]
    cls.expect: dict[str, Any] = {}
    cls.cases = cls._cases(images)
    plan = {"grpc": f"localhost:{cls.grpc_port}",
            "http": f"localhost:{cls.rest_port}",
            "rest_base": f"http://localhost:{cls.rest_port}",
            "cases": cls.cases}
    cls.replies = {
        "tritonclient": _run_client(
            "tritonclient", dict(plan, repository={
                "name": "added", "base_path": cls.added})),
        "kserve": _run_client("kserve", plan),
    }

  @classmethod
  def tearDownClass(cls):
    cls.channel.close()
    cls.server.kill()
    super().tearDownClass()

  @classmethod
  def _cases(cls, images: np.ndarray) -> list[dict[str, Any]]:
    """The requests every client sends, with what Predict says to them."""
    cases = []

    def add(key, model, signature, inputs, outputs=None, expect=None,
            **extra):
      case = {"key": key, "model": model,
              "inputs": [_tensor_spec(n, v) for n, v in inputs.items()],
              **extra}
      if signature:
        case["parameters"] = {"signature_name": signature}
      if outputs:
        case["outputs"] = outputs
      if expect is None:
        expect = cls._predict(model, signature, inputs, outputs,
                              extra.get("version"))
        case["all_outputs"] = sorted(expect)
        case["output_datatypes"] = sorted({
            codec.datatype_of_numpy_dtype(v.dtype).name
            for v in expect.values()})
      cls.expect[key] = expect
      cases.append(case)

    add("mnist_images", "mnist", "predict_images", {"images": images},
        outputs=["scores"])
    examples = np.empty(2, dtype=object)
    examples[:] = [_serialized_example(p) for p in images[:2]]
    add("mnist_examples", "mnist", "", {"inputs": examples},
        binary_only=True)
    add("mnist_version_1", "mnist", "predict_images", {"images": images[:1]},
        version="1")
    for signature, (datatype, _) in dtypes_model.DATATYPES.items():
      dt = codec.datatype(datatype)
      if datatype == "BYTES":
        x = np.array([b"", b"\x00\xffz", "\u00e9".encode()], dtype=object)
      elif datatype == "BOOL":
        x = np.array([True, False, True])
      elif dt.numpy_dtype.kind in "iu":
        info = np.iinfo(dt.numpy_dtype)
        x = np.array([info.min, 1, info.max], dtype=dt.numpy_dtype)
      else:
        x = np.array([1.5, -0.25, 1e3], dtype=dt.numpy_dtype)
      add(f"dtype_{signature}", "dtypes", signature, {"x": x},
          binary_only=datatype == "BYTES",
          non_utf8_output=datatype == "BYTES")
    add("dtype_bytes_utf8", "dtypes", "bytes",
        {"x": np.array([b"", b"z", "\u00e9\u4e2d".encode()], dtype=object)})
    mixed = {"f": np.array([[1, 2.5], [-3, 4]], np.float32),
             "i": np.array([2**40, -7], np.int64),
             "s": np.array([b"a", b"bc"], dtype=object)}
    add("dtypes_requested_outputs", "dtypes", "", mixed,
        outputs=["row_sum", "bracketed"])
    add("dtypes_all_outputs", "dtypes", "", mixed)
    # The error cases, then one that must work again.
    x = {"x": np.array([1, 2, 3], np.float32)}
    add("err_unknown_model", "nope", "fp32", x, expect={"error": "not_found"},
        all_outputs=["y"])
    add("err_unknown_version", "dtypes", "fp32", x, version="9",
        expect={"error": "not_found"}, all_outputs=["y"])
    add("err_wrong_datatype", "dtypes", "fp32",
        {"x": np.array([1, 2, 3], np.float64)},
        expect={"error": "invalid_argument"}, all_outputs=["y"])
    add("err_wrong_size", "dtypes", "fp32", x, tamper="size",
        expect={"error": "invalid_argument"}, all_outputs=["y"])
    add("err_missing_input", "dtypes", "", {"f": mixed["f"]},
        expect={"error": "invalid_argument"}, all_outputs=["doubled"])
    add("after_errors", "dtypes", "fp32", x)
    return cases

  @classmethod
  def _predict(cls, model, signature, inputs, outputs, version
              ) -> dict[str, np.ndarray]:
    request = predict_pb2.PredictRequest()
    request.model_spec.name = model
    request.model_spec.signature_name = signature
    if version:
      request.model_spec.version.value = int(version)
    for name, value in inputs.items():
      tensor_codec.ndarray_to_tensor_proto(value, request.inputs[name])
    request.output_filter.extend(outputs or [])
    response = prediction_service_pb2_grpc.PredictionServiceStub(
        cls.channel).Predict(request, timeout=60)
    return {name: tensor_codec.tensor_proto_to_ndarray(tensor)
            for name, tensor in response.outputs.items()}

  # ---------------------------------------------------------------- checks

  def assert_outputs_equal(self, got: dict[str, Any],
                           expect: dict[str, np.ndarray], where: str) -> None:
    self.assertCountEqual(got, expect, where)
    for name, array in expect.items():
      output = got[name]
      self.assertEqual(output["datatype"],
                       codec.datatype_of_numpy_dtype(array.dtype).name,
                       f"{where} {name}")
      self.assertEqual(output["shape"], list(array.shape), f"{where} {name}")
      if array.dtype == object:
        self.assertEqual([base64.b64decode(v) for v in output["values"]],
                         array.ravel().tolist(), f"{where} {name}")
      else:
        values = np.array(output["values"]).astype(array.dtype)
        np.testing.assert_array_equal(values, array.ravel(),
                                      f"{where} {name}")

  def check_mode(self, client: str, mode: str) -> None:
    results = self.replies[client]["results"][mode]
    grpc_mode = mode.endswith("grpc")
    for case in self.cases:
      key = case["key"]
      if key not in results:
        continue  # a datatype this client cannot carry this way
      with self.subTest(mode=mode, case=key):
        result = results[key]
        expect = self.expect[key]
        if "error" not in expect:
          self.assertNotIn("error", result, result.get("error"))
          self.assert_outputs_equal(result["outputs"], expect, key)
          self.assertEqual(result["header"]["id"], key)
          self.assertEqual(result["header"]["model_name"], case["model"])
          # The kserve SDK's REST response parser drops model_version.
          self.assertEqual(result["header"]["model_version"],
                           None if mode.startswith("kserve_rest") else "1")
          continue
        self.assertIn("error", result, f"{key} succeeded")
        error = result["error"]
        code = expect["error"]
        expected_status = (f"StatusCode.{code.upper()}" if grpc_mode else
                           {"not_found": "404", "invalid_argument": "400"}[code])
        self.assertEqual(error["status"], expected_status, error)
        message = {
            "err_unknown_model":
                "Servable not found for request: Latest(nope)",
            "err_unknown_version":
                "Servable not found for request: Specific(dtypes, 9)",
            "err_wrong_datatype":
                "inference input 'x' data-type is 'FP64', but model 'dtypes' "
                "expects 'FP32'",
            "err_wrong_size": ("unexpected number of elements for input 'x'"
                               if mode.endswith("json") else
                               "input byte size mismatch for input 'x'"),
            "err_missing_input": "Missing but required: {i,s}",
        }[key]
        self.assertIn(message, error["message"])
    # Every case this mode can carry was sent.
    self.assertIn("after_errors", results)
    self.assertIn("dtype_fp32", results)

  def test_tritonclient_grpc(self):
    self.check_mode("tritonclient", "triton_grpc")
    self.assertIn("dtype_bf16",
                  self.replies["tritonclient"]["results"]["triton_grpc"])

  def test_tritonclient_http_binary(self):
    self.check_mode("tritonclient", "triton_http_binary")

  def test_tritonclient_http_json(self):
    self.check_mode("tritonclient", "triton_http_json")

  def test_kserve_grpc(self):
    self.check_mode("kserve", "kserve_grpc")

  def test_kserve_rest_binary(self):
    self.check_mode("kserve", "kserve_rest_binary")

  def test_kserve_rest_json(self):
    self.check_mode("kserve", "kserve_rest_json")

  def test_probes_and_metadata(self):
    for kind, probes in self.replies["tritonclient"]["probes"].items():
      with self.subTest(client="tritonclient", transport=kind):
        self.assertEqual(
            {k: probes[k] for k in ("live", "ready", "model_ready",
                                    "model_ready_version",
                                    "unknown_model_ready")},
            {"live": True, "ready": True, "model_ready": True,
             "model_ready_version": True, "unknown_model_ready": False})
        self.assertEqual(probes["metadata"]["extensions"],
                         ["binary_tensor_data", "model_repository"])
        self.assertEqual(probes["model"], {
            "versions": ["1"], "platform": "tensorflow_savedmodel",
            "inputs": [["f", "FP32", [-1, 2]], ["i", "INT64", [-1]],
                       ["s", "BYTES", [-1]]]})
    for kind, probes in self.replies["kserve"]["probes"].items():
      with self.subTest(client="kserve", transport=kind):
        self.assertEqual(probes, {"live": True, "ready": True,
                                  "model_ready": True,
                                  "unknown_model_ready": False})

  def model_status(self, name: str) -> dict[str, str]:
    request = get_model_status_pb2.GetModelStatusRequest()
    request.model_spec.name = name
    response = model_service_pb2_grpc.ModelServiceStub(
        self.channel).GetModelStatus(request, timeout=60)
    return {str(v.version): get_model_status_pb2.ModelVersionStatus.State.Name(
        v.state) for v in response.model_version_status}

  def test_repository_over_grpc_and_http(self):
    steps = self.replies["tritonclient"]["repository"]
    ready = {"name": "mnist", "version": "1", "state": "READY", "reason": ""}
    self.assertIn(ready, steps["index_grpc"])
    self.assertIn({"name": "mnist", "version": "1", "state": "READY"},
                  steps["index_http"])
    self.assertNotIn("added", [m["name"] for m in steps["index_grpc"]])
    self.assertEqual(steps["after_load"]["ready"], True)
    self.assertEqual(steps["after_load"]["server_ready"], True)
    self.assertIn({"name": "added", "version": "3", "state": "READY",
                   "reason": ""}, steps["after_load"]["index_grpc"])
    self.assertEqual(steps["after_unload"]["ready"], False)
    self.assertEqual(steps["after_unload"]["server_ready"], True)
    self.assertIn({"name": "added", "version": "3", "state": "UNAVAILABLE",
                   "reason": "unloaded"}, steps["after_unload"]["index_http"])
    self.assertEqual(steps["after_reload"]["ready"], True)
    self.assertEqual(steps["load_unknown_http"]["status"], "404")
    self.assertIn("Model missing is not in the model configuration",
                  steps["load_unknown_http"]["message"])
    self.assertEqual(steps["load_bad_config_grpc"]["status"],
                     "StatusCode.INVALID_ARGUMENT")
    self.assertEqual(steps["after_second_unload"]["ready"], False)
    # GetModelStatus tells the same story; the other models never stopped.
    self.assertEqual(self.model_status("added"), {"3": "END"})
    self.assertEqual(self.model_status("mnist"), {"1": "AVAILABLE"})

  def test_zz_shutdown_turns_health_not_serving_first(self):
    # Runs last: it stops the server.
    health = health_pb2_grpc.HealthStub(self.channel)
    watch = health.Watch(health_pb2.HealthCheckRequest(service=""),
                         timeout=60)
    self.assertEqual(next(watch).status,
                     health_pb2.HealthCheckResponse.SERVING)
    self.server.process.send_signal(signal.SIGTERM)
    self.assertEqual(next(watch).status,
                     health_pb2.HealthCheckResponse.NOT_SERVING)
    watch.cancel()
    self.assertEqual(self.server.process.wait(60), 0)


if __name__ == "__main__":
  absltest.main()
