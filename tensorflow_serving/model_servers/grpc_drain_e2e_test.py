"""End to end: SIGTERM/SIGINT under gRPC load loses nothing (issue 17, 1).

The built tensorflow_model_server serves half_plus_two while 8 clients, each
on its own channel, send Predicts back to back and keep sending whatever
they get back (a client that retries at once, here after 2 ms, is the
hardest case). Then the
server is sent SIGTERM (or SIGINT, every other round) and must exit 0, and
every request any client sent must have been answered OK or refused with
UNAVAILABLE (refused before any work started: the drain refuses new RPCs
with UNAVAILABLE, then waits for the ones it admitted, and the port closes
last); none may come back CANCELLED, reset or otherwise failed. Rounds are
repeated for about two minutes, and the failures of all rounds are counted:
there must be none.
"""

import collections
import os
import signal
import threading
import time

from absl.testing import absltest
import grpc
import numpy as np

from tensorflow_serving.apis import predict_pb2
from tensorflow_serving.apis import prediction_service_pb2_grpc
from tensorflow_serving.model_servers.test_util import model_server_process
from tensorflow_serving.servables.tensorflow.test_util import half_plus_two
from tensorflow_serving.util import tensor_codec

_CLIENTS = 8
# Rounds start while less than this much time has passed (each takes about
# 10 s on a quiet 2-core machine, mostly the server's start-up).
_TEST_SECONDS = float(os.environ.get("DRAIN_TEST_SECONDS", "110"))
_MIN_ROUNDS = 3
# Answers before the signal, so that the signal lands under load.
_OK_BEFORE_SIGNAL = 200


def _request() -> predict_pb2.PredictRequest:
  request = predict_pb2.PredictRequest()
  request.model_spec.name = "half"
  request.inputs["x"].CopyFrom(tensor_codec.ndarray_to_tensor_proto(
      np.array([[1.0]], np.float32)))
  return request


class _Client(threading.Thread):
  """Sends Predicts back to back until told to stop; counts the outcomes."""

  def __init__(self, address: str, done: threading.Event):
    super().__init__(daemon=True)
    self._address = address
    self._done = done
    self.codes: collections.Counter = collections.Counter()
    self.details: dict[str, str] = {}
    self.wrong_answers = 0

  def run(self):
    request = _request()
    with grpc.insecure_channel(self._address) as channel:
      stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
      while not self._done.is_set():
        try:
          response = stub.Predict(request, timeout=30)
          if list(response.outputs["y"].float_val) != [2.5]:
            self.wrong_answers += 1
          self.codes["OK"] += 1
        except grpc.RpcError as e:
          name = e.code().name
          self.codes[name] += 1
          self.details.setdefault(name, e.details())
          # Retry almost at once (without spinning while the port is shut).
          time.sleep(0.002)


class GrpcDrainTest(absltest.TestCase):

  @classmethod
  def setUpClass(cls):
    super().setUpClass()
    cls.base = half_plus_two.fresh_dir("grpc_drain")
    half_plus_two.write_tf1(os.path.join(cls.base, "1"))

  def one_round(self, sig: int) -> tuple[collections.Counter, dict[str, str]]:
    port = model_server_process.free_port()
    server = model_server_process.ModelServerProcess([
        f"--port={port}", "--model_name=half", f"--model_base_path={self.base}"
    ])
    self.addCleanup(server.kill)
    server.start()
    done = threading.Event()
    clients = [_Client(f"localhost:{port}", done) for _ in range(_CLIENTS)]
    for client in clients:
      client.start()
    deadline = time.monotonic() + 60
    while sum(c.codes["OK"] for c in clients) < _OK_BEFORE_SIGNAL:
      self.assertLess(time.monotonic(), deadline, server.log()[-4000:])
      time.sleep(0.01)
    exit_code = server.stop(sig)
    # The port is closed now: every client's next call is refused.
    time.sleep(0.2)
    done.set()
    for client in clients:
      client.join(60)
    self.assertEqual(exit_code, 0, server.log()[-4000:])
    codes = collections.Counter()
    details = {}
    for client in clients:
      codes.update(client.codes)
      details.update(client.details)
      self.assertEqual(client.wrong_answers, 0)
    return codes, details

  def test_sigterm_and_sigint_under_load_lose_nothing(self):
    start = time.monotonic()
    total = collections.Counter()
    failures = []
    rounds = 0
    while rounds < _MIN_ROUNDS or time.monotonic() - start < _TEST_SECONDS:
      sig = signal.SIGTERM if rounds % 2 == 0 else signal.SIGINT
      codes, details = self.one_round(sig)
      rounds += 1
      total.update(codes)
      bad = {code: n for code, n in codes.items()
             if code not in ("OK", "UNAVAILABLE")}
      if bad:
        failures.append(f"round {rounds} ({signal.Signals(sig).name}): "
                        f"{bad} {[details[c] for c in bad]}")
    print(f"{rounds} rounds: {dict(total)}")
    self.assertEmpty(failures, f"{len(failures)} of {rounds} rounds failed "
                     f"requests (all outcomes: {dict(total)})")


if __name__ == "__main__":
  absltest.main()
