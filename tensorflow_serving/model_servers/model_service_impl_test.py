"""ModelService over a real gRPC channel (127.0.0.1, port 0), hashmap models."""

import concurrent.futures
import os

from absl.testing import absltest
import grpc

from tensorflow_serving.apis import get_model_status_pb2
from tensorflow_serving.apis import model_management_pb2
from tensorflow_serving.apis import model_pb2
from tensorflow_serving.apis import model_service_pb2_grpc
from tensorflow_serving.core import manager
from tensorflow_serving.core import servable_state
from tensorflow_serving.model_servers import data_plane
from tensorflow_serving.model_servers import model_service_impl
from tensorflow_serving.model_servers import server_core as server_core_lib
from tensorflow_serving.model_servers.test_util import server_core_test_util as test_util
from tensorflow_serving.servables.hashmap.test_util import hashmap_test_util
from tensorflow_serving.util import metrics

State = get_model_status_pb2.ModelVersionStatus
WAIT = 10


class ModelServiceImplTest(absltest.TestCase):

  def setUp(self):
    super().setUp()
    self.root = self.create_tempdir().full_path
    hashmap_test_util.write_version(self.base("a"), 1, {"k": "v1"})
    hashmap_test_util.write_version(self.base("b"), 3, {"k": "v3"})
    self.core = server_core_lib.ServerCore.create(
        test_util.options(self.config(["a", "b"])))
    self.addCleanup(self.core.stop)
    self.server = grpc.server(concurrent.futures.ThreadPoolExecutor(4))
    model_service_pb2_grpc.add_ModelServiceServicer_to_server(
        model_service_impl.ModelServiceImpl(
            self.core, data_plane.DataPlane(self.core)), self.server)
    port = self.server.add_insecure_port("127.0.0.1:0")
    self.server.start()
    self.addCleanup(self.server.stop, None)
    channel = grpc.insecure_channel(f"127.0.0.1:{port}")
    self.addCleanup(channel.close)
    self.stub = model_service_pb2_grpc.ModelServiceStub(channel)

  def base(self, name):
    return os.path.join(self.root, name)

  def config(self, models, extra=None):
    return test_util.model_config({m: self.base(m) for m in models}, extra)

  def status(self, name, version=None):
    request = get_model_status_pb2.GetModelStatusRequest()
    request.model_spec.name = name
    if version is not None:
      request.model_spec.version.value = version
    response = self.stub.GetModelStatus(request, timeout=WAIT)
    return [(s.version, s.state, s.status.error_code, s.status.error_message)
            for s in response.model_version_status]

  def rpc_error(self, fn, request):
    with self.assertRaises(grpc.RpcError) as cm:
      fn(request, timeout=WAIT)
    return cm.exception.code(), cm.exception.details()

  def wait(self, name, version, state):
    return self.core.servable_state_monitor.wait_until_servables_reach_state(
        [manager.ServableRequest.specific(name, version)], state,
        timeout_seconds=WAIT)[0]

  def test_status_of_all_versions_and_of_one(self):
    self.assertEqual(self.status("a"), [(1, State.AVAILABLE, 0, "")])
    self.assertEqual(self.status("b", 3), [(3, State.AVAILABLE, 0, "")])

  def test_status_errors(self):
    stub = self.stub.GetModelStatus
    self.assertEqual(
        self.rpc_error(stub, get_model_status_pb2.GetModelStatusRequest()),
        (grpc.StatusCode.INVALID_ARGUMENT, "Missing ModelSpec"))
    request = get_model_status_pb2.GetModelStatusRequest()
    request.model_spec.name = "nope"
    self.assertEqual(
        self.rpc_error(stub, request),
        (grpc.StatusCode.NOT_FOUND,
         "Could not find any versions of model nope"))
    request.model_spec.name = "a"
    request.model_spec.version.value = 9
    self.assertEqual(
        self.rpc_error(stub, request),
        (grpc.StatusCode.NOT_FOUND, "Could not find version 9 of model a"))

  def test_version_label_is_ignored(self):
    request = get_model_status_pb2.GetModelStatusRequest()
    request.model_spec.name = "a"
    request.model_spec.version_label = "whatever"
    response = self.stub.GetModelStatus(request, timeout=WAIT)
    self.assertLen(response.model_version_status, 1)

  def test_corrupt_version_error_visible_old_serves(self):
    hashmap_test_util.write_corrupt_version(self.base("a"), 2)
    self.assertFalse(self.wait("a", 2, servable_state.ManagerState.AVAILABLE))
    (v2, state2, code2, message2), (v1, state1, _, _) = self.status("a")
    self.assertEqual((v2, state2, code2), (2, State.END, 3))  # INVALID_ARGUMENT
    self.assertIn("Unexpected format at line 1", message2)
    self.assertEqual((v1, state1), (1, State.AVAILABLE))
    with self.core.get_servable_handle(model_pb2.ModelSpec(name="a")) as handle:
      self.assertEqual(handle.servable["k"], "v1")

  def test_reload_adds_and_removes(self):
    hashmap_test_util.write_version(self.base("c"), 5, {"k": "v5"})
    request = model_management_pb2.ReloadConfigRequest(
        config=self.config(["a", "c"]))
    response = self.stub.HandleReloadConfigRequest(request, timeout=WAIT)
    self.assertEqual(response.status.error_code, 0)
    self.assertEqual(self.status("c"), [(5, State.AVAILABLE, 0, "")])
    self.assertTrue(self.wait("b", 3, servable_state.ManagerState.END))
    self.assertEqual(self.status("b"), [(3, State.END, 0, "")])

  def test_reload_rejects_invalid_config(self):
    config = self.config(["a"])
    config.model_config_list.config[0].base_path = "relative"
    code, details = self.rpc_error(
        self.stub.HandleReloadConfigRequest,
        model_management_pb2.ReloadConfigRequest(config=config))
    self.assertEqual(code, grpc.StatusCode.INVALID_ARGUMENT)
    self.assertEqual(
        details,
        "Expected model a to have an absolute path or URI; got "
        "base_path()=relative")
    self.assertEqual(self.status("b"), [(3, State.AVAILABLE, 0, "")])

  def test_reload_rejects_non_list_config(self):
    request = model_management_pb2.ReloadConfigRequest()
    request.config.custom_model_config.type_url = "x"
    self.assertEqual(
        self.rpc_error(self.stub.HandleReloadConfigRequest, request),
        (grpc.StatusCode.INVALID_ARGUMENT,
         "ServerModelConfig type not supported by HandleReloadConfigRequest. "
         "Only ModelConfigList is currently supported"))

  def test_reload_label_at_missing_version(self):
    config = self.config(
        ["a", "b"], {"a": 'version_labels { key: "stable" value: 7 }'})
    self.assertEqual(
        self.rpc_error(self.stub.HandleReloadConfigRequest,
                       model_management_pb2.ReloadConfigRequest(config=config)),
        (grpc.StatusCode.FAILED_PRECONDITION,
         "Request to assign label to version 7 of model a, which is not "
         "currently available for inference"))

  def test_reload_reports_metric_increase(self):
    name = "/tensorflow/serving/test/model_service_reloads"
    counter = metrics.REGISTRY.get(name) or metrics.REGISTRY.register(
        metrics.Counter(name, "test counter", ["x"]))
    counter.get_cell("y").increment_by(5)
    request = model_management_pb2.ReloadConfigRequest(
        config=self.config(["a", "b"]), metric_names=[name, "unknown"])
    response = self.stub.HandleReloadConfigRequest(request, timeout=WAIT)
    self.assertEqual(
        [(m.name, m.int64_value_increase) for m in response.metric],
        [(name, 0)])


if __name__ == "__main__":
  absltest.main()
