"""The gRPC ModelService: GetModelStatus and HandleReloadConfigRequest.

A thin servicer (as upstream's model_servers/model_service_impl):
GetModelStatus goes through the DataPlane (as REST's status GET does), a
reload to ServerCore.reload_config (the control plane), and a ServingError
becomes the gRPC status through grpc_status_util. A reload accepts only a
ModelConfigList; the response's status says how it went, and metric_names
asks for how much those counters grew during the reload.
"""

import grpc
from absl import logging

from tensorflow_serving.apis import get_model_status_pb2
from tensorflow_serving.apis import model_management_pb2
from tensorflow_serving.apis import model_service_pb2_grpc
from tensorflow_serving.model_servers import data_plane as data_plane_lib
from tensorflow_serving.model_servers import grpc_status_util
from tensorflow_serving.model_servers import server_core as server_core_lib
from tensorflow_serving.util import metrics
from tensorflow_serving.util import status
from tensorflow_serving.util import status_util


def _counter_values(names) -> dict[str, int]:
  """Each named counter's total over its cells (unknown names: skipped)."""
  values = {}
  for name in names:
    metric = metrics.REGISTRY.get(name)
    if isinstance(metric, metrics.Counter):
      values[name] = int(sum(cell.value() for _, cell in metric.cells()))
  return values


class ModelServiceImpl(model_service_pb2_grpc.ModelServiceServicer):
  """Serves tensorflow.serving.ModelService over a ServerCore."""

  def __init__(self, server_core: server_core_lib.ServerCore,
               data_plane: data_plane_lib.DataPlane) -> None:
    self._core = server_core
    self._data_plane = data_plane

  def GetModelStatus(  # pylint: disable=invalid-name
      self, request: get_model_status_pb2.GetModelStatusRequest,
      context: grpc.ServicerContext
  ) -> get_model_status_pb2.GetModelStatusResponse:
    return grpc_status_util.serve(
        context, None, self._data_plane.get_model_status, request)

  def HandleReloadConfigRequest(  # pylint: disable=invalid-name
      self, request: model_management_pb2.ReloadConfigRequest,
      context: grpc.ServicerContext
  ) -> model_management_pb2.ReloadConfigResponse:
    old_values = _counter_values(request.metric_names)
    error = None
    config = request.config
    if config.WhichOneof("config") == "model_config_list":
      for index, model in enumerate(config.model_config_list.config):
        logging.info(
            "\nConfig entry\n\tindex : %d\n\tpath : %s\n\tname : %s"
            "\n\tplatform : %s", index, model.base_path, model.name,
            model.model_platform)
      try:
        self._core.reload_config(config)
      except status.ServingError as e:
        error = e
    else:
      error = status.invalid_argument(
          "ServerModelConfig type not supported by HandleReloadConfigRequest."
          " Only ModelConfigList is currently supported")
    if error is not None:
      logging.error("ReloadConfig failed: %s", error.message)

    response = model_management_pb2.ReloadConfigResponse()
    for name, new_value in _counter_values(request.metric_names).items():
      metric = response.metric.add()
      metric.name = name
      metric.int64_value_increase = new_value - old_values.get(name, 0)
    response.status.CopyFrom(status_util.to_status_proto(error))
    if error is not None:
      grpc_status_util.abort(context, error)
    return response
