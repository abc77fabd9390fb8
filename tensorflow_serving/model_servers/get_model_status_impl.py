"""GetModelStatus, transport-free: every version's state from the monitor.

The DataPlane answers the gRPC ModelService and the REST status endpoint
with it (as upstream's model_servers/get_model_status_impl). Without a
version in the ModelSpec, all known versions are reported, highest first;
version_label is ignored.
Each version carries its ModelVersionStatus.State (START 10 ... END 50) and
a StatusProto with its error, if it failed.

list_model_statuses() answers the same for every configured model at once
(not in upstream: REST's GET /v1/models, tensorflow/serving#795).
"""

import dataclasses
from typing import Optional

from tensorflow_serving.apis import get_model_status_pb2
from tensorflow_serving.apis import model_pb2
from tensorflow_serving.core import servable_id as servable_id_lib
from tensorflow_serving.core import servable_state
from tensorflow_serving.util import status
from tensorflow_serving.util import status_util

ModelVersionStatus = get_model_status_pb2.ModelVersionStatus
ManagerState = servable_state.ManagerState

_STATE_TO_PROTO = {
    ManagerState.START: ModelVersionStatus.START,
    ManagerState.LOADING: ModelVersionStatus.LOADING,
    ManagerState.AVAILABLE: ModelVersionStatus.AVAILABLE,
    ManagerState.UNLOADING: ModelVersionStatus.UNLOADING,
    ManagerState.END: ModelVersionStatus.END,
}


def _add_version_status(response: get_model_status_pb2.GetModelStatusResponse,
                        version: int,
                        state: servable_state.ServableState) -> None:
  version_status = response.model_version_status.add()
  version_status.version = version
  version_status.state = _STATE_TO_PROTO[state.manager_state]
  version_status.status.CopyFrom(status_util.to_status_proto(state.health))


def get_model_status(
    core, request: get_model_status_pb2.GetModelStatusRequest
) -> get_model_status_pb2.GetModelStatusResponse:
  """Answers a GetModelStatusRequest from a ServerCore's state monitor.

  Args:
    core: a ServerCore (anything with a `servable_state_monitor`).
    request: the request.

  Raises:
    ServingError: INVALID_ARGUMENT "Missing ModelSpec"; NOT_FOUND "Could not
      find version N of model X" / "Could not find any versions of model X".
  """
  if not request.HasField("model_spec"):
    raise status.invalid_argument("Missing ModelSpec")
  return get_model_status_with_model_spec(core, request.model_spec)


def get_model_status_with_model_spec(
    core, model_spec: model_pb2.ModelSpec
) -> get_model_status_pb2.GetModelStatusResponse:
  """Like get_model_status, for a ModelSpec (the REST handler's entry)."""
  monitor = core.servable_state_monitor
  response = get_model_status_pb2.GetModelStatusResponse()
  name = model_spec.name
  if model_spec.HasField("version"):
    version = model_spec.version.value
    state = monitor.get_state(servable_id_lib.ServableId(name, version))
    if state is None:
      raise status.not_found(
          f"Could not find version {version} of model {name}")
    _add_version_status(response, version, state)
    return response
  versions = monitor.get_version_states(name)
  if not versions:
    raise status.not_found(f"Could not find any versions of model {name}")
  for version, state_and_time in versions.items():
    _add_version_status(response, version, state_and_time.state)
  return response


@dataclasses.dataclass(frozen=True)
class ModelStatus:
  """What GetModelStatus says of one model, for the model list.

  Attributes:
    name: the model's name.
    response: its versions' states (empty when `error` is set).
    error: GetModelStatus's error for this model (NOT_FOUND "Could not find
      any versions of model X" while no version is known), or None.
  """

  name: str
  response: get_model_status_pb2.GetModelStatusResponse
  error: Optional[status.ServingError] = None


def list_model_statuses(core) -> list[ModelStatus]:
  """Every model of the config in force, in its order, with its status.

  Args:
    core: a ServerCore (`configured_model_names()` and
      `servable_state_monitor`).
  """
  statuses = []
  for name in core.configured_model_names():
    try:
      response = get_model_status_with_model_spec(
          core, model_pb2.ModelSpec(name=name))
      statuses.append(ModelStatus(name, response))
    except status.ServingError as e:
      statuses.append(ModelStatus(
          name, get_model_status_pb2.GetModelStatusResponse(), e))
  return statuses
