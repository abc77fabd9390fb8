"""End-to-end tests of the server's options, over real sockets.

As upstream's model_servers/tensorflow_model_server_test.py: each test starts
a server (in this process through Server, or the built binary in its own
process when signals and exit codes matter), talks to it as a client would
over gRPC (and REST), and checks what upstream's server does: model warmup,
request logging, --platform_config_file, --tensorflow_session_config_file,
--enable_signature_method_name_check, --flush_filesystem_caches, graceful
shutdown, and finally every option at once serving an MNIST-shaped model.
"""

import glob
import http.client
import json
import os
import ssl
import tempfile
import time
import urllib.error
import urllib.request

from absl.testing import absltest
import grpc
import numpy as np
import tensorflow as tf

from tensorflow_serving.apis import get_model_status_pb2
from tensorflow_serving.apis import model_service_pb2_grpc
from tensorflow_serving.apis import predict_pb2
from tensorflow_serving.apis import prediction_log_pb2
from tensorflow_serving.apis import prediction_service_pb2_grpc
from tensorflow_serving.model_servers import server as server_lib
from tensorflow_serving.model_servers.test_util import model_server_process
from tensorflow_serving.servables.tensorflow.test_util import half_plus_two
from tensorflow_serving.servables.tensorflow.test_util import requests
from tensorflow_serving.servables.tensorflow.test_util import warmup_requests
from tensorflow_serving.util import metrics
from tensorflow_serving.util import tensor_codec

Options = server_lib.Server.Options
ModelVersionStatus = get_model_status_pb2.ModelVersionStatus


def _predict_request(model: str, *xs: float,
                     signature_name: str = "") -> predict_pb2.PredictRequest:
  request = predict_pb2.PredictRequest()
  request.model_spec.name = model
  request.model_spec.signature_name = signature_name
  request.inputs["x"].CopyFrom(
      tensor_codec.ndarray_to_tensor_proto(
          np.array([[x] for x in xs], dtype=np.float32)))
  return request


def _config_file(directory: str, models: dict[str, str], extra: str = "",
                 per_model: dict[str, str] | None = None) -> str:
  """A --model_config_file; per_model adds text inside a model's entry."""
  per_model = per_model or {}
  entries = "".join(
      f'config {{ name: "{name}" base_path: "{path}" '
      f'model_platform: "tensorflow" {per_model.get(name, "")} }}\n'
      for name, path in models.items())
  path = os.path.join(directory, "models.config")
  with open(path, "w") as f:
    f.write(f"model_config_list {{\n{entries}}}\n{extra}")
  return path


def _read_logs(prefix: str) -> list[prediction_log_pb2.PredictionLog]:
  logs = []
  for path in sorted(glob.glob(prefix + "-*.tfrecord")):
    logs += [prediction_log_pb2.PredictionLog.FromString(r.numpy())
             for r in tf.data.TFRecordDataset(path)]
  return logs


class _InProcessServerTest(absltest.TestCase):
  """Starts Servers in this process and stops them after each test."""

  def start(self, **options) -> server_lib.Server:
    options.setdefault("port", model_server_process.free_port())
    server = server_lib.Server()
    server.build_and_start(Options(**options))
    self.addCleanup(server.stop)
    return server

  def channel(self, server: server_lib.Server) -> grpc.Channel:
    channel = grpc.insecure_channel(f"localhost:{server.grpc_port}")
    self.addCleanup(channel.close)
    return channel

  def predict_stub(self, server: server_lib.Server):
    return prediction_service_pb2_grpc.PredictionServiceStub(
        self.channel(server))


class WarmupTest(_InProcessServerTest):
  """assets.extra/tf_serving_warmup_requests, replayed at load time."""

  def test_records_replayed_num_request_iterations_times(self):
    base = half_plus_two.fresh_dir("warmup_iterations")
    export = half_plus_two.write_tf1(os.path.join(base, "1"))
    # The records name a model of their own, so that their runs can be told
    # apart in the runtime_latency metric.
    warmup_requests.write(export,
                          warmup_requests.half_plus_two_records("warm_iter"))
    cell = metrics.RUNTIME_LATENCY.get_cell("warm_iter", "Predict", "TF1",
                                            "1", "serving_default")
    before = cell.snapshot()[2]
    server = self.start(model_name="half", model_base_path=base,
                        num_request_iterations_for_warmup=3)
    self.assertEqual(cell.snapshot()[2], before + 3)
    response = self.predict_stub(server).Predict(
        _predict_request("half", 4.0), timeout=30)
    self.assertEqual(list(response.outputs["y"].float_val), [4.0])

  def test_enable_model_warmup_false_skips_the_file(self):
    base = half_plus_two.fresh_dir("warmup_off")
    export = half_plus_two.write_tf1(os.path.join(base, "1"))
    warmup_requests.write_raw(export, b"not TFRecord at all")
    server = self.start(model_name="half", model_base_path=base,
                        enable_model_warmup=False)
    response = self.predict_stub(server).Predict(
        _predict_request("half", 2.0), timeout=30)
    self.assertEqual(list(response.outputs["y"].float_val), [3.0])

  def test_broken_warmup_fails_its_version_and_the_old_one_serves(self):
    base = half_plus_two.fresh_dir("warmup_broken")
    v1 = half_plus_two.write_tf1(os.path.join(base, "1"))
    warmup_requests.write(v1, warmup_requests.half_plus_two_records())
    server = self.start(model_name="half", model_base_path=base,
                        max_num_load_retries=0,
                        file_system_poll_wait_seconds=1)
    stub = self.predict_stub(server)
    status_stub = model_service_pb2_grpc.ModelServiceStub(self.channel(server))

    # Version 2 arrives with a warmup file that is not TFRecord.
    staging = os.path.join(half_plus_two.fresh_dir("staging"), "2")
    half_plus_two.write_tf1(staging)
    warmup_requests.write_raw(staging, b"not a TFRecord file")
    os.rename(staging, os.path.join(base, "2"))

    def version_2():
      request = get_model_status_pb2.GetModelStatusRequest()
      request.model_spec.name = "half"
      request.model_spec.version.value = 2
      try:
        return status_stub.GetModelStatus(
            request, timeout=10).model_version_status[0]
      except grpc.RpcError:
        return None  # Not seen yet.

    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
      status = version_2()
      if status is not None and status.state == ModelVersionStatus.END:
        break
      time.sleep(0.2)
    self.assertEqual(status.state, ModelVersionStatus.END)
    self.assertEqual(status.status.error_code, 15)  # DATA_LOSS
    self.assertIn("Please verify your warmup data is in TFRecord format.",
                  status.status.error_message)
    # Version 1 still answers requests for the latest version.
    response = stub.Predict(_predict_request("half", 2.0), timeout=30)
    self.assertEqual(response.model_spec.version.value, 1)
    self.assertEqual(list(response.outputs["y"].float_val), [3.0])


class RequestLoggingTest(_InProcessServerTest):
  """ModelConfig.logging_config with the "tfrecord" collector."""

  @classmethod
  def setUpClass(cls):
    super().setUpClass()
    cls.base = half_plus_two.write_versions(
        half_plus_two.fresh_dir("logging"), half_plus_two.write_tf1)

  def logging_config(self, prefix: str, rate: float) -> str:
    return (f'logging_config {{ log_collector_config {{ type: "tfrecord" '
            f'filename_prefix: "{prefix}" }} sampling_config {{ '
            f'sampling_rate: {rate} }} }}')

  def test_sampled_requests_are_written_as_tfrecord(self):
    tmp = self.create_tempdir().full_path
    logs = os.path.join(tmp, "logs")
    config = _config_file(
        tmp, {"all": self.base, "half_of": self.base, "none": self.base},
        per_model={
            "all": self.logging_config(os.path.join(logs, "all"), 1.0),
            "half_of": self.logging_config(os.path.join(logs, "half_of"), 0.5),
            "none": self.logging_config(os.path.join(logs, "none"), 0.0),
        })
    server = self.start(model_config_file=config,
                        rest_api_port=model_server_process.free_port())
    stub = self.predict_stub(server)
    for model in ("all", "half_of", "none"):
      for i in range(200):
        stub.Predict(_predict_request(model, float(i)), timeout=30)
    stub.Classify(requests.classification_request("classify_x_to_y", 1.0,
                                                  model="all"), timeout=30)
    stub.Regress(requests.regression_request("regress_x_to_y", 1.0,
                                             model="all"), timeout=30)
    stub.MultiInference(requests.multi_inference_request(
        [("regress_x_to_y", "tensorflow/serving/regress")], 1.0, model="all"),
                        timeout=30)
    rest = urllib.request.urlopen(urllib.request.Request(
        f"http://localhost:{server.rest_port}/v1/models/all:predict",
        data=json.dumps({"instances": [[7.0]]}).encode()), timeout=30)
    self.assertEqual(json.loads(rest.read()), {"predictions": [[5.5]]})
    # A failed request is not logged.
    with self.assertRaises(grpc.RpcError):
      stub.Predict(_predict_request("all", 1.0, signature_name="nope"),
                   timeout=30)

    # Readable while the server runs: each record is flushed.
    all_logs = _read_logs(os.path.join(logs, "all"))
    self.assertLen(all_logs, 204)
    kinds = [log.WhichOneof("log_type") for log in all_logs]
    self.assertEqual(kinds.count("predict_log"), 201)
    self.assertEqual(
        kinds[200:203], ["classify_log", "regress_log", "multi_inference_log"])
    first = all_logs[0]
    self.assertEqual(first.predict_log.request,
                     _predict_request("all", 0.0))
    self.assertEqual(list(first.predict_log.response.outputs["y"].float_val),
                     [2.0])
    metadata = first.log_metadata
    self.assertEqual(metadata.model_spec.name, "all")
    self.assertEqual(metadata.model_spec.version.value, 1)
    self.assertEqual(metadata.model_spec.signature_name, "serving_default")
    self.assertEqual(metadata.sampling_config.sampling_rate, 1.0)
    self.assertGreater(metadata.timestamp_secs, 0)
    rest_log = all_logs[-1].predict_log
    self.assertEqual(list(rest_log.response.outputs["y"].float_val), [5.5])

    # sampling_rate 0.5: about half of 200 (far outside 60..140 is ~1e-8).
    sampled = len(_read_logs(os.path.join(logs, "half_of")))
    self.assertBetween(sampled, 60, 140)
    self.assertEmpty(_read_logs(os.path.join(logs, "none")))

  def test_unknown_collector_type_is_a_startup_error(self):
    tmp = self.create_tempdir().full_path
    config = _config_file(tmp, {"half": self.base}, per_model={
        "half": ('logging_config { log_collector_config { type: "kafka" '
                 'filename_prefix: "/x" } }')})
    with self.assertRaises(server_lib.StartupError) as cm:
      self.start(model_config_file=config)
    self.assertEqual(str(cm.exception),
                     "Cannot find LogCollector::Factory for type: kafka")


_PLATFORM_CONFIG = """
platform_configs {
  key: "%s"
  value {
    source_adapter_config {
      [type.googleapis.com/tensorflow.serving.SavedModelBundleSourceAdapterConfig] {
        legacy_config {
          session_config { intra_op_parallelism_threads: 2 }
          saved_model_tags: "serve"
          batching_parameters {
            max_batch_size { value: 4 }
            batch_timeout_micros { value: 0 }
            num_batch_threads { value: 1 }
          }
        }
      }
    }
  }
}
"""


def _session_config(server: server_lib.Server, model: str):
  """The ConfigProto of the session that serves model (white-box)."""
  spec = predict_pb2.PredictRequest().model_spec
  spec.name = model
  with server.server_core.get_servable_handle(spec) as handle:
    return handle.servable.bundle.session._config  # pylint: disable=protected-access


class LoadingOptionsTest(_InProcessServerTest):
  """--platform_config_file, --tensorflow_session_config_file,
  --enable_signature_method_name_check, --flush_filesystem_caches."""

  @classmethod
  def setUpClass(cls):
    super().setUpClass()
    cls.base = half_plus_two.fresh_dir("loading")
    export = half_plus_two.write_tf1(os.path.join(cls.base, "1"))
    # Only a server that skips warmup can load this version.
    warmup_requests.write_raw(export, b"not TFRecord")
    cls.tf2_base = half_plus_two.write_versions(
        half_plus_two.fresh_dir("loading_tf2"), half_plus_two.write_tf2)

  def write(self, name: str, text: str) -> str:
    path = os.path.join(self.create_tempdir().full_path, name)
    with open(path, "w") as f:
      f.write(text)
    return path

  def test_platform_config_file(self):
    tmp = self.create_tempdir().full_path
    platform_config = self.write("platform.config",
                                 _PLATFORM_CONFIG % "tensorflow_alt")
    models = os.path.join(tmp, "models.config")
    with open(models, "w") as f:
      f.write(f'model_config_list {{ config {{ name: "half" base_path: '
              f'"{self.base}" model_platform: "tensorflow_alt" }} }}')
    # The platform config decides warmup (off: the proto's default), the
    # session config and batching; --enable_batching and the thread flags
    # are ignored.
    server = self.start(model_config_file=models,
                        platform_config_file=platform_config,
                        enable_batching=True,
                        tensorflow_session_parallelism=7)
    stub = self.predict_stub(server)
    response = stub.Predict(_predict_request("half", 1.0, 2.0, 3.0),
                            timeout=30)
    self.assertEqual(list(response.outputs["y"].float_val), [2.5, 3.0, 3.5])
    self.assertEqual(_session_config(server, "half").intra_op_parallelism_threads,
                     2)

  def test_platform_config_errors(self):
    bad_type = self.write(
        "platform.config",
        'platform_configs { key: "tensorflow" value { source_adapter_config '
        '{ type_url: "type.googleapis.com/my.Adapter" } } }')
    with self.assertRaises(server_lib.StartupError) as cm:
      self.start(model_name="half", model_base_path=self.base,
                 platform_config_file=bad_type)
    self.assertEqual(
        str(cm.exception),
        "Unable to find compiled-in proto descriptor of type my.Adapter")
    # A model whose platform the map does not name.
    other = self.write("other.config", _PLATFORM_CONFIG % "other")
    with self.assertRaises(server_lib.StartupError) as cm:
      self.start(model_name="half", model_base_path=self.base,
                 platform_config_file=other)
    self.assertEqual(str(cm.exception),
                     "Model half requests unsupported platform tensorflow")

  def test_tensorflow_session_config_file(self):
    session_config = self.write(
        "session.config",
        "intra_op_parallelism_threads: 3\ninter_op_parallelism_threads: 2\n"
        "allow_soft_placement: true\n")
    server = self.start(model_name="half", model_base_path=self.base,
                        enable_model_warmup=False,
                        tensorflow_session_config_file=session_config)
    response = self.predict_stub(server).Predict(
        _predict_request("half", 2.0), timeout=30)
    self.assertEqual(list(response.outputs["y"].float_val), [3.0])
    config = _session_config(server, "half")
    self.assertEqual(config.intra_op_parallelism_threads, 3)
    self.assertEqual(config.inter_op_parallelism_threads, 2)
    self.assertTrue(config.allow_soft_placement)

    broken = self.write("broken.config", "intra_op_parallelism_threads: x")
    with self.assertRaises(server_lib.StartupError) as cm:
      self.start(model_name="half", model_base_path=self.base,
                 tensorflow_session_config_file=broken)
    self.assertStartsWith(str(cm.exception),
                          "Failed to read --tensorflow_session_config_file")

  def test_enable_signature_method_name_check(self):
    # TF2 exports give every signature method_name tensorflow/serving/predict.
    request = requests.classification_request("classify_x_to_y", 2.0)
    lenient = self.start(model_name="half", model_base_path=self.tf2_base)
    response = self.predict_stub(lenient).Classify(request, timeout=30)
    self.assertEqual(
        response.result.classifications[0].classes[0].score, 3.0)
    strict = self.start(model_name="half", model_base_path=self.tf2_base,
                        enable_signature_method_name_check=True)
    with self.assertRaises(grpc.RpcError) as cm:
      self.predict_stub(strict).Classify(request, timeout=30)
    self.assertEqual(cm.exception.code(), grpc.StatusCode.INVALID_ARGUMENT)
    self.assertEqual(
        cm.exception.details(),
        "Expected classification signature method_name to be "
        "tensorflow/serving/classify. Was: tensorflow/serving/predict")

  def test_flush_filesystem_caches_is_accepted(self):
    for flush in (True, False):
      with self.assertLogs(level="INFO") as logs:
        server = self.start(model_name="half", model_base_path=self.base,
                            enable_model_warmup=False,
                            flush_filesystem_caches=flush)
      self.assertEqual(
          any("--flush_filesystem_caches" in line for line in logs.output),
          flush)
      server.stop()


def _write_sleep_model(export_dir: str) -> str:
  """A TF1 SavedModel whose Predict sleeps max(ms) milliseconds (no CPU)."""
  from tensorflow.python.data.experimental.ops import testing  # pylint: disable=g-import-not-at-top
  with tf.Graph().as_default():
    ms = tf.compat.v1.placeholder(tf.int64, [None], name="ms")
    slept = tf.data.Dataset.from_tensors(ms).apply(
        testing.sleep(tf.reduce_max(ms) * 1000)).get_single_element()
    out = tf.identity(slept, name="out")
    with tf.compat.v1.Session() as session:
      builder = tf.compat.v1.saved_model.Builder(export_dir)
      builder.add_meta_graph_and_variables(
          session, ["serve"], signature_def_map={
              "serving_default":
                  tf.compat.v1.saved_model.predict_signature_def(
                      inputs={"ms": ms}, outputs={"out": out})
          })
      builder.save()
  return export_dir


class _Call:
  """One client request: when it started and ended, and how."""

  def __init__(self, start: float):
    self.start = start
    self.end = None
    self.code = None


class GracefulShutdownTest(absltest.TestCase):
  """SIGTERM/SIGINT: refuse new requests, finish in-flight ones, exit 0."""

  _SLEEP_MS = 1500

  @classmethod
  def setUpClass(cls):
    super().setUpClass()
    cls.base = half_plus_two.fresh_dir("shutdown")
    _write_sleep_model(os.path.join(cls.base, "1"))

  def start_server(self):
    port = model_server_process.free_port()
    server = model_server_process.ModelServerProcess([
        f"--port={port}", "--model_name=slow",
        f"--model_base_path={self.base}", "--grpc_max_threads=16",
        "--tensorflow_inter_op_parallelism=16",
        "--tensorflow_intra_op_parallelism=2",
    ])
    self.addCleanup(server.kill)
    server.start()
    return server, f"localhost:{port}"

  def request(self, ms: int) -> predict_pb2.PredictRequest:
    request = predict_pb2.PredictRequest()
    request.model_spec.name = "slow"
    request.inputs["ms"].CopyFrom(
        tensor_codec.ndarray_to_tensor_proto(np.array([ms], np.int64)))
    return request

  def test_sigterm_under_load_fails_no_request_mid_flight(self):
    import threading  # pylint: disable=g-import-not-at-top
    server, address = self.start_server()
    calls: list[_Call] = []
    lock = threading.Lock()
    done = threading.Event()

    def client():
      with grpc.insecure_channel(address) as channel:
        stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
        while not done.is_set():
          call = _Call(time.monotonic())
          with lock:
            calls.append(call)
          try:
            stub.Predict(self.request(self._SLEEP_MS), timeout=60)
            call.code = grpc.StatusCode.OK
          except grpc.RpcError as e:
            call.code = e.code()
          call.end = time.monotonic()
          if call.code != grpc.StatusCode.OK:
            return  # The server is going or gone.

    threads = [threading.Thread(target=client) for _ in range(6)]
    for thread in threads:
      thread.start()
    # Let a few rounds complete, then stop the server in the middle of one.
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
      with lock:
        finished = sum(1 for c in calls if c.code == grpc.StatusCode.OK)
      if finished >= 6:
        break
      time.sleep(0.05)
    time.sleep(self._SLEEP_MS / 2000)
    signalled = time.monotonic()
    exit_code = server.stop()  # SIGTERM, then wait for the exit.
    done.set()
    for thread in threads:
      thread.join(60)

    self.assertEqual(exit_code, 0, server.log()[-4000:])
    # Requests the server had surely received (sent well before the
    # signal) and that were still running must all have succeeded.
    in_flight = [c for c in calls
                 if c.start < signalled - 0.5 and c.end > signalled]
    self.assertNotEmpty(in_flight)
    for call in in_flight:
      self.assertEqual(call.code, grpc.StatusCode.OK,
                       f"in flight at SIGTERM: {vars(call)}")
    # Anything else that failed was refused, never broken off.
    for call in calls:
      self.assertIn(call.code, (grpc.StatusCode.OK,
                                grpc.StatusCode.UNAVAILABLE), vars(call))
    log = server.log()
    self.assertIn("Received shutdown signal", log)
    self.assertIn("Server stopped.", log)

  def test_sigint_finishes_the_request_in_flight(self):
    import signal  # pylint: disable=g-import-not-at-top
    server, address = self.start_server()
    with grpc.insecure_channel(address) as channel:
      stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
      future = stub.Predict.future(self.request(1500), timeout=60)
      time.sleep(0.5)
      self.assertEqual(server.stop(signal.SIGINT), 0)
      self.assertEqual(
          tensor_codec.tensor_proto_to_ndarray(
              future.result().outputs["out"]).tolist(), [1500])


def _write_mnist_like_model(export_dir: str) -> tuple[np.ndarray, np.ndarray]:
  """A softmax 784 -> 10 model with mnist_saved_model's predict_images.

  The weights are random rather than trained (the server does not care);
  returns them so that tests can compute the expected scores.
  """
  rng = np.random.default_rng(7)
  weights = rng.normal(scale=0.05, size=(784, 10)).astype(np.float32)
  bias = rng.normal(scale=0.05, size=(10,)).astype(np.float32)
  with tf.Graph().as_default():
    x = tf.compat.v1.placeholder(tf.float32, [None, 784], name="x")
    w = tf.compat.v1.Variable(weights, name="w")
    b = tf.compat.v1.Variable(bias, name="b")
    y = tf.nn.softmax(tf.matmul(x, w) + b, name="y")
    info = tf.compat.v1.saved_model.utils.build_tensor_info
    predict_images = tf.compat.v1.saved_model.signature_def_utils.build_signature_def(
        inputs={"images": info(x)}, outputs={"scores": info(y)},
        method_name="tensorflow/serving/predict")
    with tf.compat.v1.Session() as session:
      session.run(tf.compat.v1.global_variables_initializer())
      builder = tf.compat.v1.saved_model.Builder(export_dir)
      builder.add_meta_graph_and_variables(
          session, ["serve"], signature_def_map={
              "predict_images": predict_images,
              "serving_default": predict_images,
          })
      builder.save()
  return weights, bias


def _mnist_request(images: np.ndarray, **model_spec) -> predict_pb2.PredictRequest:
  """What mnist_client sends: predict_images with float images [N, 784]."""
  request = predict_pb2.PredictRequest()
  request.model_spec.name = "mnist"
  request.model_spec.signature_name = "predict_images"
  for key, value in model_spec.items():
    if key == "version_label":
      request.model_spec.version_label = value
  request.inputs["images"].CopyFrom(tf.make_tensor_proto(images))
  return request


class EveryOptionAtOnceTest(absltest.TestCase):
  """The binary with (nearly) every flag set serves MNIST-shaped requests.

  TLS (mutual) on the TCP port and the Unix socket, gRPC health, warmup,
  request logging, batching, REST over mutual TLS with CORS and Prometheus
  (guarded by --restricted_api), version labels,
  session and thread settings, and the flags for features this server does
  not have. Left out: --use_alts_credentials (it excludes TLS),
  --platform_config_file (it replaces the batching, thread and warmup
  flags; tested above) and --version.
  """

  def test_serves_mnist_over_tls_and_the_socket(self):
    import signal  # pylint: disable=g-import-not-at-top
    from grpc_health.v1 import health_pb2  # pylint: disable=g-import-not-at-top
    from grpc_health.v1 import health_pb2_grpc  # pylint: disable=g-import-not-at-top
    from tensorflow_serving.model_servers.test_util import test_certs  # pylint: disable=g-import-not-at-top

    tmp = self.create_tempdir().full_path
    base = os.path.join(tmp, "mnist")
    export = os.path.join(base, "1")
    weights, bias = _write_mnist_like_model(export)
    rng = np.random.default_rng(1)
    warmup = []
    for _ in range(3):
      record = prediction_log_pb2.PredictionLog()
      record.predict_log.request.CopyFrom(
          _mnist_request(rng.random((1, 784), dtype=np.float32)))
      warmup.append(record)
    warmup_requests.write(export, warmup)

    def write(name: str, text: str) -> str:
      path = os.path.join(tmp, name)
      with open(path, "w") as f:
        f.write(text)
      return path

    cert_dir = os.path.join(tmp, "certs")
    os.makedirs(cert_dir)
    certs = test_certs.make_certs(cert_dir)
    log_prefix = os.path.join(tmp, "request_logs", "mnist")
    model_config = write("models.config", f"""
model_config_list {{
  config {{
    name: "mnist"
    base_path: "{base}"
    model_platform: "tensorflow"
    model_version_policy {{ specific {{ versions: 1 }} }}
    version_labels {{ key: "stable" value: 1 }}
    logging_config {{
      log_collector_config {{ type: "tfrecord" filename_prefix: "{log_prefix}" }}
      sampling_config {{ sampling_rate: 1.0 }}
    }}
  }}
}}
""")
    port = model_server_process.free_port()
    rest_port = model_server_process.free_port()
    socket_path = os.path.join(tempfile.mkdtemp(dir="/tmp"), "mnist.sock")
    args = [
        f"--port={port}",
        f"--grpc_socket_path={socket_path}",
        f"--rest_api_port={rest_port}",
        "--rest_api_num_threads=4",
        "--rest_api_timeout_in_ms=20000",
        "--rest_api_enable_cors_support=true",
        "--enable_batching",
        "--batching_parameters_file=" + write(
            "batching.config",
            "max_batch_size { value: 16 } batch_timeout_micros { value: 1000 }"
            " max_enqueued_batches { value: 100 } num_batch_threads "
            "{ value: 2 }"),
        "--allow_version_labels_for_unavailable_models=true",
        f"--model_config_file={model_config}",
        "--model_config_file_poll_wait_seconds=60",
        "--model_name=ignored_with_a_config_file",
        "--model_base_path=/ignored/with/a/config/file",
        "--num_load_threads=2",
        "--num_unload_threads=2",
        "--max_num_load_retries=1",
        "--load_retry_interval_micros=100000",
        "--file_system_poll_wait_seconds=2",
        "--flush_filesystem_caches=true",
        "--tensorflow_session_parallelism=0",
        "--tensorflow_session_config_file=" + write(
            "session.config", "allow_soft_placement: true"),
        "--tensorflow_intra_op_parallelism=2",
        "--tensorflow_inter_op_parallelism=2",
        "--use_alts_credentials=false",
        "--ssl_config_file=" + write("ssl.config",
                                     certs.ssl_config_text(client_verify=True)),
        "--per_process_gpu_memory_fraction=0.5",
        "--saved_model_tags=serve",
        "--grpc_channel_arguments=grpc.max_concurrent_streams=100",
        "--grpc_max_threads=8",
        "--enable_model_warmup=true",
        "--num_request_iterations_for_warmup=2",
        "--monitoring_config_file=" + write(
            "monitoring.config", "prometheus_config { enable: true }"),
        "--remove_unused_fields_from_bundle_metagraph=true",
        "--prefer_tflite_model=false",
        "--num_tflite_pools=2",
        "--num_tflite_interpreters_per_pool=1",
        "--enable_signature_method_name_check=true",
        "--xla_cpu_compilation_enabled=false",
        "--xla_gpu_compilation_enabled=false",
        "--enable_profiler=true",
        "--mixed_precision=",
        "--skip_initialize_tpu=true",
        "--enable_grpc_healthcheck_service=true",
        "--enable_serialization_as_tensor_content=false",
        # Not in upstream.
        "--rest_api_ssl_config_file=" + write(
            "rest_ssl.config", certs.ssl_config_text(client_verify=True)),
        "--restricted_api=metrics:x-metrics-key=p4;"
        "model_management:x-admin-key=s3cret",
    ]
    server = model_server_process.ModelServerProcess(args)
    self.addCleanup(server.kill)
    server.start()

    credentials = grpc.ssl_channel_credentials(
        root_certificates=certs.ca_cert, private_key=certs.client_key,
        certificate_chain=certs.client_cert)
    images = rng.random((3, 784), dtype=np.float32)
    logits = images @ weights + bias
    expected = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    for target, options in (
        (f"localhost:{port}", ()),
        (f"unix:{socket_path}",
         (("grpc.ssl_target_name_override", "localhost"),))):
      with grpc.secure_channel(target, credentials, options=options) as channel:
        health = health_pb2_grpc.HealthStub(channel).Check(
            health_pb2.HealthCheckRequest(service="PredictionService"),
            timeout=30)
        self.assertEqual(health.status, health_pb2.HealthCheckResponse.SERVING)
        stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
        response = stub.Predict(_mnist_request(images), timeout=30)
        scores = np.array(response.outputs["scores"].float_val).reshape(3, 10)
        np.testing.assert_allclose(scores, expected, rtol=1e-4, atol=1e-6)
        labelled = stub.Predict(
            _mnist_request(images[:1], version_label="stable"), timeout=30)
        self.assertEqual(labelled.model_spec.version.value, 1)
    # Without a client certificate the server refuses (mutual TLS).
    with grpc.secure_channel(
        f"localhost:{port}",
        grpc.ssl_channel_credentials(root_certificates=certs.ca_cert)) as bare:
      with self.assertRaises(grpc.RpcError):
        prediction_service_pb2_grpc.PredictionServiceStub(bare).Predict(
            _mnist_request(images), timeout=30)

    # REST over mutual TLS, with CORS headers and the Prometheus page (which
    # needs its header).
    tls = ssl.create_default_context(
        cafile=os.path.join(cert_dir, "test_ca.pem"))
    tls.load_cert_chain(os.path.join(cert_dir, "client.pem"),
                        os.path.join(cert_dir, "client.key"))
    reply = urllib.request.urlopen(urllib.request.Request(
        f"https://localhost:{rest_port}/v1/models/mnist:predict",
        data=json.dumps({"signature_name": "predict_images",
                         "instances": images[:1].tolist()}).encode()),
                                   timeout=30, context=tls)
    self.assertEqual(reply.headers["Access-Control-Allow-Origin"], "*")
    np.testing.assert_allclose(json.loads(reply.read())["predictions"],
                               expected[:1], rtol=1e-4, atol=1e-6)
    metrics_url = f"https://localhost:{rest_port}/monitoring/prometheus/metrics"
    with self.assertRaises(urllib.error.HTTPError) as cm:
      urllib.request.urlopen(metrics_url, timeout=30, context=tls)
    self.assertEqual(cm.exception.code, 403)
    metrics_page = urllib.request.urlopen(
        urllib.request.Request(metrics_url,
                               headers={"X-Metrics-Key": "p4"}),
        timeout=30, context=tls).read().decode()
    self.assertIn(":tensorflow:serving:request_count", metrics_page)
    self.assertIn(":tensorflow:serving:restricted_api_denied_count{"
                  'api_group="metrics",entrypoint="REST"} 1', metrics_page)
    # Plain HTTP, or HTTPS without a client certificate: refused.
    for url, context in ((f"http://localhost:{rest_port}/v2/health/ready",
                          None),
                         (f"https://localhost:{rest_port}/v2/health/ready",
                          ssl.create_default_context(
                              cafile=os.path.join(cert_dir, "test_ca.pem")))):
      with self.assertRaises((urllib.error.URLError, ConnectionError,
                              http.client.RemoteDisconnected), msg=url):
        urllib.request.urlopen(url, timeout=30, context=context)

    # Every successful Predict (2 per channel, 1 REST) was logged.
    logs = _read_logs(log_prefix)
    self.assertLen(logs, 5)
    self.assertTrue(all(l.log_metadata.model_spec.name == "mnist"
                        for l in logs))

    self.assertEqual(server.stop(signal.SIGTERM), 0)
    log = server.log()
    self.assertIn("Number of warmup records read: 3", log)
    self.assertIn(f"Running gRPC ModelServer at UNIX socket {socket_path}", log)


if __name__ == "__main__":
  absltest.main()
