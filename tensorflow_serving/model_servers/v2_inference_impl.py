"""V2InferenceImpl: the Open Inference Protocol (KServe V2), transport-free.

The V2 protocol's gRPC service (grpc_inference_service_impl) and its REST
API (v2_http_rest_api_handler) are thin edges: each decodes its wire format,
calls one method here and encodes the answer; this module holds what both
mean, once, over the same DataPlane and ServerCore as the TF Serving APIs:

  * Versions. An empty model_version is the latest available version; a
    decimal number is that version; anything else is a version label of the
    model's config (the TF Serving APIs' rules, ServerCore's label map).
  * ModelInfer runs as a Predict through DataPlane.predict, so it has the
    same handle, servable-kind check, deadline, request logging, metrics
    and errors as a TF Serving Predict; the edge's decoder runs inside the
    handle, with the servable that will answer, and the inputs go to the
    model as the arrays it decoded (no TensorProto round trip; a logged
    request gets its TensorProtos filled in). The request parameter
    "signature_name" (a string) picks the signature (default
    serving_default); requested outputs act as Predict's output_filter; the
    request id is echoed; model_version is the version that ran. Each input
    must be a signature input (unexpected ones are INVALID_ARGUMENT) with the
    signature's datatype ("inference input 'x' data-type is 'FP64', but
    model 'm' expects 'FP32'"); missing inputs get Predict's error. Outputs
    come back as the Predict response's TensorProtos, with tensor_content,
    in the requested order (else sorted by name), so the gRPC edge can pass
    the bytes on unchanged.
  * ModelMetadata: platform "tensorflow_savedmodel", the model's AVAILABLE
    versions, and the inputs and outputs of the serving_default signature of
    the version asked for, as V2 datatypes with -1 for unknown dimensions.
  * Readiness is ServerCore's (is_live, is_ready); a model is ready when the
    version asked for is AVAILABLE (an unknown model is simply not ready).
  * The model repository is ServerCore's config: the index lists every model
    the server knows (configured, or taken out by a reload) and each version
    the state monitor knows, with the same states GetModelStatus reports;
    load and unload are ServerCore.load_model and unload_model.

Thread-safe: the edges call it from their worker threads.
"""

import dataclasses
import json
from typing import Any, Callable, Mapping, Optional, Sequence

import numpy as np

from tensorflow.core.framework import tensor_pb2
from tensorflow.core.protobuf import meta_graph_pb2
from tensorflow_serving.apis import grpc_service_pb2
from tensorflow_serving.apis import model_pb2
from tensorflow_serving.apis import predict_pb2
from tensorflow_serving.core import servable_state
from tensorflow_serving.model_servers import data_plane as data_plane_lib
from tensorflow_serving.model_servers import server_core as server_core_lib
from tensorflow_serving.model_servers import version as version_lib
from tensorflow_serving.servables.tensorflow import servable as servable_lib
from tensorflow_serving.util import status
from tensorflow_serving.util import tensor_codec
from tensorflow_serving.util import v2_tensor_codec as codec

ManagerState = servable_state.ManagerState
Servable = servable_lib.Servable
RequestContext = data_plane_lib.RequestContext

# What ServerMetadata reports.
SERVER_NAME = "tensorflow-serving"
EXTENSIONS = ("binary_tensor_data", "model_repository")
# ModelMetadata's platform of a SavedModel (Triton's name for it).
PLATFORM = "tensorflow_savedmodel"

# The ModelInfer parameter that picks the signature.
SIGNATURE_NAME = "signature_name"
DEFAULT_SIGNATURE = "serving_default"

# Repository load parameters: the model's base path and platform, or both in
# "config", a JSON object (what tritonclient's load_model(config=...) sends).
BASE_PATH = "base_path"
MODEL_PLATFORM = "model_platform"
CONFIG = "config"
# Sent by tritonclient's unload_model; there are no dependents to unload.
UNLOAD_DEPENDENTS = "unload_dependents"

# Repository index states (Triton's names) of each ManagerState.
READY = "READY"
UNAVAILABLE = "UNAVAILABLE"
LOADING = "LOADING"
UNLOADING = "UNLOADING"
_INDEX_STATES = {
    ManagerState.START: LOADING,
    ManagerState.LOADING: LOADING,
    ManagerState.AVAILABLE: READY,
    ManagerState.UNLOADING: UNLOADING,
    ManagerState.END: UNAVAILABLE,
}
UNLOADED_REASON = "unloaded"
NO_VERSION_REASON = "no version has been found in the model's base path yet"

_INT64_MAX = 2**63 - 1


@dataclasses.dataclass(frozen=True)
class InferInput:
  """One decoded input tensor.

  Attributes:
    name: the input's name (a signature input alias).
    datatype: its V2 datatype as sent.
    value: its value; the dtype is datatype's numpy dtype.
  """

  name: str
  datatype: codec.Datatype
  value: np.ndarray


@dataclasses.dataclass(frozen=True)
class InferRequest:
  """A decoded ModelInfer request, whichever way it came.

  Attributes:
    id: the request id, echoed in the response.
    parameters: the request parameters, as Python values.
    inputs: the inputs, in the order sent.
    outputs: the requested output names (empty: every output).
  """

  id: str = ""
  parameters: Mapping[str, Any] = dataclasses.field(default_factory=dict)
  inputs: Sequence[InferInput] = ()
  outputs: Sequence[str] = ()


# Decodes the wire request, given the servable that will run it (the raw
# binary REST request takes its input's name and datatype from the model).
InferDecoder = Callable[[Servable], InferRequest]


@dataclasses.dataclass(frozen=True)
class InferResponse:
  """What ModelInfer returns, before any wire encoding.

  Attributes:
    model_name, model_version, id: as the response carries them.
    outputs: (name, tensor) in response order; numeric tensors hold their
      bytes in tensor_content.
  """

  model_name: str
  model_version: str
  id: str
  outputs: Sequence[tuple[str, tensor_pb2.TensorProto]]


def model_spec(name: str, version: str) -> model_pb2.ModelSpec:
  """The ModelSpec of a V2 model name and version string.

  "" is the latest version, a decimal number that version, anything else a
  version label.

  Raises:
    ServingError: INVALID_ARGUMENT for a version number beyond int64.
  """
  spec = model_pb2.ModelSpec(name=name)
  if version:
    if version.isascii() and version.isdigit():
      number = int(version)
      if number > _INT64_MAX:
        raise status.invalid_argument(
            f"model version {version} is out of range")
      spec.version.value = number
    else:
      spec.version_label = version
  return spec


def signature_name_of(parameters: Mapping[str, Any]) -> str:
  """The "signature_name" request parameter, or serving_default.

  Raises:
    ServingError: INVALID_ARGUMENT when it is not a string.
  """
  name = parameters.get(SIGNATURE_NAME)
  if name is None:
    return DEFAULT_SIGNATURE
  if not isinstance(name, str):
    raise status.invalid_argument(
        f"parameter {SIGNATURE_NAME} must be a string, got {name!r}")
  return name or DEFAULT_SIGNATURE


def signature_not_found(signature_name: str) -> status.ServingError:
  """Upstream's error for a signature the model does not have."""
  return status.invalid_argument(
      f'Serving signature name: "{signature_name}" not found in signature def')


def datatype_name(tf_dtype: int) -> str:
  """The V2 datatype of a TensorFlow dtype; for one V2 cannot carry
  (complex numbers, resources, ...), TensorFlow's own name in capitals."""
  try:
    return codec.datatype_of_tf_dtype(tf_dtype).name
  except status.ServingError:
    return tensor_codec.dtype_name(tf_dtype).upper()


def _add_tensor_metadata(
    tensors, infos: Optional[Mapping[str, meta_graph_pb2.TensorInfo]]
) -> None:
  for alias in sorted(infos or {}):
    info = infos[alias]
    tensors.add(name=alias, datatype=datatype_name(info.dtype),
                shape=codec.metadata_shape(info.tensor_shape))


class V2InferenceImpl:
  """The V2 protocol over a DataPlane and its ServerCore.

  See the module docstring.
  """

  def __init__(self, server_core: server_core_lib.ServerCore,
               data_plane: data_plane_lib.DataPlane) -> None:
    self._core = server_core
    self._data_plane = data_plane

  # ---------------------------------------------------------------- health

  def server_live(self) -> bool:
    return self._core.is_live()

  def server_ready(self) -> bool:
    return self._core.is_ready()

  def server_metadata(self) -> grpc_service_pb2.ServerMetadataResponse:
    return grpc_service_pb2.ServerMetadataResponse(
        name=SERVER_NAME, version=version_lib.SERVING_VERSION,
        extensions=EXTENSIONS)

  def model_ready(self, name: str, version: str) -> bool:
    """Whether the version asked for is AVAILABLE; false for anything
    unknown (model, version or label)."""
    if not name:
      return False
    try:
      spec = model_spec(name, version)
      with self._core.get_servable_handle(spec):
        return True
    except status.ServingError:
      return False

  # -------------------------------------------------------------- metadata

  def model_metadata(
      self, name: str, version: str,
      context: RequestContext) -> grpc_service_pb2.ModelMetadataResponse:
    """Describes the model and the serving_default signature of the version
    asked for.

    Raises:
      ServingError: as the data plane's lookup (NOT_FOUND for an unknown
        model or version, ...); UNIMPLEMENTED for a servable that is not a
        model.
    """
    spec = model_spec(name, version)

    def describe(servable: Servable) -> grpc_service_pb2.ModelMetadataResponse:
      response = grpc_service_pb2.ModelMetadataResponse(name=name,
                                                        platform=PLATFORM)
      _add_tensor_metadata(response.inputs,
                           servable.get_signature_inputs(DEFAULT_SIGNATURE))
      _add_tensor_metadata(response.outputs,
                           servable.get_signature_outputs(DEFAULT_SIGNATURE))
      return response

    response = self._data_plane.run(spec, context, describe)
    states = self._core.servable_state_monitor.get_version_states(name)
    response.versions.extend(
        str(v) for v in sorted(states)
        if states[v].state.manager_state == ManagerState.AVAILABLE)
    return response

  # ----------------------------------------------------------------- infer

  def infer(self, model_name: str, model_version: str, decode: InferDecoder,
            context: RequestContext) -> InferResponse:
    """Runs one ModelInfer request as a Predict.

    Args:
      model_name: the model.
      model_version: the version string ("" for the latest).
      decode: turns the wire request into an InferRequest; runs inside the
        data plane's handle (its errors are the call's, counted as such).
      context: the request's context (API label "ModelInfer" or "infer").

    Raises:
      ServingError: see the module docstring.
    """
    predict = predict_pb2.PredictRequest()
    predict.model_spec.CopyFrom(model_spec(model_name, model_version))
    decoded: list[InferRequest] = []

    def fill(servable: Servable) -> dict[str, np.ndarray]:
      request = decode(servable)
      decoded.append(request)
      return self._predict_inputs(servable, request, predict)

    response = self._data_plane.predict(predict, context,
                                        tensor_content=True, decode=fill)
    request = decoded[0]
    if request.outputs:
      names = list(request.outputs)
    else:
      names = sorted(response.outputs)
    return InferResponse(
        model_name=model_name,
        model_version=str(response.model_spec.version.value),
        id=request.id,
        outputs=[(name, response.outputs[name]) for name in names])

  def _predict_inputs(self, servable: Servable, request: InferRequest,
                      predict: predict_pb2.PredictRequest
                     ) -> dict[str, np.ndarray]:
    """Checks the inputs against the signature; completes the Predict
    request (signature, output filter) and returns its inputs as arrays."""
    signature_name = signature_name_of(request.parameters)
    signature_inputs = servable.get_signature_inputs(signature_name)
    if signature_inputs is None:
      raise signature_not_found(signature_name)
    predict.model_spec.signature_name = signature_name
    model = predict.model_spec.name
    arrays = {}
    for tensor in request.inputs:
      info = signature_inputs.get(tensor.name)
      if info is None:
        raise status.invalid_argument(
            f"unexpected inference input '{tensor.name}' for model '{model}'")
      expected = datatype_name(info.dtype)
      if tensor.datatype.name != expected:
        raise status.invalid_argument(
            f"inference input '{tensor.name}' data-type is "
            f"'{tensor.datatype.name}', but model '{model}' expects "
            f"'{expected}'")
      arrays[tensor.name] = tensor.value
    predict.output_filter.extend(request.outputs)
    return arrays

  # ------------------------------------------------------------ repository

  def repository_index(
      self, repository_name: str = "",
      ready_only: bool = False) -> grpc_service_pb2.RepositoryIndexResponse:
    """Every model the server knows and each version's state.

    A model is known when it is configured or a reload took it out; each
    version the state monitor knows is listed with the state GetModelStatus
    reports for it (START and LOADING are LOADING, AVAILABLE is READY,
    UNLOADING, END is UNAVAILABLE with its error or "unloaded" as the
    reason). A configured model with no version yet is listed once,
    UNAVAILABLE, without a version.

    Raises:
      ServingError: NOT_FOUND for a repository name other than "".
    """
    _check_repository(repository_name)
    configured = [m.name for m in self._core.config.model_config_list.config]
    unloaded = self._core.unloaded_model_configs()
    states = self._core.servable_state_monitor.get_all_servable_states()
    response = grpc_service_pb2.RepositoryIndexResponse()
    for name in sorted(set(configured) | set(unloaded) | set(states)):
      versions = states.get(name, {})
      if not versions:
        if not ready_only:
          response.models.add(name=name, state=UNAVAILABLE,
                              reason=NO_VERSION_REASON if name in configured
                              else UNLOADED_REASON)
        continue
      for version in sorted(versions):
        state = versions[version].state
        index_state = _INDEX_STATES[state.manager_state]
        if ready_only and index_state != READY:
          continue
        reason = ""
        if state.health is not None:
          reason = state.health.message
        elif state.manager_state == ManagerState.END:
          reason = UNLOADED_REASON
        response.models.add(name=name, version=str(version),
                            state=index_state, reason=reason)
    return response

  def repository_model_load(self, repository_name: str, model_name: str,
                            parameters: Mapping[str, Any],
                            context: RequestContext) -> None:
    """Serves a model (ServerCore.load_model), with the request's deadline.

    Parameters: "base_path" and "model_platform" (strings), or "config", a
    JSON object with those keys. Any other parameter is refused.

    Raises:
      ServingError: INVALID_ARGUMENT for a bad parameter; NOT_FOUND for an
        unknown model without base_path; what load_model raises.
    """
    _check_repository(repository_name)
    _check_model_name(model_name)
    params = dict(parameters)
    settings: dict[str, Any] = {}
    config = params.pop(CONFIG, None)
    if config is not None:
      settings.update(_parse_config_parameter(config))
    for key in (BASE_PATH, MODEL_PLATFORM):
      if key in params:
        value = params.pop(key)
        if key in settings and settings[key] != value:
          raise status.invalid_argument(
              f"parameter {key} is given twice, with different values (once "
              f"in {CONFIG})")
        settings[key] = value
    if params:
      raise status.invalid_argument(
          f"unexpected parameter(s) {', '.join(sorted(params))} for loading "
          f"model '{model_name}'; accepted: {BASE_PATH}, {MODEL_PLATFORM}, "
          f"{CONFIG}")
    for key, value in settings.items():
      if not isinstance(value, str):
        raise status.invalid_argument(
            f"parameter {key} must be a string, got {value!r}")
    self._core.load_model(model_name, settings.get(BASE_PATH) or None,
                          settings.get(MODEL_PLATFORM) or None,
                          deadline=context.deadline)

  def repository_model_unload(self, repository_name: str, model_name: str,
                              parameters: Mapping[str, Any],
                              context: RequestContext) -> None:
    """Stops serving a model (ServerCore.unload_model).

    The only parameter accepted is "unload_dependents" (a boolean, ignored:
    models here have no dependents).

    Raises:
      ServingError: INVALID_ARGUMENT for another parameter; NOT_FOUND for a
        model that was never configured; DEADLINE_EXCEEDED.
    """
    _check_repository(repository_name)
    _check_model_name(model_name)
    params = dict(parameters)
    dependents = params.pop(UNLOAD_DEPENDENTS, False)
    if not isinstance(dependents, bool):
      raise status.invalid_argument(
          f"parameter {UNLOAD_DEPENDENTS} must be a boolean, got "
          f"{dependents!r}")
    if params:
      raise status.invalid_argument(
          f"unexpected parameter(s) {', '.join(sorted(params))} for unloading "
          f"model '{model_name}'; accepted: {UNLOAD_DEPENDENTS}")
    self._core.unload_model(model_name, deadline=context.deadline)


def _check_repository(repository_name: str) -> None:
  if repository_name:
    raise status.not_found(
        f"unknown model repository '{repository_name}'; this server has one, "
        "named ''")


def _check_model_name(model_name: str) -> None:
  if not model_name:
    raise status.invalid_argument("a model name is required")


def _parse_config_parameter(config: Any) -> dict[str, Any]:
  """The "config" load parameter: a JSON object of base_path and
  model_platform."""
  if isinstance(config, bytes):
    config = config.decode("utf-8", "replace")
  if not isinstance(config, str):
    raise status.invalid_argument(
        f"parameter {CONFIG} must be a JSON object in a string")
  try:
    value = json.loads(config)
  except ValueError as e:
    raise status.invalid_argument(
        f"parameter {CONFIG} is not valid JSON: {e}") from None
  if not isinstance(value, dict):
    raise status.invalid_argument(
        f"parameter {CONFIG} must be a JSON object, got {config!r}")
  unknown = set(value) - {BASE_PATH, MODEL_PLATFORM}
  if unknown:
    raise status.invalid_argument(
        f"unexpected key(s) {', '.join(sorted(unknown))} in parameter "
        f"{CONFIG}; accepted: {BASE_PATH}, {MODEL_PLATFORM}")
  return value
