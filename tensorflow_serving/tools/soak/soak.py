"""Soak: many mixed good and bad requests over gRPC and REST, and the
server's memory while they run (issue 17, item 8).

Starts the built tensorflow_model_server on y = 0.5 x + 2 (soak_model; or
targets a
running one: --grpc_port, --rest_port and --server_pid), then sends
--requests requests from --clients threads, each request drawn (seeded)
from a mix of:

  * good: Predict, Classify, Regress, GetModelStatus, GetModelMetadata and
    V2 ModelInfer over gRPC; :predict, :classify, :regress, status,
    metadata, gzip-compressed :predict and V2 infer over REST;
  * bad: unknown models, wrong dtypes, malformed JSON, a body over
    --rest_api_max_body_bytes, a gzip body that inflates past it, a V2
    infer with a wrong shape, gRPC deadlines that expire.

Every 10,000 requests it prints the server's resident memory (VmRSS from
/proc/PID/status); at the end, the count of each outcome (request kind ->
gRPC code or HTTP status), and whether RSS after warm-up stayed within
--flat_bytes. A request whose outcome is not one its kind may have (a good
one failing, a bad one answered with the wrong status) is counted as
"UNEXPECTED" and makes the exit status 1. Usage (docs/reliability.md):

  bazel run //tensorflow_serving/tools/soak -- --requests=100000
"""

import collections
import gzip
import json
import os
import random
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from typing import Callable, Optional, Sequence

from absl import app
from absl import flags
import grpc
import numpy as np
import requests

from tensorflow_serving.apis import classification_pb2
from tensorflow_serving.apis import get_model_metadata_pb2
from tensorflow_serving.apis import get_model_status_pb2
from tensorflow_serving.apis import grpc_service_pb2
from tensorflow_serving.apis import grpc_service_pb2_grpc
from tensorflow_serving.apis import model_service_pb2_grpc
from tensorflow_serving.apis import predict_pb2
from tensorflow_serving.apis import prediction_service_pb2_grpc
from tensorflow_serving.apis import regression_pb2

_REQUESTS = flags.DEFINE_integer("requests", 100000, "Requests to send.")
_CLIENTS = flags.DEFINE_integer("clients", 8, "Client threads.")
_REPORT_EVERY = flags.DEFINE_integer("report_every", 10000,
                                     "Print the server's RSS this often.")
_FLAT_BYTES = flags.DEFINE_integer(
    "flat_bytes", 64 << 20,
    "RSS after warm-up (the first report) may move by this much.")
_SEED = flags.DEFINE_integer("seed", 17, "Seed of the request mix.")
_SERVER = flags.DEFINE_string(
    "server", "", "The tensorflow_model_server to start (default: the one "
    "built in this workspace's bazel-bin).")
_MAX_BODY_BYTES = flags.DEFINE_integer(
    "max_body_bytes", 1 << 20, "--rest_api_max_body_bytes of a started "
    "server (small, so that oversized bodies cost little to send).")
_GRPC_PORT = flags.DEFINE_integer("grpc_port", 0, "Target a running server.")
_REST_PORT = flags.DEFINE_integer("rest_port", 0, "Target a running server.")
_SERVER_PID = flags.DEFINE_integer("server_pid", 0,
                                   "The running server's PID (for RSS).")

_MODEL = "half"
_SERVER_BINARY = os.path.join("bazel-bin", "tensorflow_serving",
                              "model_servers", "tensorflow_model_server")


def rss_bytes(pid: int) -> int:
  """VmRSS of a process, from /proc/PID/status."""
  with open(f"/proc/{pid}/status") as f:
    for line in f:
      if line.startswith("VmRSS:"):
        return int(line.split()[1]) * 1024
  raise ValueError(f"no VmRSS for {pid}")


def _example(x: float) -> dict:
  return {"x": x}


class Mix:
  """The request kinds, each a (name, weight, send, expected outcomes)."""

  def __init__(self, grpc_port: int, rest_port: int, max_body_bytes: int):
    channel = grpc.insecure_channel(f"localhost:{grpc_port}")
    self._predict = prediction_service_pb2_grpc.PredictionServiceStub(channel)
    self._model = model_service_pb2_grpc.ModelServiceStub(channel)
    self._v2 = grpc_service_pb2_grpc.GRPCInferenceServiceStub(channel)
    self._rest = f"http://localhost:{rest_port}"
    self._local = threading.local()
    self._big_body = b" " * (max_body_bytes + 1)
    self._bomb = gzip.compress(b" " * (max_body_bytes + (1 << 20)))
    self._gzip_predict = gzip.compress(
        json.dumps({"instances": [[1.0], [2.0]]}).encode())
    # name -> (weight, send() -> outcome, outcomes it may have)
    self.kinds: dict[str, tuple[int, Callable[[], str], set[str]]] = {
        "grpc Predict": (10, self._grpc_predict, {"OK"}),
        "grpc Classify": (4, self._grpc_classify, {"OK"}),
        "grpc Regress": (4, self._grpc_regress, {"OK"}),
        "grpc GetModelStatus": (4, self._grpc_status, {"OK"}),
        "grpc GetModelMetadata": (2, self._grpc_metadata, {"OK"}),
        "grpc V2 ModelInfer": (6, self._grpc_v2_infer, {"OK"}),
        "grpc Predict unknown model": (3, self._grpc_unknown, {"NOT_FOUND"}),
        "grpc Predict wrong dtype": (3, self._grpc_wrong_dtype,
                                     {"INVALID_ARGUMENT"}),
        "grpc Predict expired deadline": (3, self._grpc_deadline,
                                          {"DEADLINE_EXCEEDED", "OK"}),
        "rest predict": (10, self._rest_predict, {"200"}),
        "rest predict gzip": (3, self._rest_predict_gzip, {"200"}),
        "rest classify": (4, self._rest_classify, {"200"}),
        "rest regress": (4, self._rest_regress, {"200"}),
        "rest status": (4, lambda: self._get(f"/v1/models/{_MODEL}"),
                        {"200"}),
        "rest metadata": (2, lambda: self._get(
            f"/v1/models/{_MODEL}/metadata"), {"200"}),
        "rest V2 infer": (6, self._rest_v2_infer, {"200"}),
        "rest malformed JSON": (4, lambda: self._post(
            f"/v1/models/{_MODEL}:predict", b'{"instances": [1.0,'), {"400"}),
        "rest wrong dtype": (3, lambda: self._post(
            f"/v1/models/{_MODEL}:predict", b'{"instances": [["a"]]}'),
                             {"400"}),
        "rest unknown model": (3, lambda: self._post(
            "/v1/models/nosuchmodel:predict", b'{"instances": [[1.0]]}'),
                               {"404"}),
        "rest V2 wrong shape": (2, self._rest_v2_wrong_shape, {"400"}),
        "rest oversized body": (1, lambda: self._post(
            f"/v1/models/{_MODEL}:predict", self._big_body), {"413"}),
        "rest gzip bomb": (1, lambda: self._post(
            f"/v1/models/{_MODEL}:predict", self._bomb,
            {"Content-Encoding": "gzip"}), {"413"}),
    }

  def _session(self) -> requests.Session:
    session = getattr(self._local, "session", None)
    if session is None:
      session = self._local.session = requests.Session()
    return session

  def _post(self, path: str, body: bytes,
            headers: Optional[dict] = None) -> str:
    response = self._session().post(self._rest + path, data=body,
                                     headers=headers, timeout=60)
    return str(response.status_code)

  def _get(self, path: str) -> str:
    return str(self._session().get(self._rest + path, timeout=60).status_code)

  def _rest_predict(self) -> str:
    return self._post(f"/v1/models/{_MODEL}:predict",
                      b'{"instances": [[1.0], [2.0], [5.0]]}')

  def _rest_predict_gzip(self) -> str:
    return self._post(f"/v1/models/{_MODEL}:predict", self._gzip_predict,
                      {"Content-Encoding": "gzip"})

  def _rest_classify(self) -> str:
    body = json.dumps({"signature_name": "classify_x_to_y",
                       "examples": [_example(1.0), _example(3.0)]})
    return self._post(f"/v1/models/{_MODEL}:classify", body.encode())

  def _rest_regress(self) -> str:
    body = json.dumps({"signature_name": "regress_x_to_y",
                       "examples": [_example(1.0)]})
    return self._post(f"/v1/models/{_MODEL}:regress", body.encode())

  def _rest_v2_infer(self) -> str:
    body = json.dumps({"inputs": [{"name": "x", "datatype": "FP32",
                                   "shape": [2, 1], "data": [1.0, 2.0]}]})
    return self._post(f"/v2/models/{_MODEL}/infer", body.encode())

  def _rest_v2_wrong_shape(self) -> str:
    body = json.dumps({"inputs": [{"name": "x", "datatype": "FP32",
                                   "shape": [2, 1], "data": [1.0]}]})
    return self._post(f"/v2/models/{_MODEL}/infer", body.encode())

  @staticmethod
  def _grpc_call(call: Callable[[], object]) -> str:
    try:
      call()
      return "OK"
    except grpc.RpcError as e:
      return e.code().name

  @staticmethod
  def _predict_request(model: str = _MODEL) -> predict_pb2.PredictRequest:
    request = predict_pb2.PredictRequest()
    request.model_spec.name = model
    tensor = request.inputs["x"]
    tensor.dtype = 1  # DT_FLOAT
    tensor.tensor_shape.dim.add(size=2)
    tensor.tensor_shape.dim.add(size=1)
    tensor.float_val.extend([1.0, 2.0])
    return request

  def _grpc_predict(self) -> str:
    return self._grpc_call(
        lambda: self._predict.Predict(self._predict_request(), timeout=60))

  def _grpc_unknown(self) -> str:
    return self._grpc_call(lambda: self._predict.Predict(
        self._predict_request("nosuchmodel"), timeout=60))

  def _grpc_wrong_dtype(self) -> str:
    request = predict_pb2.PredictRequest()
    request.model_spec.name = _MODEL
    tensor = request.inputs["x"]
    tensor.dtype = 7  # DT_STRING
    tensor.tensor_shape.dim.add(size=1)
    tensor.tensor_shape.dim.add(size=1)
    tensor.string_val.append(b"a")
    return self._grpc_call(lambda: self._predict.Predict(request, timeout=60))

  def _grpc_deadline(self) -> str:
    return self._grpc_call(lambda: self._predict.Predict(
        self._predict_request(), timeout=0.0005))

  @staticmethod
  def _examples(request) -> None:
    example = request.input.example_list.examples.add()
    example.features.feature["x"].float_list.value.append(1.0)

  def _grpc_classify(self) -> str:
    request = classification_pb2.ClassificationRequest()
    request.model_spec.name = _MODEL
    request.model_spec.signature_name = "classify_x_to_y"
    self._examples(request)
    return self._grpc_call(lambda: self._predict.Classify(request, timeout=60))

  def _grpc_regress(self) -> str:
    request = regression_pb2.RegressionRequest()
    request.model_spec.name = _MODEL
    request.model_spec.signature_name = "regress_x_to_y"
    self._examples(request)
    return self._grpc_call(lambda: self._predict.Regress(request, timeout=60))

  def _grpc_status(self) -> str:
    request = get_model_status_pb2.GetModelStatusRequest()
    request.model_spec.name = _MODEL
    return self._grpc_call(
        lambda: self._model.GetModelStatus(request, timeout=60))

  def _grpc_metadata(self) -> str:
    request = get_model_metadata_pb2.GetModelMetadataRequest()
    request.model_spec.name = _MODEL
    request.metadata_field.append("signature_def")
    return self._grpc_call(
        lambda: self._predict.GetModelMetadata(request, timeout=60))

  def _grpc_v2_infer(self) -> str:
    request = grpc_service_pb2.ModelInferRequest(model_name=_MODEL)
    request.inputs.add(name="x", datatype="FP32", shape=[2, 1])
    request.raw_input_contents.append(
        np.array([1.0, 2.0], np.float32).tobytes())
    return self._grpc_call(lambda: self._v2.ModelInfer(request, timeout=60))


def _free_port() -> int:
  with socket.socket() as s:
    s.bind(("localhost", 0))
    return s.getsockname()[1]


def _wait_serving(rest_port: int, process: subprocess.Popen,
                  timeout: float = 300.0) -> None:
  deadline = time.monotonic() + timeout
  while time.monotonic() < deadline:
    if process.poll() is not None:
      raise RuntimeError(f"the server exited with {process.returncode}")
    try:
      if requests.get(f"http://localhost:{rest_port}/v1/models/{_MODEL}",
                      timeout=5).status_code == 200:
        return
    except requests.ConnectionError:
      pass
    time.sleep(0.5)
  raise RuntimeError("the server did not start serving in time")


def start_server(binary: str, max_body_bytes: int, model_dir: str
                ) -> tuple[subprocess.Popen, int, int]:
  """Writes the soak model and starts a server on it: (process, gRPC port,
  REST port)."""
  # Imported here: only a started server needs TensorFlow in this process.
  from tensorflow_serving.tools.soak import soak_model  # pylint: disable=g-import-not-at-top
  soak_model.write(os.path.join(model_dir, "1"))
  grpc_port, rest_port = _free_port(), _free_port()
  process = subprocess.Popen(  # pylint: disable=consider-using-with
      [binary, f"--port={grpc_port}", f"--rest_api_port={rest_port}",
       f"--model_name={_MODEL}", f"--model_base_path={model_dir}",
       f"--rest_api_max_body_bytes={max_body_bytes}"],
      stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
  _wait_serving(rest_port, process)
  return process, grpc_port, rest_port


def soak(mix: Mix, pid: int, total: int, clients: int, report_every: int,
         seed: int, out=sys.stdout) -> tuple[collections.Counter, list[int]]:
  """Sends `total` requests of the mix; returns the outcome counts and the
  RSS (bytes) read at every report."""
  names = list(mix.kinds)
  weights = [mix.kinds[n][0] for n in names]
  plan = random.Random(seed).choices(names, weights, k=total)
  counts: collections.Counter = collections.Counter()
  mu = threading.Lock()
  next_index = [0]
  done = [0]
  series: list[int] = []
  start = time.monotonic()

  def client():
    while True:
      with mu:
        i = next_index[0]
        if i >= total:
          return
        next_index[0] += 1
      name = plan[i]
      _, send, expected = mix.kinds[name]
      try:
        outcome = send()
      except Exception as e:  # pylint: disable=broad-except
        outcome = type(e).__name__
      report = None
      with mu:
        counts[f"{name} -> {outcome}"] += 1
        if outcome not in expected:
          counts["UNEXPECTED"] += 1
        done[0] += 1
        if done[0] % report_every == 0:
          report = done[0]
      if report is not None:
        rss = rss_bytes(pid)
        with mu:
          series.append(rss)
        print(f"{report:>7} requests  {time.monotonic() - start:7.1f} s  "
              f"RSS {rss / 2**20:7.1f} MiB", file=out, flush=True)

  threads = [threading.Thread(target=client, daemon=True)
             for _ in range(clients)]
  for thread in threads:
    thread.start()
  for thread in threads:
    thread.join()
  return counts, series


def main(argv: Sequence[str]) -> None:
  del argv
  process = None
  model_dir = None
  if _GRPC_PORT.value and _REST_PORT.value and _SERVER_PID.value:
    grpc_port, rest_port, pid = (_GRPC_PORT.value, _REST_PORT.value,
                                 _SERVER_PID.value)
    max_body = _MAX_BODY_BYTES.value
  else:
    workspace = os.environ.get("BUILD_WORKSPACE_DIRECTORY") or os.getcwd()
    binary = _SERVER.value or os.path.join(workspace, _SERVER_BINARY)
    model_dir = tempfile.mkdtemp(prefix="soak_model_")
    max_body = _MAX_BODY_BYTES.value
    process, grpc_port, rest_port = start_server(binary, max_body, model_dir)
    pid = process.pid
  try:
    print(f"server pid {pid}: gRPC {grpc_port}, REST {rest_port}; RSS at "
          f"start {rss_bytes(pid) / 2**20:.1f} MiB", flush=True)
    mix = Mix(grpc_port, rest_port, max_body)
    counts, series = soak(mix, pid, _REQUESTS.value, _CLIENTS.value,
                          _REPORT_EVERY.value, _SEED.value)
    print("\noutcomes:")
    for key in sorted(counts):
      print(f"  {counts[key]:>7}  {key}")
    if len(series) >= 2:
      spread = max(series[1:]) - min(series[1:]) if len(series) > 2 else 0
      drift = series[-1] - series[0]
      flat = abs(drift) <= _FLAT_BYTES.value and spread <= _FLAT_BYTES.value
      print(f"\nRSS after warm-up (from the first report): "
            f"{series[0] / 2**20:.1f} -> {series[-1] / 2**20:.1f} MiB, "
            f"spread of the later reports {spread / 2**20:.1f} MiB: "
            f"{'flat' if flat else 'NOT flat'} within "
            f"{_FLAT_BYTES.value / 2**20:.0f} MiB")
    if counts["UNEXPECTED"]:
      sys.exit(1)
  finally:
    if process is not None:
      process.terminate()
      process.wait(60)
    if model_dir is not None:
      shutil.rmtree(model_dir, ignore_errors=True)


if __name__ == "__main__":
  app.run(main)
