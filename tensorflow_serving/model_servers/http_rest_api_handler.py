"""HttpRestApiHandler: one REST API call in, a JSON body out; no sockets.

As upstream's model_servers/http_rest_api_handler. For each /v1 request it
parses the URL and undoes the body's Content-Encoding
(http_rest_api_util), decodes the body into the same request proto a gRPC
client would send (util/json_tensor), calls the same transport-free
DataPlane method the gRPC services call, and encodes the answer. Failures
come back as a ServingError next to an {"error": "..."} body; turning its
code into an HTTP status is http_server's job, in one place.

  GET  /v1/models                                               every model's
                                                  status (not in upstream)
  GET  /v1/models/{name}[/versions/{N}|/labels/{L}]            model status
  GET  /v1/models/{name}[/versions/{N}|/labels/{L}]/metadata   signature defs
  POST /v1/models/{name}[/versions/{N}|/labels/{L}]:predict    Predict
  POST ...:classify | ...:regress                              tf.Example APIs

Predict decodes inside the data plane's handle: JSON carries no types, so
the values are typed by the signature's inputs
(Servable.get_signature_inputs) of the very version that then runs them.
Classify and Regress decode before (their body is tf.Examples, typed by
itself), through one table-driven path. A request refused before it reaches
the data plane (bad URL, body or encoding) is still counted once
(DataPlane.count_refused).

Bodies are read by util/json_tensor as upstream's rapidjson reads them
(numeric Predict bodies go straight into arrays through simdjson).

Thread-safe: process_request() is called from the HTTP server's worker pool
and blocks while the model runs.
"""

import dataclasses
from typing import Any, Callable, Mapping, Optional

from absl import logging

from tensorflow.core.protobuf import meta_graph_pb2
from tensorflow_serving.apis import classification_pb2
from tensorflow_serving.apis import get_model_metadata_pb2
from tensorflow_serving.apis import get_model_status_pb2
from tensorflow_serving.apis import predict_pb2
from tensorflow_serving.apis import regression_pb2
from tensorflow_serving.model_servers import data_plane as data_plane_lib
from tensorflow_serving.model_servers import http_rest_api_util
from tensorflow_serving.servables.tensorflow import servable as servable_lib
from tensorflow_serving.util import json_tensor
from tensorflow_serving.util import status

_DEFAULT_SIGNATURE = "serving_default"
_SIGNATURE_DEF_FIELD = "signature_def"

# A prepared call: runs on the data plane, returns the JSON reply.
_Call = Callable[[data_plane_lib.RequestContext], str]


@dataclasses.dataclass(frozen=True)
class RestResult:
  """The outcome of one REST call.

  Attributes:
    body: the JSON reply ({"error": ...} on failure).
    error: None on success, else what went wrong (its code picks the HTTP
      status).
  """

  body: str
  error: Optional[status.ServingError] = None

  @classmethod
  def failure(cls, error: status.ServingError) -> "RestResult":
    return cls(json_tensor.make_json_error(error.message), error)


@dataclasses.dataclass(frozen=True)
class _ExampleApi:
  """How one tf.Example API (:classify, :regress) reads and writes JSON."""

  request_type: type
  decode: Callable[[bytes, Any], None]  # (body, request)
  call: Callable[[data_plane_lib.DataPlane, Any, Any], Any]
  encode: Callable[[Any], str]  # response.result -> JSON


_EXAMPLE_APIS = {
    "classify": _ExampleApi(
        classification_pb2.ClassificationRequest,
        json_tensor.fill_classification_request_from_json,
        data_plane_lib.DataPlane.classify,
        json_tensor.make_json_from_classification_result),
    "regress": _ExampleApi(
        regression_pb2.RegressionRequest,
        json_tensor.fill_regression_request_from_json,
        data_plane_lib.DataPlane.regress,
        json_tensor.make_json_from_regression_result),
}


def _unexpected(error: Exception, what: str) -> status.ServingError:
  """A bug's ServingError (logged with its traceback)."""
  if not isinstance(error, status.ServingError):
    logging.exception("REST %s failed unexpectedly", what)
  return status.from_exception(error)


class HttpRestApiHandler:
  """Serves the /v1 REST API over a DataPlane. See the module docstring."""

  def __init__(self, data_plane: data_plane_lib.DataPlane) -> None:
    self._data_plane = data_plane

  def process_request(self, http_method: str, path: str, body: bytes,
                      context: data_plane_lib.RequestContext,
                      content_encoding: str = "") -> RestResult:
    """Runs one /v1 request; never raises (errors are in the result).

    Args:
      http_method: "GET", "POST", ...
      path: the URL path, without the query string.
      body: the request body as received.
      context: the request's context (entrypoint REST, its deadline); the
        API label is set here, from the URL.
      content_encoding: the Content-Encoding header ("" for none).
    """
    info = http_rest_api_util.ModelInfo()
    try:
      info = http_rest_api_util.parse_model_info(http_method, path)
      context = context.for_api(info.method)
      call = self._prepare(
          http_method, path, info,
          http_rest_api_util.decompress(body, content_encoding))
    except Exception as e:  # pylint: disable=broad-except
      error = _unexpected(e, f"{http_method} {path}")
      self._data_plane.count_refused(context, info.model_name, error)
      return RestResult.failure(error)
    try:
      return RestResult(call(context))
    except Exception as e:  # pylint: disable=broad-except
      return RestResult.failure(_unexpected(e, f"{http_method} {path}"))

  def _prepare(self, http_method: str, path: str,
               info: http_rest_api_util.ModelInfo, body: bytes) -> _Call:
    """Everything before the data plane: which call, with what request."""
    if info.matched and http_method == "POST":
      if info.method == "predict":
        return self._predict(info, body)
      return self._example_api(_EXAMPLE_APIS[info.method], info, body)
    if info.matched and http_method == "GET":
      if info.is_model_list:
        return self._list()
      if not info.model_name:
        raise status.invalid_argument("Missing model name in request.")
      if info.subresource == "metadata":
        return self._metadata(info)
      return self._status(info)
    raise status.invalid_argument(f"Malformed request: {http_method} {path}")

  def _predict(self, info: http_rest_api_util.ModelInfo, body: bytes) -> _Call:
    request = predict_pb2.PredictRequest()
    http_rest_api_util.fill_model_spec(request.model_spec, info)

    def call(context: data_plane_lib.RequestContext) -> str:
      request_format = []

      def decode(servable: servable_lib.Servable) -> None:

        def input_infos(
            signature_name: str) -> Mapping[str, meta_graph_pb2.TensorInfo]:
          inputs = servable.get_signature_inputs(signature_name)
          if inputs is None:
            name = signature_name or _DEFAULT_SIGNATURE
            raise status.invalid_argument(
                f'Serving signature name: "{name}" not found in signature def')
          return inputs

        request_format.append(json_tensor.fill_predict_request_from_json(
            body, input_infos, request))

      response = self._data_plane.predict(request, context, decode=decode)
      return json_tensor.make_json_from_tensors(response.outputs,
                                                request_format[0])

    return call

  def _example_api(self, api: _ExampleApi, info: http_rest_api_util.ModelInfo,
                   body: bytes) -> _Call:
    request = api.request_type()
    http_rest_api_util.fill_model_spec(request.model_spec, info)
    api.decode(body, request)
    return lambda context: api.encode(
        api.call(self._data_plane, request, context).result)

  def _status(self, info: http_rest_api_util.ModelInfo) -> _Call:
    request = get_model_status_pb2.GetModelStatusRequest()
    http_rest_api_util.fill_model_spec(request.model_spec, info)
    return lambda context: http_rest_api_util.model_status_to_json(
        self._data_plane.get_model_status(request, context))

  def _list(self) -> _Call:
    # Not in upstream (tensorflow/serving#795), where this URL is a 400
    # "Missing model name in request.".
    return lambda context: http_rest_api_util.model_list_to_json(
        self._data_plane.list_models(context))

  def _metadata(self, info: http_rest_api_util.ModelInfo) -> _Call:
    request = get_model_metadata_pb2.GetModelMetadataRequest()
    request.metadata_field.append(_SIGNATURE_DEF_FIELD)
    http_rest_api_util.fill_model_spec(request.model_spec, info)
    return lambda context: http_rest_api_util.model_metadata_to_json(
        self._data_plane.get_model_metadata(request, context))
