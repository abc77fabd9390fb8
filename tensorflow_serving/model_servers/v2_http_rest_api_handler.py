"""V2HttpRestApiHandler: one V2 (Open Inference Protocol) REST call; no sockets.

The /v2 counterpart of http_rest_api_handler: http_server hands it the
method, path, body and headers of each /v2 request; it parses the URL and
the body (JSON, or JSON plus binary tensors: util/v2_tensor_codec), calls
V2InferenceImpl, the same transport-free code the V2 gRPC service calls,
and encodes the answer. Failures come back as a ServingError beside an
{"error": "..."} body; http_server turns the code into the HTTP status.

  GET  /v2                                          server metadata
  GET  /v2/health/live, /v2/health/ready            {"live"|"ready": bool}
  GET  /v2/models/{m}[/versions/{v}]                model metadata
  GET  /v2/models/{m}[/versions/{v}]/ready          {"name": m, "ready": bool}
  POST /v2/models/{m}[/versions/{v}]/infer          inference
  POST /v2/repository/index                         [{"name", "version",
                                                      "state", "reason"}]
  POST /v2/repository/models/{m}/load | /unload     {"parameters": {...}}

Health and readiness answer with the status code, as the V2 spec and
Triton do, and with the spec's JSON body, since clients read either: 200
when true, 400 when false (a readiness probe fails on any status >= 400).
They never wait for a worker thread: quick_response() answers them on the
event loop, so a probe is answered while every worker runs a model.

Inference bodies are JSON, or, with Inference-Header-Content-Length, the
JSON header followed by the inputs' binary data (the binary tensor data
extension); a header length of 0 is Triton's raw binary request: the whole
body is the data of the model's only input (its datatype from the model; at
most one unknown dimension, which the byte count fixes; a BYTES input takes
the body as its one element), and every output comes back binary. Outputs
are JSON unless the request asks for binary ("binary_data" on an output,
"binary_data_output" in the parameters); a response with binary outputs is
application/octet-stream with Inference-Header-Content-Length. A body with
Content-Encoding gzip or deflate is inflated first. Model names and
versions in the URL are URL-decoded; a version that is not a number names a
version label.

Thread-safe: process_request() runs on the HTTP server's worker pool and
blocks while the model runs.
"""

import dataclasses
import json
import math
import re
from typing import Any, Mapping, Optional
import urllib.parse

import numpy as np
import orjson

from tensorflow_serving.apis import grpc_service_pb2
from tensorflow_serving.model_servers import data_plane as data_plane_lib
from tensorflow_serving.model_servers import http_rest_api_util
from tensorflow_serving.model_servers import restricted_api
from tensorflow_serving.model_servers import v2_inference_impl
from tensorflow_serving.servables.tensorflow import servable as servable_lib
from tensorflow_serving.util import status
from tensorflow_serving.util import tensor_codec
from tensorflow_serving.util import v2_tensor_codec as codec

# The paths this handler serves; http_server sends it everything under it.
PATH_PREFIX = "/v2"
# The metrics API label of an inference call.
API_LABEL = "infer"

HEADER_CONTENT_LENGTH = codec.HEADER_CONTENT_LENGTH
JSON_CONTENT_TYPE = "application/json"
BINARY_CONTENT_TYPE = "application/octet-stream"

_MODEL = r"/v2/models/(?P<model>[^/]+)(?:/versions/(?P<version>[^/]+))?"
_SERVER_METADATA = re.compile(r"/v2/?")
_HEALTH = re.compile(r"/v2/health/(?P<kind>live|ready)")
_MODEL_METADATA = re.compile(_MODEL)
_MODEL_READY = re.compile(_MODEL + r"/ready")
_INFER = re.compile(_MODEL + r"/infer")
_INDEX = re.compile(r"/v2/repository/index")
_REPOSITORY_MODEL = re.compile(
    r"/v2/repository/models/(?P<model>[^/]+)/(?P<action>load|unload)")


def is_v2_path(path: str) -> bool:
  """Whether a URL path is this handler's: /v2 or under /v2/."""
  return path == PATH_PREFIX or path.startswith(PATH_PREFIX + "/")


def api_group(http_method: str, path: str) -> restricted_api.ApiGroup:
  """The --restricted_api group of a /v2 request (http_server checks it).

  Matches as quick_response() and _dispatch() do, in their order; a request
  that names no call falls in the strictest group, as an unknown gRPC method.
  """
  groups = restricted_api.ApiGroup
  if http_method == "GET":
    if _HEALTH.fullmatch(path) or _MODEL_READY.fullmatch(path):
      return groups.HEALTH
    if _SERVER_METADATA.fullmatch(path) or _MODEL_METADATA.fullmatch(path):
      return groups.METADATA
  elif http_method == "POST":
    if _INFER.fullmatch(path):
      return groups.INFERENCE
    if _INDEX.fullmatch(path):
      return groups.METADATA
    if _REPOSITORY_MODEL.fullmatch(path):
      return groups.MODEL_MANAGEMENT
  return restricted_api.STRICTEST_GROUP


@dataclasses.dataclass(frozen=True)
class V2RestResult:
  """The outcome of one /v2 call.

  Attributes:
    body: the response body.
    error: None on success, else what went wrong (its code picks the HTTP
      status, in http_server).
    http_status: the protocol's own answer, for the health and readiness
      calls (200 true, 400 false); None: 200, or the error's status.
    content_type: the body's Content-Type.
    header_length: Inference-Header-Content-Length, for a body with binary
      outputs after its JSON.
  """

  body: bytes
  error: Optional[status.ServingError] = None
  http_status: Optional[int] = None
  content_type: str = JSON_CONTENT_TYPE
  header_length: Optional[int] = None

  @classmethod
  def failure(cls, error: status.ServingError) -> "V2RestResult":
    return cls(_dumps({"error": error.message}), error)

  @classmethod
  def boolean(cls, doc: dict[str, Any], value: bool) -> "V2RestResult":
    return cls(_dumps(doc), http_status=200 if value else 400)


def _dumps(doc: Any) -> bytes:
  return orjson.dumps(doc)


def _loads(data: bytes | memoryview, what: str) -> Any:
  """Parses JSON; NaN and Infinity tokens are accepted as Python's json does."""
  try:
    return orjson.loads(data)
  except orjson.JSONDecodeError:
    pass
  try:
    return json.loads(bytes(data))
  except (ValueError, UnicodeDecodeError) as e:
    raise status.invalid_argument(
        f"failed to parse the {what} JSON buffer: {e}") from None


def _json_object(body: bytes, what: str) -> dict[str, Any]:
  """An optional JSON object body ("" is {})."""
  if not body.strip():
    return {}
  doc = _loads(body, what)
  if not isinstance(doc, dict):
    raise status.invalid_argument(f"the {what} must be a JSON object")
  return doc


def _parameters(doc: Mapping[str, Any], what: str) -> dict[str, Any]:
  params = doc.get("parameters")
  if params is None:
    return {}
  if not isinstance(params, dict):
    raise status.invalid_argument(f"'parameters' of the {what} must be an "
                                  "object")
  return params


def _unquote(text: Optional[str]) -> str:
  return urllib.parse.unquote(text) if text else ""


def _tensor_metadata_json(tensors) -> list[dict[str, Any]]:
  return [{"name": t.name, "datatype": t.datatype, "shape": list(t.shape)}
          for t in tensors]


def model_metadata_json(
    response: grpc_service_pb2.ModelMetadataResponse) -> dict[str, Any]:
  """The REST body of a ModelMetadataResponse."""
  return {
      "name": response.name,
      "versions": list(response.versions),
      "platform": response.platform,
      "inputs": _tensor_metadata_json(response.inputs),
      "outputs": _tensor_metadata_json(response.outputs),
  }


def repository_index_json(
    response: grpc_service_pb2.RepositoryIndexResponse) -> list[dict]:
  """The REST body of a RepositoryIndexResponse (empty fields left out)."""
  entries = []
  for model in response.models:
    entry = {"name": model.name}
    if model.version:
      entry["version"] = model.version
    entry["state"] = model.state
    if model.reason:
      entry["reason"] = model.reason
    entries.append(entry)
  return entries


def _decode_json_request(doc: Any, binary: memoryview
                        ) -> v2_inference_impl.InferRequest:
  """A parsed inference request object (and its binary data) as an
  InferRequest."""
  if not isinstance(doc, dict):
    raise status.invalid_argument("the inference request must be a JSON object")
  tensors = doc.get("inputs")
  if tensors is None:
    raise status.invalid_argument("the inference request has no 'inputs'")
  blobs = codec.take_binary_inputs(tensors, binary)
  inputs = []
  seen = set()
  for tensor, blob in zip(tensors, blobs):
    name, value = codec.decode_json_input(tensor, blob)
    if name in seen:
      raise status.invalid_argument(f"input '{name}' is given more than once")
    seen.add(name)
    inputs.append(v2_inference_impl.InferInput(
        name, codec.datatype(tensor["datatype"]), value))
  request_id = doc.get("id", "")
  if not isinstance(request_id, str):
    raise status.invalid_argument(f"'id' must be a string, got {request_id!r}")
  outputs = doc.get("outputs") or []
  if not isinstance(outputs, list):
    raise status.invalid_argument("'outputs' must be a list")
  names = []
  for output in outputs:
    name = output.get("name") if isinstance(output, dict) else None
    if not isinstance(name, str):
      raise status.invalid_argument(
          f"a requested output has no string 'name': {output!r:.200}")
    names.append(name)
  return v2_inference_impl.InferRequest(
      id=request_id, parameters=_parameters(doc, "inference request"),
      inputs=inputs, outputs=names)


def decode_raw_binary_request(servable: servable_lib.Servable, model: str,
                              body: bytes) -> v2_inference_impl.InferRequest:
  """Triton's raw binary request: the body is the model's one input.

  Raises:
    ServingError: INVALID_ARGUMENT when the model has more than one input,
      an input shape the byte count cannot fix, or a byte count that does
      not fit it.
  """
  signature_name = v2_inference_impl.DEFAULT_SIGNATURE
  infos = servable.get_signature_inputs(signature_name)
  if infos is None:
    raise v2_inference_impl.signature_not_found(signature_name)
  if len(infos) != 1:
    raise status.invalid_argument(
        "a raw binary request (Inference-Header-Content-Length: 0) needs a "
        f"model with one input; model '{model}' has {len(infos)}")
  (name, info), = infos.items()
  dt = codec.datatype_of_tf_dtype(info.dtype)
  what = f"input '{name}'"
  if dt.wire_dtype is None:  # BYTES: the body is the one element.
    value = np.empty(1, dtype=object)
    value[0] = bytes(body)
    return v2_inference_impl.InferRequest(
        inputs=[v2_inference_impl.InferInput(name, dt, value)])
  dims = codec.metadata_shape(info.tensor_shape)
  if info.tensor_shape.unknown_rank or dims.count(-1) > 1:
    raise status.invalid_argument(
        f"a raw binary request cannot give the shape of {what} of model "
        f"'{model}' ({tensor_codec.format_shape(dims)}, more than one unknown "
        "dimension)")
  known = math.prod(d for d in dims if d >= 0) * dt.itemsize
  if -1 in dims:
    if known == 0 or len(body) % known:
      raise status.invalid_argument(
          f"a raw binary request of {len(body)} bytes does not fit {what} of "
          f"model '{model}' (shape {tensor_codec.format_shape(dims)}, "
          f"{dt.name})")
    dims[dims.index(-1)] = len(body) // known
  value = codec.decode_raw(dt, dims, body, what)
  return v2_inference_impl.InferRequest(
      inputs=[v2_inference_impl.InferInput(name, dt, value)])


def _has_non_finite(arrays) -> bool:
  for _, array in arrays:
    if array.dtype.kind == "f" or array.dtype == codec.datatype("BF16").numpy_dtype:
      if not np.isfinite(array.astype(np.float32, copy=False)).all():
        return True
  return False


class V2HttpRestApiHandler:
  """Serves the /v2 REST API over V2InferenceImpl. See the module doc."""

  def __init__(self, impl: v2_inference_impl.V2InferenceImpl) -> None:
    self._impl = impl

  def quick_response(self, http_method: str,
                     path: str) -> Optional[V2RestResult]:
    """The answer to a call that needs no worker thread (health, readiness,
    server metadata), or None for the others."""
    if http_method != "GET":
      return None
    try:
      match = _HEALTH.fullmatch(path)
      if match:
        if match.group("kind") == "live":
          return V2RestResult.boolean({"live": self._impl.server_live()},
                                      self._impl.server_live())
        ready = self._impl.server_ready()
        return V2RestResult.boolean({"ready": ready}, ready)
      if _SERVER_METADATA.fullmatch(path):
        metadata = self._impl.server_metadata()
        return V2RestResult(_dumps({
            "name": metadata.name, "version": metadata.version,
            "extensions": list(metadata.extensions)}))
      match = _MODEL_READY.fullmatch(path)
      if match:
        name = _unquote(match.group("model"))
        ready = self._impl.model_ready(name, _unquote(match.group("version")))
        return V2RestResult.boolean({"name": name, "ready": ready}, ready)
    except Exception as e:  # pylint: disable=broad-except
      return V2RestResult.failure(status.from_exception(e))
    return None

  def process_request(self, http_method: str, path: str, body: bytes,
                      headers: Mapping[str, str],
                      context: data_plane_lib.RequestContext,
                      body_budget: Optional[
                          http_rest_api_util.BodyBudget] = None
                     ) -> V2RestResult:
    """Runs one /v2 call; never raises (errors are in the result).

    Args:
      http_method: "GET", "POST", ...
      path: the URL path, without the query string.
      body: the body as received.
      headers: the request headers (Content-Encoding,
        Inference-Header-Content-Length), names lower-cased.
      context: the request's context (entrypoint REST, its deadline).
      body_budget: the body's size limit and its share of the memory
        budget (see HttpRestApiHandler.process_request).
    """
    try:
      quick = self.quick_response(http_method, path)
      if quick is not None:
        return quick
      body = http_rest_api_util.read_body(
          body, headers.get("content-encoding", ""), body_budget)
      return self._dispatch(http_method, path, body, headers, context)
    except status.ServingError as e:
      return V2RestResult.failure(e)
    except Exception as e:  # pylint: disable=broad-except
      return V2RestResult.failure(status.from_exception(e))

  def _dispatch(self, http_method: str, path: str, body: bytes,
                headers: Mapping[str, str],
                context: data_plane_lib.RequestContext) -> V2RestResult:
    if http_method == "POST":
      match = _INFER.fullmatch(path)
      if match:
        return self._infer(
            _unquote(match.group("model")), _unquote(match.group("version")),
            body, headers.get(HEADER_CONTENT_LENGTH.lower()),
            context.for_api(API_LABEL))
      if _INDEX.fullmatch(path):
        doc = _json_object(body, "repository index request")
        ready = doc.get("ready", False)
        if not isinstance(ready, bool):
          raise status.invalid_argument(
              f"'ready' must be true or false, got {ready!r}")
        return V2RestResult(_dumps(repository_index_json(
            self._impl.repository_index("", ready))))
      match = _REPOSITORY_MODEL.fullmatch(path)
      if match:
        name = _unquote(match.group("model"))
        doc = _json_object(body, f"repository {match.group('action')} request")
        params = _parameters(doc, f"{match.group('action')} request")
        if match.group("action") == "load":
          self._impl.repository_model_load("", name, params, context)
        else:
          self._impl.repository_model_unload("", name, params, context)
        return V2RestResult(b"")
    elif http_method == "GET":
      match = _MODEL_METADATA.fullmatch(path)
      if match:
        response = self._impl.model_metadata(
            _unquote(match.group("model")), _unquote(match.group("version")),
            context)
        return V2RestResult(_dumps(model_metadata_json(response)))
    raise status.invalid_argument(f"Malformed request: {http_method} {path}")

  def _infer(self, model: str, version: str, body: bytes,
             header_length: Optional[str],
             context: data_plane_lib.RequestContext) -> V2RestResult:
    raw = header_length is not None and header_length.strip() == "0"
    parsed: list[Any] = []

    def decode(servable: servable_lib.Servable
              ) -> v2_inference_impl.InferRequest:
      if raw:
        parsed.append({"parameters": {codec.BINARY_DATA_OUTPUT: True}})
        return decode_raw_binary_request(servable, model, body)
      header, binary = codec.split_binary_body(body, header_length)
      doc = _loads(header, "request")
      parsed.append(doc)
      return _decode_json_request(doc, binary)

    result = self._impl.infer(model, version, decode, context)
    outputs = [(name, tensor_codec.tensor_proto_to_ndarray(tensor))
               for name, tensor in result.outputs]
    fields = {"model_name": result.model_name,
              "model_version": result.model_version}
    if result.id:
      fields["id"] = result.id
    # orjson writes NaN and infinities as null; Python's json writes the
    # tokens that JSON clients of the V2 protocol read back as floats.
    dumps = ((lambda doc: json.dumps(doc, separators=(",", ":")))
             if _has_non_finite(outputs) else _dumps)
    response_body, length = codec.encode_json_response(
        fields, outputs, parsed[0], dumps=dumps)
    if length is None:
      return V2RestResult(response_body)
    return V2RestResult(response_body, content_type=BINARY_CONTENT_TYPE,
                        header_length=length)
