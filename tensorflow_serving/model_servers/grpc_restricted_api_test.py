"""End to end: --restricted_api on the gRPC port (a real Server and channel).

model_management and inference are guarded by different keys; metadata and
health are open. Each service the server registers is called with and
without its metadata: a guarded RPC without it is PERMISSION_DENIED (and
counted) before any work, with it served as usual; an open one needs
nothing; a bad flag is a startup error.
"""

import os

from absl.testing import absltest
import grpc
from grpc_health.v1 import health_pb2
from grpc_health.v1 import health_pb2_grpc
import numpy as np

from tensorflow_serving.apis import get_model_status_pb2
from tensorflow_serving.apis import model_management_pb2
from tensorflow_serving.apis import model_service_pb2_grpc
from tensorflow_serving.apis import predict_pb2
from tensorflow_serving.apis import prediction_service_pb2_grpc
from tensorflow_serving.model_servers import restricted_api
from tensorflow_serving.model_servers import server as server_lib
from tensorflow_serving.model_servers.test_util import model_server_process
from tensorflow_serving.servables.tensorflow.test_util import half_plus_two
from tensorflow_serving.util import metrics
from tensorflow_serving.util import tensor_codec

_ADMIN = (("x-admin-key", "s3cret"),)
_USER = (("x-api-key", "k1"),)


def _predict_request() -> predict_pb2.PredictRequest:
  request = predict_pb2.PredictRequest()
  request.model_spec.name = "half"
  request.inputs["x"].CopyFrom(tensor_codec.ndarray_to_tensor_proto(
      np.array([[1.0]], np.float32)))
  return request


def _served(model_name: str) -> int:
  """Requests to `model_name` answered OK, over every version and signature."""
  return sum(cell.value() for labels, cell in metrics.REQUEST_COUNT.cells()
             if labels[:2] == (model_name, "OK"))


class GrpcRestrictedApiTest(absltest.TestCase):

  @classmethod
  def setUpClass(cls):
    super().setUpClass()
    base = half_plus_two.fresh_dir("restricted")
    half_plus_two.write_tf1(os.path.join(base, "1"))
    cls.base = base
    cls.server = server_lib.Server()
    cls.server.build_and_start(server_lib.ServerOptions(
        port=model_server_process.free_port(), model_name="half",
        model_base_path=base, enable_grpc_healthcheck_service=True,
        restricted_api=("model_management:x-admin-key=s3cret;"
                        "inference:X-Api-Key=k1")))
    cls.channel = grpc.insecure_channel(f"localhost:{cls.server.grpc_port}")
    cls.predict = prediction_service_pb2_grpc.PredictionServiceStub(
        cls.channel)
    cls.models = model_service_pb2_grpc.ModelServiceStub(cls.channel)

  @classmethod
  def tearDownClass(cls):
    cls.channel.close()
    cls.server.stop()
    super().tearDownClass()

  def assert_denied(self, call, group: str, key: str):
    cell = restricted_api.DENIED_COUNT.get_cell(group, metrics.GRPC)
    before = cell.value()
    with self.assertRaises(grpc.RpcError) as ctx:
      call()
    self.assertEqual(ctx.exception.code(), grpc.StatusCode.PERMISSION_DENIED)
    self.assertEqual(
        ctx.exception.details(),
        f"The {group} API is restricted: the request must carry the header "
        f"'{key}' with the value configured by --restricted_api")
    self.assertEqual(cell.value(), before + 1)

  def reload_request(self):
    request = model_management_pb2.ReloadConfigRequest()
    config = request.config.model_config_list.config.add()
    config.name = "half"
    config.base_path = self.base
    config.model_platform = "tensorflow"
    return request

  def test_inference_needs_its_key(self):
    before = _served("half")
    self.assert_denied(
        lambda: self.predict.Predict(_predict_request(), timeout=30),
        "inference", "x-api-key")
    self.assert_denied(
        lambda: self.predict.Predict(_predict_request(), timeout=30,
                                     metadata=_ADMIN),
        "inference", "x-api-key")
    self.assertEqual(_served("half"), before)  # Nothing ran.
    response = self.predict.Predict(_predict_request(), timeout=30,
                                    metadata=_USER)
    self.assertEqual(list(response.outputs["y"].float_val), [2.5])

  def test_model_management_needs_its_key(self):
    self.assert_denied(
        lambda: self.models.HandleReloadConfigRequest(self.reload_request(),
                                                      timeout=60),
        "model_management", "x-admin-key")
    self.assert_denied(
        lambda: self.models.HandleReloadConfigRequest(
            self.reload_request(), timeout=60,
            metadata=(("x-admin-key", "S3CRET"),)),
        "model_management", "x-admin-key")
    response = self.models.HandleReloadConfigRequest(
        self.reload_request(), timeout=60, metadata=_ADMIN)
    self.assertEqual(response.status.error_code, 0)

  def test_metadata_and_health_are_open(self):
    request = get_model_status_pb2.GetModelStatusRequest()
    request.model_spec.name = "half"
    self.assertLen(
        self.models.GetModelStatus(request, timeout=30).model_version_status,
        1)
    health = health_pb2_grpc.HealthStub(self.channel).Check(
        health_pb2.HealthCheckRequest(service=""), timeout=30)
    self.assertEqual(health.status, health_pb2.HealthCheckResponse.SERVING)

  def test_unknown_methods_are_still_unimplemented(self):
    with self.assertRaises(grpc.RpcError) as ctx:
      self.channel.unary_unary("/no.Such/Method")(b"", timeout=30)
    self.assertEqual(ctx.exception.code(), grpc.StatusCode.UNIMPLEMENTED)


class BadFlagTest(absltest.TestCase):

  def test_bad_flag_is_a_startup_error(self):
    with self.assertRaises(server_lib.StartupError) as ctx:
      server_lib.Server().build_and_start(server_lib.ServerOptions(
          model_base_path="/x", restricted_api="admin:k=v"))
    self.assertStartsWith(str(ctx.exception),
                          "Invalid --restricted_api: unknown API group "
                          "'admin'")


if __name__ == "__main__":
  absltest.main()
