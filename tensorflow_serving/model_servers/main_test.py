"""Tests of the tensorflow_model_server command line, on the built binary.

What upstream's main does with its arguments: --version prints two lines and
exits 0, --help lists every flag and exits -1 (255), an unknown argument is
reported but the server still starts, a bad option gives "Failed to start
server. Error: ..." and 255, and flags for features this server lacks are
accepted with one log line each. Not in upstream: --log_format=json makes
every line written through Python logging a JSON object.
"""

import json
import multiprocessing
import os
import platform
import re
from unittest import mock

from absl.testing import absltest
import grpc
import numpy as np

from tensorflow_serving.apis import predict_pb2
from tensorflow_serving.apis import prediction_service_pb2_grpc
from tensorflow_serving.model_servers import main
from tensorflow_serving.model_servers import server as server_lib
from tensorflow_serving.model_servers.test_util import model_server_process
from tensorflow_serving.servables.tensorflow.test_util import half_plus_two
from tensorflow_serving.util import tensor_codec


def _predict_half(address: str) -> list[float]:
  request = predict_pb2.PredictRequest()
  request.model_spec.name = "half"
  request.inputs["x"].CopyFrom(
      tensor_codec.ndarray_to_tensor_proto(
          np.array([[1.0], [4.0]], dtype=np.float32)))
  with grpc.insecure_channel(address) as channel:
    stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
    return list(stub.Predict(request, timeout=30).outputs["y"].float_val)


class MainTest(absltest.TestCase):

  @classmethod
  def setUpClass(cls):
    super().setUpClass()
    cls.base = half_plus_two.write_versions(
        half_plus_two.fresh_dir("main_test"), half_plus_two.write_tf1)

  def test_version_prints_two_lines_and_exits_0(self):
    result = model_server_process.run(["--version"])
    self.assertEqual(result.returncode, 0, result.stderr[-3000:])
    lines = result.stdout.splitlines()
    self.assertLen(lines, 2)
    self.assertRegex(lines[0], r"^TensorFlow ModelServer: \S+$")
    self.assertRegex(lines[1], r"^TensorFlow Library: \d+\.\d+")

  def test_onednn_kernels_off_unless_the_environment_says(self):
    # TensorFlow announces its oneDNN kernels when it loads (on x86).
    announcement = "oneDNN custom operations are on"
    with mock.patch.dict(os.environ):
      os.environ.pop("TF_ENABLE_ONEDNN_OPTS", None)
      result = model_server_process.run(["--version"])
      self.assertEqual(result.returncode, 0, result.stderr[-3000:])
      self.assertNotIn(announcement, result.stderr)
      os.environ["TF_ENABLE_ONEDNN_OPTS"] = "1"
      result = model_server_process.run(["--version"])
      self.assertEqual(result.returncode, 0, result.stderr[-3000:])
      if platform.machine() in ("x86_64", "AMD64"):
        self.assertIn(announcement, result.stderr)

  def test_help_lists_every_flag(self):
    result = model_server_process.run(["--help"])
    self.assertEqual(result.returncode, 255)
    listed = set(re.findall(r"--(?:\[no\])?(\w+):", result.stdout))
    expected = set(server_lib.Server.Options.flag_names()) | {"version"}
    # Upstream's 48, plus --model_cache_dir, --version_ready_marker,
    # --storage_timeout_seconds, --storage_download_threads, --restricted_api,
    # --request_memory_budget_bytes, --log_format, --rest_api_max_body_bytes
    # and --rest_api_ssl_config_file.
    self.assertLen(expected, 48 + 9)
    self.assertEmpty(expected - listed)

  def test_flag_defaults_are_server_options(self):
    # ServerOptions() in a test is the binary's configuration.
    defaults = server_lib.ServerOptions()
    for name in server_lib.ServerOptions.flag_names():
      self.assertEqual(main.FLAGS[name].default, getattr(defaults, name), name)
    cpus = multiprocessing.cpu_count()
    self.assertEqual(defaults.rest_api_num_threads, 4 * cpus)
    self.assertEqual(defaults.grpc_max_threads, 2 * cpus)
    self.assertEqual(defaults.max_num_load_retries, 5)
    self.assertEqual(defaults.load_retry_interval_micros, 60_000_000)

  def test_bad_option_fails_to_start(self):
    result = model_server_process.run(
        ["--port=0", f"--model_base_path={self.base}"])
    self.assertEqual(result.returncode, 255)
    self.assertIn(
        "Failed to start server. Error: At least one of "
        "server_options.grpc_port or server_options.grpc_socket_path must be "
        "set.", result.stdout)
    result = model_server_process.run(["--port=1"])
    self.assertEqual(result.returncode, 255)
    self.assertIn(
        "Failed to start server. Error: Both server_options.model_base_path "
        "and server_options.model_config_file are empty!", result.stdout)

  def test_flag_needs_equals_syntax_value(self):
    result = model_server_process.run(["--port=notanumber"])
    self.assertEqual(result.returncode, 255)

  def test_unknown_argument_is_reported_and_server_starts(self):
    port = model_server_process.free_port()
    server = model_server_process.ModelServerProcess([
        f"--port={port}", "--model_name=half",
        f"--model_base_path={self.base}", "--no_such_flag=1", "stray",
        "--xla_cpu_compilation_enabled=true", "--mixed_precision=bfloat16",
        "--per_process_gpu_memory_fraction=0.5",
    ])
    self.addCleanup(server.kill)
    server.start()
    self.assertEqual(_predict_half(f"localhost:{port}"), [2.5, 4.0])
    self.assertEqual(server.stop(), 0)
    log = server.log()
    self.assertIn("unknown argument: --no_such_flag=1", log)
    self.assertIn("unknown argument: stray", log)
    for flag in ("xla_cpu_compilation_enabled", "mixed_precision",
                 "per_process_gpu_memory_fraction"):
      lines = [l for l in log.splitlines()
               if f"--{flag}" in l and "ignored" in l]
      self.assertLen(lines, 1, f"--{flag}:\n{log[-4000:]}")

  def test_log_format_json(self):
    port = model_server_process.free_port()
    server = model_server_process.ModelServerProcess([
        f"--port={port}", "--model_name=half",
        f"--model_base_path={self.base}", "--log_format=json",
        # An ERROR record: REST is skipped, gRPC serves.
        f"--rest_api_port={port}",
        # A WARNING record.
        "--mixed_precision=bfloat16",
    ], env={"TF_CPP_MIN_LOG_LEVEL": "0"})
    self.addCleanup(server.kill)
    server.start()
    self.assertEqual(_predict_half(f"localhost:{port}"), [2.5, 4.0])
    self.assertEqual(server.stop(), 0)
    records, others = [], []
    for line in server.log().splitlines():
      try:
        records.append(json.loads(line))
      except ValueError:
        others.append(line)
    # What is not JSON is TensorFlow's C++ runtime writing to stderr itself
    # (abseil's "I0000 00:00:..." or TensorFlow's "2026-01-02 ... I ..."
    # lines, their continuation, and abseil's note about them).
    cpp_line = re.compile(
        r"^([IWEF]\d{4} |\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d+: [IWEF] |"
        r"To enable the following instructions|"
        r"WARNING: All log messages before absl::InitializeLog)")
    self.assertEqual([l for l in others if not cpp_line.match(l)], [],
                     server.log()[-4000:])
    for record in records:
      self.assertIsInstance(record, dict)
      for field in ("time", "level", "logger", "message", "file"):
        self.assertIn(field, record)
      self.assertRegex(record["file"], r"^\S+\.py:\d+$")
    messages = {r["level"]: r for r in reversed(records)}
    self.assertIn("cannot be the same as --port", messages["ERROR"]["message"])
    self.assertIn("--mixed_precision", messages["WARNING"]["message"])
    self.assertTrue(any(r["message"].startswith("Running gRPC ModelServer at")
                        for r in records))
    self.assertEqual(records[-1]["message"], "Server stopped.")

  def test_log_format_text_is_the_default(self):
    result = model_server_process.run(["--log_format=xml"])
    self.assertEqual(result.returncode, 255)
    self.assertIn("log_format", result.stderr)
    self.assertEqual(server_lib.ServerOptions().log_format, "text")


if __name__ == "__main__":
  absltest.main()
