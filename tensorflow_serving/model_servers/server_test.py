"""Tests for Server: real SavedModels, a real gRPC port, upstream's errors."""

import concurrent.futures
import gc
import json
import os
import socket
import tempfile
import time
import urllib.request

from absl.testing import absltest
import grpc
import numpy as np

from tensorflow_serving.apis import get_model_status_pb2
from tensorflow_serving.apis import model_service_pb2_grpc
from tensorflow_serving.apis import predict_pb2
from tensorflow_serving.apis import prediction_service_pb2_grpc
from tensorflow_serving.model_servers import server as server_lib
from tensorflow_serving.servables.tensorflow.test_util import half_plus_two
from tensorflow_serving.util import tensor_codec

Options = server_lib.Server.Options


def _free_port() -> int:
  with socket.socket() as s:
    s.bind(("127.0.0.1", 0))
    return s.getsockname()[1]


class ServerValidationTest(absltest.TestCase):
  """Startup errors are upstream's, and come before anything loads."""

  def assert_startup_error(self, options: Options, text: str) -> None:
    with self.assertRaises(server_lib.StartupError) as cm:
      server_lib.Server().build_and_start(options)
    self.assertEqual(str(cm.exception), text)

  def test_needs_a_port_or_socket(self):
    self.assert_startup_error(
        Options(port=0, model_base_path="/x"),
        "At least one of server_options.grpc_port or "
        "server_options.grpc_socket_path must be set.")

  def test_needs_a_model(self):
    self.assert_startup_error(
        Options(port=1),
        "Both server_options.model_base_path and "
        "server_options.model_config_file are empty!")

  def test_alts_and_ssl_conflict(self):
    self.assert_startup_error(
        Options(model_base_path="/x", use_alts_credentials=True,
                ssl_config_file="/ssl"),
        "Either use_alts_credentials must be false or ssl_config_file must "
        "be empty.")

  def test_batching_file_needs_batching(self):
    self.assert_startup_error(
        Options(model_base_path="/x", batching_parameters_file="/b"),
        "server_options.batching_parameters_file is set without setting "
        "server_options.enable_batching to true.")

  def test_grpc_channel_arguments(self):
    self.assertEqual(
        server_lib.parse_grpc_channel_arguments(
            "grpc.max_connection_age_ms=2000, grpc.primary_user_agent=x"),
        [("grpc.max_connection_age_ms", 2000),
         ("grpc.primary_user_agent", "x")])
    with self.assertRaises(server_lib.StartupError):
      server_lib.parse_grpc_channel_arguments("novalue")


class ServerTest(absltest.TestCase):
  """One server, one TF1 half_plus_two model, over a real gRPC channel."""

  @classmethod
  def setUpClass(cls):
    super().setUpClass()
    base = half_plus_two.fresh_dir("server_test")
    half_plus_two.write_versions(base, half_plus_two.write_tf1, versions=(123,))
    cls.base = base
    monitoring = os.path.join(base, "monitoring.conf")
    with open(monitoring, "w") as f:
      f.write("prometheus_config { enable: true }")
    gc.unfreeze()  # Whatever froze objects before, the server must.
    cls.server = server_lib.Server()
    cls.server.build_and_start(
        Options(port=_free_port(), rest_api_port=_free_port(),
                monitoring_config_file=monitoring, model_name="half",
                model_base_path=base, file_system_poll_wait_seconds=1))
    cls.frozen_at_start = gc.get_freeze_count()
    cls.channel = grpc.insecure_channel(f"localhost:{cls.server.grpc_port}")

  @classmethod
  def tearDownClass(cls):
    cls.channel.close()
    cls.server.stop()
    super().tearDownClass()

  def test_startup_objects_are_out_of_the_collectors_sight(self):
    # TensorFlow and the loaded model (hundreds of thousands of objects) are
    # frozen, so a full collection under load does not stop every request
    # thread while it scans them (docs/performance.md, "Request batching").
    self.assertGreater(self.frozen_at_start, 100_000)

  def test_predict(self):
    request = predict_pb2.PredictRequest()
    request.model_spec.name = "half"
    request.inputs["x"].CopyFrom(
        tensor_codec.ndarray_to_tensor_proto(
            np.array([[1.0], [2.0], [5.0]], dtype=np.float32)))
    stub = prediction_service_pb2_grpc.PredictionServiceStub(self.channel)
    response = stub.Predict(request, timeout=10)
    self.assertEqual(list(response.outputs["y"].float_val), [2.5, 3.0, 4.5])
    self.assertEqual(response.model_spec.version.value, 123)
    self.assertEqual(response.model_spec.signature_name, "serving_default")

  def rest(self, path: str, body: dict | None = None) -> dict:
    request = urllib.request.Request(
        f"http://localhost:{self.server.rest_port}{path}",
        data=None if body is None else json.dumps(body).encode())
    with urllib.request.urlopen(request, timeout=10) as response:
      return response.read().decode()

  def test_rest_predict_status_and_metrics(self):
    self.assertEqual(
        json.loads(self.rest("/v1/models/half:predict",
                             {"instances": [[1.0], [5.0]]})),
        {"predictions": [[2.5], [4.5]]})
    self.assertEqual(
        json.loads(self.rest("/v1/models/half"))["model_version_status"][0]
        ["state"], "AVAILABLE")
    metrics = self.rest("/monitoring/prometheus/metrics")
    self.assertIn(":tensorflow:serving:request_count", metrics)

  def test_unknown_model_is_not_found(self):
    request = predict_pb2.PredictRequest()
    request.model_spec.name = "nope"
    stub = prediction_service_pb2_grpc.PredictionServiceStub(self.channel)
    with self.assertRaises(grpc.RpcError) as cm:
      stub.Predict(request, timeout=10)
    self.assertEqual(cm.exception.code(), grpc.StatusCode.NOT_FOUND)
    self.assertEqual(cm.exception.details(),
                     "Servable not found for request: Latest(nope)")

  def test_port_in_use_is_a_startup_error(self):
    with self.assertRaises(server_lib.StartupError) as cm:
      server_lib.Server().build_and_start(
          Options(port=self.server.grpc_port, model_name="half",
                  model_base_path=self.base))
    self.assertIn("Failed to bind gRPC port", str(cm.exception))

  def test_model_status(self):
    request = get_model_status_pb2.GetModelStatusRequest()
    request.model_spec.name = "half"
    stub = model_service_pb2_grpc.ModelServiceStub(self.channel)
    response = stub.GetModelStatus(request, timeout=10)
    self.assertLen(response.model_version_status, 1)
    status = response.model_version_status[0]
    self.assertEqual(status.version, 123)
    self.assertEqual(
        status.state, get_model_status_pb2.ModelVersionStatus.AVAILABLE)


class ServerBatchingTest(absltest.TestCase):
  """--enable_batching: concurrent Predicts share batches, answers unchanged."""

  def test_bad_batching_file_fails_startup(self):
    path = os.path.join(half_plus_two.fresh_dir("batching"), "batching.conf")
    with open(path, "w") as f:
      f.write("max_batch_size { value: 8 } allowed_batch_sizes: 4")
    with self.assertRaises(server_lib.StartupError) as cm:
      server_lib.Server().build_and_start(
          Options(port=_free_port(), model_base_path="/nonexistent",
                  enable_batching=True, batching_parameters_file=path))
    self.assertIn("Last entry in allowed_batch_sizes must match "
                  "max_batch_size; last entry was 4; expected 8",
                  str(cm.exception))

  def test_batched_answers_equal_unbatched(self):
    base = half_plus_two.write_versions(
        half_plus_two.fresh_dir("batched"), half_plus_two.write_tf1)
    path = os.path.join(base, "batching.conf")
    with open(path, "w") as f:
      f.write("max_batch_size { value: 8 } batch_timeout_micros { value: 2000 }"
              " num_batch_threads { value: 1 } allowed_batch_sizes: 4"
              " allowed_batch_sizes: 8")
    server = server_lib.Server()
    # 4 gRPC threads cannot fill batches of 8: the server says so.
    with self.assertLogs(level="WARNING") as logs:
      server.build_and_start(
          Options(port=_free_port(), model_name="half", model_base_path=base,
                  enable_batching=True, batching_parameters_file=path,
                  grpc_max_threads=4))
    self.assertTrue(any("--grpc_max_threads=4 lets at most 4 requests" in line
                        for line in logs.output), logs.output)
    self.addCleanup(server.stop)
    channel = grpc.insecure_channel(f"localhost:{server.grpc_port}")
    self.addCleanup(channel.close)
    predict = prediction_service_pb2_grpc.PredictionServiceStub(channel).Predict

    def call(i: int) -> list[float]:
      request = predict_pb2.PredictRequest()
      request.model_spec.name = "half"
      xs = np.array([[float(i)], [float(i) + 0.5]], dtype=np.float32)
      request.inputs["x"].CopyFrom(tensor_codec.ndarray_to_tensor_proto(xs))
      return list(predict(request, timeout=10).outputs["y"].float_val)

    with concurrent.futures.ThreadPoolExecutor(16) as pool:
      results = list(pool.map(call, range(64)))
    for i, ys in enumerate(results):
      self.assertEqual(ys, [0.5 * i + 2, 0.5 * (i + 0.5) + 2])
    # The requests went through the shared scheduler: a queue was made for
    # the signature's feed/fetch set on first use.
    self.assertGreaterEqual(server.batch_scheduler.num_queues(), 1)


def _config_text(models: dict[str, str]) -> str:
  entries = "".join(
      f'config {{ name: "{name}" base_path: "{path}" '
      f'model_platform: "tensorflow" model_version_policy {{ all {{}} }} }} '
      for name, path in models.items())
  return f"model_config_list {{ {entries} }}"


class ServerModelConfigFileTest(absltest.TestCase):
  """Two models from --model_config_file, reloaded when the file changes."""

  def test_serves_reloads_and_reports(self):
    base_a = half_plus_two.write_versions(
        half_plus_two.fresh_dir("a"), half_plus_two.write_tf1, versions=(1, 2))
    base_b = half_plus_two.write_versions(
        half_plus_two.fresh_dir("b"), half_plus_two.write_tf2)
    config_path = os.path.join(half_plus_two.fresh_dir("config"), "models.conf")
    with open(config_path, "w") as f:
      f.write(_config_text({"a": base_a, "b": base_b}))
    server = server_lib.Server()
    server.build_and_start(
        Options(port=_free_port(), model_config_file=config_path,
                model_config_file_poll_wait_seconds=1,
                file_system_poll_wait_seconds=1))
    self.addCleanup(server.stop)
    channel = grpc.insecure_channel(f"localhost:{server.grpc_port}")
    self.addCleanup(channel.close)
    predict = prediction_service_pb2_grpc.PredictionServiceStub(channel).Predict
    status_of = model_service_pb2_grpc.ModelServiceStub(channel).GetModelStatus

    def versions(name: str) -> dict[int, int]:
      request = get_model_status_pb2.GetModelStatusRequest()
      request.model_spec.name = name
      response = status_of(request, timeout=10)
      return {s.version: s.state for s in response.model_version_status}

    def half(name: str) -> float:
      request = predict_pb2.PredictRequest()
      request.model_spec.name = name
      request.inputs["x"].CopyFrom(tensor_codec.ndarray_to_tensor_proto(
          np.array([[4.0]], dtype=np.float32)))
      return predict(request, timeout=10).outputs["y"].float_val[0]

    available = get_model_status_pb2.ModelVersionStatus.AVAILABLE
    self.assertEqual(versions("a"), {1: available, 2: available})
    self.assertEqual(versions("b"), {1: available})
    self.assertEqual(half("a"), 4.0)
    self.assertEqual(half("b"), 4.0)

    # Drop "b", keep "a": the poller reloads, "b" is unloaded.
    with open(config_path, "w") as f:
      f.write(_config_text({"a": base_a}))
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
      if versions("b").get(1) == get_model_status_pb2.ModelVersionStatus.END:
        break
      time.sleep(0.2)
    self.assertEqual(versions("b"), {1: get_model_status_pb2.ModelVersionStatus.END})
    with self.assertRaises(grpc.RpcError) as cm:
      half("b")
    self.assertEqual(cm.exception.code(), grpc.StatusCode.NOT_FOUND)
    self.assertEqual(half("a"), 4.0)


class ServerGrpcOptionsTest(absltest.TestCase):
  """--grpc_socket_path, health checks, channel arguments, message sizes."""

  @classmethod
  def setUpClass(cls):
    super().setUpClass()
    cls.base = half_plus_two.write_versions(
        half_plus_two.fresh_dir("grpc_options"), half_plus_two.write_tf1)
    # Short: a socket path has at most 107 characters, and the test's own
    # temporary directory is deeper than that.
    cls.socket_path = os.path.join(tempfile.mkdtemp(dir="/tmp"), "grpc.sock")
    with open(cls.socket_path, "w") as f:
      f.write("a stale socket file from an earlier run")
    cls.server = server_lib.Server()
    cls.server.build_and_start(
        Options(port=_free_port(), model_name="half", model_base_path=cls.base,
                grpc_socket_path=cls.socket_path,
                enable_grpc_healthcheck_service=True,
                grpc_channel_arguments=(
                    "grpc.max_connection_idle_ms=60000,"
                    "grpc.primary_user_agent=tf-serving-test")))
    cls.address = f"localhost:{cls.server.grpc_port}"

  @classmethod
  def tearDownClass(cls):
    cls.server.stop()
    super().tearDownClass()

  def predict(self, target: str, x: np.ndarray) -> np.ndarray:
    request = predict_pb2.PredictRequest()
    request.model_spec.name = "half"
    request.inputs["x"].CopyFrom(tensor_codec.ndarray_to_tensor_proto(x))
    # The client's own 4 MB receive limit is lifted for the big reply.
    with grpc.insecure_channel(
        target, options=[("grpc.max_receive_message_length", -1)]) as channel:
      stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
      response = stub.Predict(request, timeout=60)
    return tensor_codec.tensor_proto_to_ndarray(response.outputs["y"])

  def test_unix_socket_replaces_stale_file(self):
    y = self.predict(f"unix:{self.socket_path}",
                     np.array([[2.0]], dtype=np.float32))
    self.assertEqual(y.tolist(), [[3.0]])

  def test_messages_over_4mb_are_accepted(self):
    # 8 MB each way: above gRPC's 4 MB default, below upstream's 2 GiB.
    x = np.ones((2 * 1024 * 1024, 1), dtype=np.float32)
    y = self.predict(self.address, x)
    self.assertEqual(y.shape, x.shape)
    self.assertTrue(np.all(y == 2.5))

  def test_health_service(self):
    from grpc_health.v1 import health_pb2  # pylint: disable=g-import-not-at-top
    from grpc_health.v1 import health_pb2_grpc  # pylint: disable=g-import-not-at-top
    with grpc.insecure_channel(self.address) as channel:
      stub = health_pb2_grpc.HealthStub(channel)
      for service in ("", "ModelService", "PredictionService",
                      "tensorflow.serving.PredictionService",
                      "inference.GRPCInferenceService"):
        response = stub.Check(health_pb2.HealthCheckRequest(service=service),
                              timeout=10)
        self.assertEqual(response.status,
                         health_pb2.HealthCheckResponse.SERVING, service)
      with self.assertRaises(grpc.RpcError) as cm:
        stub.Check(health_pb2.HealthCheckRequest(service="Nope"), timeout=10)
      self.assertEqual(cm.exception.code(), grpc.StatusCode.NOT_FOUND)

  def test_health_service_is_on_by_default_and_can_be_turned_off(self):
    # Unlike upstream (off by default): Kubernetes gRPC probes need it.
    self.assertTrue(Options().enable_grpc_healthcheck_service)
    from grpc_health.v1 import health_pb2  # pylint: disable=g-import-not-at-top
    from grpc_health.v1 import health_pb2_grpc  # pylint: disable=g-import-not-at-top
    server = server_lib.Server()
    server.build_and_start(
        Options(port=_free_port(), model_name="half", model_base_path=self.base,
                enable_grpc_healthcheck_service=False))
    self.addCleanup(server.stop)
    with grpc.insecure_channel(f"localhost:{server.grpc_port}") as channel:
      with self.assertRaises(grpc.RpcError) as cm:
        health_pb2_grpc.HealthStub(channel).Check(
            health_pb2.HealthCheckRequest(), timeout=10)
      self.assertEqual(cm.exception.code(), grpc.StatusCode.UNIMPLEMENTED)

  def test_channel_arguments_reach_grpc(self):
    # A receive limit passed as an int takes effect: gRPC ignores the
    # argument if it arrives as a string.
    server = server_lib.Server()
    server.build_and_start(
        Options(port=_free_port(), model_name="half", model_base_path=self.base,
                grpc_channel_arguments="grpc.max_receive_message_length=1000"))
    self.addCleanup(server.stop)
    target = f"localhost:{server.grpc_port}"
    self.assertEqual(
        self.predict(target, np.array([[2.0]], np.float32)).tolist(), [[3.0]])
    with self.assertRaises(grpc.RpcError) as cm:
      self.predict(target, np.ones((1000, 1), dtype=np.float32))
    self.assertEqual(cm.exception.code(), grpc.StatusCode.RESOURCE_EXHAUSTED)

  def test_channel_argument_values(self):
    self.assertEqual(
        server_lib.parse_grpc_channel_arguments(
            "a=1,b=-2,c=x,d=4294967296,e=1.5"),
        [("a", 1), ("b", -2), ("c", "x"), ("d", "4294967296"), ("e", "1.5")])


if __name__ == "__main__":
  absltest.main()
