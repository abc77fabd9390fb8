"""End to end: SIGTERM/SIGINT under gRPC and REST load loses nothing
(issue 17, item 1).

The built tensorflow_model_server serves half_plus_two while 8 gRPC clients
(each on its own channel) and 8 REST clients (each a requests.Session, so
keep-alive connections are reused) send Predicts back to back and retry at
once (after 2 ms) whatever they get back: the hardest case. Once each side
has had _OK_BEFORE_SIGNAL answers the server is sent SIGTERM (SIGINT every
other round) and must exit 0. Every request any client sent must then have
ended in one of these, counted per outcome:

  * OK: the right answer (y = x / 2 + 2);
  * refused before any work was done for it:
      - gRPC: UNAVAILABLE (the drain's "The model server is shutting down",
        or the connection gone once the process exited);
      - REST: 503 with a JSON {"error": ...} body, or a NEW connection
        refused (ECONNREFUSED) once the port has closed.

Anything else is a failure: gRPC CANCELLED or any other code, a REST
connection reset or closed without an answer, another status, a body that
is not the answer. _ROUNDS rounds in a row (each a fresh server, the load
window short), and the failures of all rounds are counted: there must be
none.
"""

import collections
import os
import signal
import threading
import time

from absl.testing import absltest
import grpc
import numpy as np
import requests
import urllib3

from tensorflow_serving.apis import predict_pb2
from tensorflow_serving.apis import prediction_service_pb2_grpc
from tensorflow_serving.model_servers.test_util import model_server_process
from tensorflow_serving.servables.tensorflow.test_util import half_plus_two
from tensorflow_serving.util import tensor_codec

_CLIENTS = 8  # Of each kind.
_ROUNDS = int(os.environ.get("DRAIN_TEST_ROUNDS", "20"))
# Answers of each kind before the signal, so that it lands under load.
_OK_BEFORE_SIGNAL = 100


def _grpc_request() -> predict_pb2.PredictRequest:
  request = predict_pb2.PredictRequest()
  request.model_spec.name = "half"
  request.inputs["x"].CopyFrom(tensor_codec.ndarray_to_tensor_proto(
      np.array([[1.0]], np.float32)))
  return request


class _Outcomes:
  """Counts outcomes by name; keeps one example text of each."""

  def __init__(self) -> None:
    self.counts: collections.Counter = collections.Counter()
    self.examples: dict[str, str] = {}

  def add(self, name: str, example: str = "") -> None:
    self.counts[name] += 1
    self.examples.setdefault(name, example)


class _GrpcClient(threading.Thread):

  def __init__(self, port: int, done: threading.Event):
    super().__init__(daemon=True)
    self._address = f"localhost:{port}"
    self._done = done
    self.outcomes = _Outcomes()

  def run(self):
    request = _grpc_request()
    with grpc.insecure_channel(self._address) as channel:
      stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
      while not self._done.is_set():
        try:
          response = stub.Predict(request, timeout=30)
          if list(response.outputs["y"].float_val) == [2.5]:
            self.outcomes.add("OK")
          else:
            self.outcomes.add("failed: gRPC wrong answer", str(response))
        except grpc.RpcError as e:
          if e.code() == grpc.StatusCode.UNAVAILABLE:
            self.outcomes.add("refused: gRPC UNAVAILABLE", e.details())
          else:
            self.outcomes.add(f"failed: gRPC {e.code().name}", e.details())
          time.sleep(0.002)


def _refused_new_connection(error: requests.ConnectionError) -> bool:
  """Whether a requests error is a NEW connection refused (ECONNREFUSED)."""
  reason = error.args[0] if error.args else None
  if isinstance(reason, urllib3.exceptions.MaxRetryError):
    reason = reason.reason
  if not isinstance(reason, urllib3.exceptions.NewConnectionError):
    return False
  cause = reason.__cause__ or reason.__context__
  return isinstance(cause, ConnectionRefusedError)


class _RestClient(threading.Thread):

  def __init__(self, port: int, done: threading.Event):
    super().__init__(daemon=True)
    self._url = f"http://localhost:{port}/v1/models/half:predict"
    self._done = done
    self.outcomes = _Outcomes()

  def run(self):
    body = b'{"instances": [[1.0]]}'
    with requests.Session() as session:
      while not self._done.is_set():
        try:
          response = session.post(self._url, data=body, timeout=(10, 30))
        except requests.ConnectionError as e:
          if _refused_new_connection(e):
            self.outcomes.add("refused: REST connection refused", repr(e))
          else:
            self.outcomes.add("failed: REST connection error", repr(e))
          time.sleep(0.002)
          continue
        except requests.RequestException as e:
          self.outcomes.add("failed: REST " + type(e).__name__, repr(e))
          time.sleep(0.002)
          continue
        try:
          doc = response.json()
        except ValueError:
          doc = None
        if response.status_code == 200 and doc == {"predictions": [[2.5]]}:
          self.outcomes.add("OK")
          continue
        if (response.status_code == 503 and isinstance(doc, dict) and
            isinstance(doc.get("error"), str)):
          self.outcomes.add("refused: REST 503", doc["error"])
        else:
          self.outcomes.add(f"failed: REST HTTP {response.status_code}",
                            response.text[:200])
        time.sleep(0.002)


class DrainTest(absltest.TestCase):

  @classmethod
  def setUpClass(cls):
    super().setUpClass()
    cls.base = half_plus_two.fresh_dir("drain")
    half_plus_two.write_tf1(os.path.join(cls.base, "1"))

  def one_round(self, sig: int) -> _Outcomes:
    port = model_server_process.free_port()
    rest_port = model_server_process.free_port()
    server = model_server_process.ModelServerProcess([
        f"--port={port}", f"--rest_api_port={rest_port}", "--model_name=half",
        f"--model_base_path={self.base}"
    ])
    self.addCleanup(server.kill)
    server.start()
    done = threading.Event()
    grpc_clients = [_GrpcClient(port, done) for _ in range(_CLIENTS)]
    rest_clients = [_RestClient(rest_port, done) for _ in range(_CLIENTS)]
    clients = grpc_clients + rest_clients
    for client in clients:
      client.start()
    deadline = time.monotonic() + 60
    while (sum(c.outcomes.counts["OK"] for c in grpc_clients) <
           _OK_BEFORE_SIGNAL or
           sum(c.outcomes.counts["OK"] for c in rest_clients) <
           _OK_BEFORE_SIGNAL):
      self.assertLess(time.monotonic(), deadline, server.log()[-4000:])
      time.sleep(0.01)
    exit_code = server.stop(sig)
    # The ports are closed now: every client's next call is refused.
    time.sleep(0.3)
    done.set()
    for client in clients:
      client.join(60)
    self.assertEqual(exit_code, 0, server.log()[-4000:])
    outcomes = _Outcomes()
    for client in clients:
      outcomes.counts.update(client.outcomes.counts)
      for name, example in client.outcomes.examples.items():
        outcomes.examples.setdefault(name, example)
    return outcomes

  def test_sigterm_and_sigint_under_load_lose_nothing(self):
    total = collections.Counter()
    failures = []
    for round_ in range(1, _ROUNDS + 1):
      sig = signal.SIGTERM if round_ % 2 else signal.SIGINT
      outcomes = self.one_round(sig)
      total.update(outcomes.counts)
      bad = {name: n for name, n in outcomes.counts.items()
             if name.startswith("failed")}
      if bad:
        failures.append(
            f"round {round_} ({signal.Signals(sig).name}): {bad} "
            f"{[outcomes.examples[name] for name in bad]}")
      print(f"round {round_}: {dict(outcomes.counts)}", flush=True)
    print(f"{_ROUNDS} rounds: {dict(total)}")
    self.assertEmpty(failures, f"{len(failures)} of {_ROUNDS} rounds failed "
                     f"requests (all outcomes: {dict(total)})")
    # Both kinds of refusal before work were seen (the drain was exercised).
    self.assertGreater(total["refused: REST 503"], 0, dict(total))


if __name__ == "__main__":
  absltest.main()
