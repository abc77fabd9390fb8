"""Clients that keep calling a running model server, for end-to-end tests.

The fault tests (a corrupt version, kill -9, storage outages on disk and on
object stores) all ask one question: while something goes wrong underneath,
does a client calling Predict back to back ever see a failure, and which
versions answered it? PredictLoop is that client; wait_for polls for the
moment a test moves on, and model_version_statuses reads GetModelStatus.
They speak to the server over real gRPC sockets, with the half_plus_two
model (servables/tensorflow/test_util/half_plus_two): y = 0.5 x + 2.
"""

import threading
import time
from typing import Callable, TypeVar

import grpc
import numpy as np

from tensorflow_serving.apis import get_model_status_pb2
from tensorflow_serving.apis import model_service_pb2_grpc
from tensorflow_serving.apis import predict_pb2
from tensorflow_serving.apis import prediction_service_pb2_grpc
from tensorflow_serving.util import tensor_codec

# Upper bound of any wait; only reached if something is broken.
WAIT_SECONDS = 120.0

_T = TypeVar("_T")


def wait_for(what: str, predicate: Callable[[], _T],
             timeout: float = WAIT_SECONDS, interval: float = 0.1) -> _T:
  """Polls `predicate` until it returns something true, and returns that.

  Raises:
    AssertionError: naming `what`, after `timeout` seconds.
  """
  deadline = time.monotonic() + timeout
  while time.monotonic() < deadline:
    value = predicate()
    if value:
      return value
    time.sleep(interval)
  raise AssertionError(f"timed out after {timeout:g} s waiting for {what}")


def half_plus_two_request(model: str = "half",
                          x: float = 1.0) -> predict_pb2.PredictRequest:
  """A Predict of half_plus_two's default signature on [[x]]."""
  request = predict_pb2.PredictRequest()
  request.model_spec.name = model
  request.inputs["x"].CopyFrom(
      tensor_codec.ndarray_to_tensor_proto(np.array([[x]], dtype=np.float32)))
  return request


def model_version_statuses(
    address: str, model: str = "half"
) -> dict[int, get_model_status_pb2.ModelVersionStatus]:
  """GetModelStatus of `model` at `address`, by version."""
  request = get_model_status_pb2.GetModelStatusRequest()
  request.model_spec.name = model
  with grpc.insecure_channel(address) as channel:
    response = model_service_pb2_grpc.ModelServiceStub(
        channel).GetModelStatus(request, timeout=30)
  return {s.version: s for s in response.model_version_status}


class PredictLoop(threading.Thread):
  """Calls Predict(x=1) back to back; records each answer's version or failure.

  An answer other than y = 2.5 counts as a failure. Start it, let the test
  do its damage, then stop() it and check snapshot().
  """

  def __init__(self, address: str, model: str = "half",
               pause_seconds: float = 0.01) -> None:
    super().__init__(daemon=True)
    self._address = address
    self._model = model
    self._pause_seconds = pause_seconds
    self._stop_event = threading.Event()
    self._mu = threading.Lock()
    self._versions: list[int] = []  # guarded by self._mu
    self._failures: list[str] = []  # guarded by self._mu

  def run(self) -> None:
    request = half_plus_two_request(self._model)
    with grpc.insecure_channel(self._address) as channel:
      stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
      while not self._stop_event.is_set():
        try:
          response = stub.Predict(request, timeout=30)
          y = list(response.outputs["y"].float_val)
          with self._mu:
            if y != [2.5]:
              self._failures.append(f"wrong answer {y}")
            self._versions.append(response.model_spec.version.value)
        except grpc.RpcError as e:
          with self._mu:
            self._failures.append(f"{e.code().name}: {e.details()}")
        time.sleep(self._pause_seconds)

  def snapshot(self) -> tuple[list[int], list[str]]:
    """(versions that answered, in order; failures so far)."""
    with self._mu:
      return list(self._versions), list(self._failures)

  def wait_for_answers(self, count: int,
                       timeout: float = WAIT_SECONDS) -> None:
    """Waits until `count` more answers than now (failures not counted)."""
    target = len(self.snapshot()[0]) + count
    wait_for(f"{count} answers", lambda: len(self.snapshot()[0]) >= target,
             timeout)

  def wait_for_version(self, version: int,
                       timeout: float = WAIT_SECONDS) -> None:
    """Waits until `version` has answered at least once."""
    wait_for(f"version {version} to serve",
             lambda: version in self.snapshot()[0], timeout)

  def stop(self) -> None:
    self._stop_event.set()
    self.join(60)
