"""End to end: --request_memory_budget_bytes on the gRPC port.

An in-process Server with an 8 MiB budget serves the busy model (its run
lasts as long as its largest input asks). A large Predict (3.2 MB: charged
about 9.6 MB, i.e. the whole budget) holds the budget for a second; a second
large one meanwhile waits briefly and is refused with RESOURCE_EXHAUSTED
without being parsed, while a small one is served at once; once the first
is answered the budget is empty again and a large request is served.
"""

import os
import time

from absl.testing import absltest
import grpc
import numpy as np

from tensorflow_serving.apis import predict_pb2
from tensorflow_serving.apis import prediction_service_pb2_grpc
from tensorflow_serving.model_servers import server as server_lib
from tensorflow_serving.model_servers.test_util import model_server_process
from tensorflow_serving.servables.tensorflow.test_util import busy_model
from tensorflow_serving.servables.tensorflow.test_util import half_plus_two
from tensorflow_serving.util import memory_budget
from tensorflow_serving.util import metrics
from tensorflow_serving.util import tensor_codec

_BUDGET = 8 << 20
_LARGE_ROWS = 400_000  # float64: 3.2 MB on the wire


def _request(seconds: float, rows: int = 1) -> predict_pb2.PredictRequest:
  values = np.zeros(rows, np.float64)
  values[0] = seconds
  request = predict_pb2.PredictRequest()
  request.model_spec.name = "busy"
  request.inputs["seconds"].CopyFrom(tensor_codec.ndarray_to_tensor_proto(
      values))
  return request


def _served(model_name: str) -> int:
  """Requests to `model_name` answered OK, over every version and signature."""
  return sum(cell.value() for labels, cell in metrics.REQUEST_COUNT.cells()
             if labels[:2] == (model_name, "OK"))


class GrpcMemoryBudgetTest(absltest.TestCase):

  @classmethod
  def setUpClass(cls):
    super().setUpClass()
    base = half_plus_two.fresh_dir("budget")
    busy_model.write(os.path.join(base, "1"))
    cls.server = server_lib.Server()
    cls.server.build_and_start(server_lib.ServerOptions(
        port=model_server_process.free_port(), model_name="busy",
        model_base_path=base, request_memory_budget_bytes=_BUDGET))
    cls.channel = grpc.insecure_channel(f"localhost:{cls.server.grpc_port}")
    cls.stub = prediction_service_pb2_grpc.PredictionServiceStub(cls.channel)

  @classmethod
  def tearDownClass(cls):
    cls.channel.close()
    cls.server.stop()
    super().tearDownClass()

  def test_a_full_budget_refuses_large_requests_and_serves_small_ones(self):
    budget = self.server.memory_budget
    self.assertEqual(budget.capacity, _BUDGET)
    refused = memory_budget.REFUSED_COUNT.get_cell(metrics.GRPC)
    refused_before = refused.value()
    served_before = _served("busy")

    holder = self.stub.Predict.future(_request(1.5, _LARGE_ROWS), timeout=60)
    deadline = time.monotonic() + 30
    while budget.in_use < _BUDGET:
      self.assertLess(time.monotonic(), deadline)
      time.sleep(0.01)
    with self.assertRaises(grpc.RpcError) as ctx:
      self.stub.Predict(_request(0.0, _LARGE_ROWS), timeout=30)
    self.assertEqual(ctx.exception.code(), grpc.StatusCode.RESOURCE_EXHAUSTED)
    self.assertStartsWith(
        ctx.exception.details(),
        "The server is short of memory for decoding requests: "
        f"{_BUDGET} of the {_BUDGET} bytes of --request_memory_budget_bytes "
        "are in use by other requests")
    self.assertEqual(refused.value(), refused_before + 1)
    # A small request needs no room in the budget.
    self.stub.Predict(_request(0.0), timeout=30)
    self.assertGreater(holder.result().outputs["iterations"].int64_val[0], 0)
    # Answered: its bytes are back.
    self.wait_until_empty(budget)
    self.stub.Predict(_request(0.0, _LARGE_ROWS), timeout=30)
    self.assertEqual(_served("busy"), served_before + 3)
    # Given back once gRPC reports the call over (just after the answer).
    self.wait_until_empty(budget)

  def wait_until_empty(self, budget):
    deadline = time.monotonic() + 30
    while budget.in_use:
      self.assertLess(time.monotonic(), deadline)
      time.sleep(0.01)


if __name__ == "__main__":
  absltest.main()
