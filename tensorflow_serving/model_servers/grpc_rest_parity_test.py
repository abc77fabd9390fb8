"""gRPC and REST answer the same failure with the same code and text.

Both front ends serve one DataPlane over a real ServerCore (a hashmap model,
a half_plus_two SavedModel and a servable that raises) on real sockets; each
failure is sent over both, and the gRPC status must be the one whose HTTP
status (http_server.to_http_status) the REST reply has, with the same
message.
"""

import concurrent.futures
import http.client
import json
import os

import grpc
import numpy as np
from absl.testing import absltest
from absl.testing import parameterized

from tensorflow_serving.apis import predict_pb2
from tensorflow_serving.apis import prediction_service_pb2_grpc
from tensorflow_serving.model_servers import data_plane
from tensorflow_serving.model_servers import http_server
from tensorflow_serving.model_servers import prediction_service_impl
from tensorflow_serving.model_servers import server_core as server_core_lib
from tensorflow_serving.model_servers.test_util import faulty_servable
from tensorflow_serving.model_servers.test_util import server_core_test_util
from tensorflow_serving.servables.hashmap import hashmap_source_adapter
from tensorflow_serving.servables.hashmap.test_util import hashmap_test_util
from tensorflow_serving.servables.tensorflow import saved_model_bundle_source_adapter
from tensorflow_serving.servables.tensorflow.test_util import half_plus_two
from tensorflow_serving.servables.tensorflow.test_util import requests
from tensorflow_serving.util import status
from tensorflow_serving.util import tensor_codec

_GRPC_TO_CODE = {c.name: c for c in status.Code}

# (case, model, code, message): the failures both protocols must agree on.
_FAILURES = (
    ("unknown_model", "nope", status.Code.NOT_FOUND,
     "Servable not found for request: Latest(nope)"),
    ("wrong_servable_kind", "table", status.Code.UNIMPLEMENTED,
     "Servable table does not support this API"),
    ("exception_inside_the_servable", "faulty", status.CATCH_ALL_CODE,
     faulty_servable.ERROR_TEXT),
)


class GrpcRestParityTest(parameterized.TestCase):

  @classmethod
  def setUpClass(cls):
    super().setUpClass()
    base = half_plus_two.fresh_dir("grpc_rest_parity_test")
    hashmap_test_util.write_version(os.path.join(base, "table"), 1, {"a": "1"})
    hashmap_test_util.write_version(os.path.join(base, "faulty"), 1, {})
    half = half_plus_two.write_versions(os.path.join(base, "half"),
                                        half_plus_two.write_tf1)
    config = server_core_test_util.model_config(
        {"table": os.path.join(base, "table")})
    config.model_config_list.config.add(
        name="faulty", base_path=os.path.join(base, "faulty"),
        model_platform=faulty_servable.FAULTY_PLATFORM)
    config.model_config_list.config.add(
        name="half", base_path=half,
        model_platform=server_core_lib.TENSORFLOW_MODEL_PLATFORM)
    cls.core = server_core_lib.ServerCore.create(server_core_test_util.options(
        config, platform_source_adapters={
            server_core_test_util.HASHMAP_PLATFORM:
                hashmap_source_adapter.HashmapSourceAdapter,
            faulty_servable.FAULTY_PLATFORM:
                faulty_servable.FaultySourceAdapter,
            server_core_lib.TENSORFLOW_MODEL_PLATFORM:
                saved_model_bundle_source_adapter.SavedModelBundleSourceAdapter,
        }))
    plane = data_plane.DataPlane(cls.core)
    cls.grpc_server = grpc.server(
        concurrent.futures.ThreadPoolExecutor(max_workers=4))
    prediction_service_pb2_grpc.add_PredictionServiceServicer_to_server(
        prediction_service_impl.PredictionServiceImpl(plane), cls.grpc_server)
    grpc_port = cls.grpc_server.add_insecure_port("localhost:0")
    cls.grpc_server.start()
    cls.channel = grpc.insecure_channel(f"localhost:{grpc_port}")
    cls.stub = prediction_service_pb2_grpc.PredictionServiceStub(cls.channel)
    cls.rest_server = http_server.HttpRestServer(
        plane, http_server.HttpRestServer.Options(num_threads=2,
                                                  host="127.0.0.1"))
    cls.rest_port = cls.rest_server.start(0)

  @classmethod
  def tearDownClass(cls):
    cls.channel.close()
    cls.grpc_server.stop(None)
    cls.rest_server.stop()
    cls.core.stop()
    super().tearDownClass()

  def grpc_error(self, method: str, request) -> tuple[status.Code, str]:
    with self.assertRaises(grpc.RpcError) as cm:
      getattr(self.stub, method)(request, timeout=30)
    return _GRPC_TO_CODE[cm.exception.code().name], cm.exception.details()

  def rest_error(self, path: str, body: dict) -> tuple[int, str]:
    conn = http.client.HTTPConnection("127.0.0.1", self.rest_port, timeout=30)
    try:
      conn.request("POST", path, body=json.dumps(body))
      response = conn.getresponse()
      return response.status, json.loads(response.read())["error"]
    finally:
      conn.close()

  def assert_same_failure(self, grpc_method: str, grpc_request, rest_verb: str,
                          rest_body: dict, code: status.Code, message: str):
    model = grpc_request.model_spec.name
    grpc_code, grpc_message = self.grpc_error(grpc_method, grpc_request)
    http_code, rest_message = self.rest_error(
        f"/v1/models/{model}:{rest_verb}", rest_body)
    self.assertEqual((grpc_code, grpc_message), (code, message))
    self.assertEqual((http_code, rest_message),
                     (http_server.to_http_status(code), message))

  @parameterized.named_parameters(*_FAILURES)
  def test_predict(self, model, code, message):
    request = predict_pb2.PredictRequest()
    request.model_spec.name = model
    request.inputs["x"].CopyFrom(tensor_codec.ndarray_to_tensor_proto(
        np.array([[1.0]], np.float32)))
    self.assert_same_failure("Predict", request, "predict",
                             {"instances": [[1.0]]}, code, message)

  @parameterized.named_parameters(*_FAILURES)
  def test_classify(self, model, code, message):
    request = requests.classification_request("", 1.0, model=model)
    self.assert_same_failure("Classify", request, "classify",
                             {"examples": [{"x": 1.0}]}, code, message)


if __name__ == "__main__":
  absltest.main()
