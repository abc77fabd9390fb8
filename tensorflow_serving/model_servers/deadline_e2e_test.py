"""End to end: a request's deadline stops its TensorFlow run (issue 17, 3).

The built tensorflow_model_server serves a model whose run spins for as
long as the request asks (servables/tensorflow/test_util/busy_model). A
Predict for a 60 s run with a 300 ms gRPC deadline, or over REST with
--rest_api_timeout_in_ms=300, must fail in about 300 ms (DEADLINE_EXCEEDED,
504), and the server's CPU use, read from /proc, must fall back to idle
within a second or two: the run was cancelled, not left to finish. With
--enable_batching too, where the run happens on the batching path.
"""

import json
import os
import time
import urllib.error
import urllib.request

from absl.testing import absltest
from absl.testing import parameterized
import grpc
import numpy as np

from tensorflow_serving.apis import predict_pb2
from tensorflow_serving.apis import prediction_service_pb2_grpc
from tensorflow_serving.model_servers.test_util import model_server_process
from tensorflow_serving.servables.tensorflow.test_util import busy_model
from tensorflow_serving.servables.tensorflow.test_util import half_plus_two
from tensorflow_serving.util import tensor_codec

_TICKS = os.sysconf("SC_CLK_TCK")
_LONG_RUN_SECONDS = 60.0
_DEADLINE_SECONDS = 0.3
# How long after the deadline the server's CPU must be back to idle, and
# the window over which that is measured.
_SETTLE_SECONDS = 1.5
_WINDOW_SECONDS = 2.0
# CPU seconds the server may use in that window: generous for an idle
# server on a busy machine; a run still going would use about one second
# per second.
_IDLE_CPU_SECONDS = 0.5


def _cpu_seconds(pid: int) -> float:
  """utime + stime of the process (all its threads), from /proc."""
  with open(f"/proc/{pid}/stat") as f:
    fields = f.read().rsplit(")", 1)[1].split()
  return (int(fields[11]) + int(fields[12])) / _TICKS


def _request(seconds: float) -> predict_pb2.PredictRequest:
  request = predict_pb2.PredictRequest()
  request.model_spec.name = "busy"
  request.inputs["seconds"].CopyFrom(tensor_codec.ndarray_to_tensor_proto(
      np.array([seconds], np.float64)))
  return request


class DeadlineE2ETest(parameterized.TestCase):

  @classmethod
  def setUpClass(cls):
    super().setUpClass()
    cls.base = half_plus_two.fresh_dir("deadline_e2e")
    busy_model.write(os.path.join(cls.base, "1"))

  def start(self, *flags: str):
    port = model_server_process.free_port()
    rest_port = model_server_process.free_port()
    server = model_server_process.ModelServerProcess([
        f"--port={port}", f"--rest_api_port={rest_port}",
        "--model_name=busy", f"--model_base_path={self.base}",
        f"--rest_api_timeout_in_ms={int(_DEADLINE_SECONDS * 1000)}", *flags
    ])
    self.addCleanup(server.kill)
    server.start()
    channel = grpc.insecure_channel(f"localhost:{port}")
    self.addCleanup(channel.close)
    return (server, prediction_service_pb2_grpc.PredictionServiceStub(channel),
            f"http://localhost:{rest_port}/v1/models/busy:predict")

  def assert_cpu_falls_back(self, server, deadline: float) -> None:
    """The server's CPU over a window starting _SETTLE_SECONDS after the
    deadline is that of an idle server."""
    time.sleep(max(0.0, deadline + _SETTLE_SECONDS - time.monotonic()))
    pid = server.process.pid
    before = _cpu_seconds(pid)
    time.sleep(_WINDOW_SECONDS)
    used = _cpu_seconds(pid) - before
    self.assertLess(used, _IDLE_CPU_SECONDS,
                    f"the server used {used:.2f} s of CPU in "
                    f"{_WINDOW_SECONDS:g} s after the deadline: the run "
                    "was not stopped")

  @parameterized.named_parameters(("unbatched", ()),
                                  ("batched", ("--enable_batching",)))
  def test_grpc_deadline_stops_the_run(self, flags):
    server, stub, _ = self.start(*flags)
    # A short run first: the model serves.
    response = stub.Predict(_request(0.01), timeout=30)
    self.assertGreater(
        tensor_codec.tensor_proto_to_ndarray(
            response.outputs["iterations"])[0], 0)
    start = time.monotonic()
    with self.assertRaises(grpc.RpcError) as ctx:
      stub.Predict(_request(_LONG_RUN_SECONDS), timeout=_DEADLINE_SECONDS)
    self.assertEqual(ctx.exception.code(), grpc.StatusCode.DEADLINE_EXCEEDED)
    self.assertLess(time.monotonic() - start, 5.0)
    self.assert_cpu_falls_back(server, start + _DEADLINE_SECONDS)
    # And the server still answers.
    stub.Predict(_request(0.01), timeout=30)

  def test_rest_timeout_stops_the_run(self):
    server, stub, url = self.start()
    body = json.dumps({"instances": [_LONG_RUN_SECONDS]}).encode()
    start = time.monotonic()
    with self.assertRaises(urllib.error.HTTPError) as ctx:
      urllib.request.urlopen(
          urllib.request.Request(url, data=body, method="POST"), timeout=30)
    self.assertEqual(ctx.exception.code, 504)
    self.assertLess(time.monotonic() - start, 5.0)
    self.assert_cpu_falls_back(server, start + _DEADLINE_SECONDS)
    stub.Predict(_request(0.01), timeout=30)


if __name__ == "__main__":
  absltest.main()
