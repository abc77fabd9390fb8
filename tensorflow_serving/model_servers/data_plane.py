"""DataPlane: the one request path under every protocol.

Upstream writes the serving APIs once, transport-free (the *_impl classes),
and has gRPC and REST call them; Seldon MLServer calls the same shape its
DataPlane. Here every front end (the gRPC PredictionService and
ModelService, the REST API, and whatever protocol comes next) decodes its
wire format into the API protos, calls one DataPlane method and encodes the
answer; every rule that is not about a wire format is written here, once:

  * the handle: the ModelSpec is resolved to a ServableHandle by the serving
    core, held for the whole call, and released before the response is
    encoded;
  * the servable kind: a servable that is not what the call needs (e.g. a
    hashmap asked to Predict) is UNIMPLEMENTED "Servable <model> does not
    support this API";
  * the deadline: a call whose RequestContext.deadline has passed before it
    starts, or by the time it ends, is DEADLINE_EXCEEDED (the client has
    given up; nothing is logged). The deadline is also handed to the
    servable, which bounds the TensorFlow run by it;
  * request logging: a successful Predict, Classify, Regress or
    MultiInference is offered to the core's request loggers;
  * metrics: each call is counted in :tensorflow:serving:request_count
    {model_name, status, API, entrypoint, version, signature} and, when it
    succeeds, timed from the request's arrival in request_latency
    {model_name, API, entrypoint, version, signature}; API and entrypoint
    come from the context, the rest is chosen here, from what the server
    has, never from the client's text as such (see "How the metrics'
    labels are chosen" below; count_refused() does the same for requests
    an edge refused before they got here);
  * errors: everything a call raises leaves as a ServingError; a foreign
    exception (a bug) is logged with its traceback and converted by
    status.from_exception, so it has the same code (status.CATCH_ALL_CODE)
    on every transport. Turning ServingErrors into gRPC or HTTP statuses is
    still the edges' job (grpc_status_util, http_server.to_http_status).

Thread-safe: the front ends call it from their worker threads; it keeps no
state of its own.
"""

import dataclasses
import time
from typing import Any, Callable, Mapping, Optional, Protocol, TypeVar

from absl import logging
from google.protobuf import message as message_lib
import numpy as np

from tensorflow_serving.apis import classification_pb2
from tensorflow_serving.apis import get_model_metadata_pb2
from tensorflow_serving.apis import get_model_status_pb2
from tensorflow_serving.apis import inference_pb2
from tensorflow_serving.apis import model_pb2
from tensorflow_serving.apis import predict_pb2
from tensorflow_serving.apis import regression_pb2
from tensorflow_serving.core import servable_handle
from tensorflow_serving.core import servable_state_monitor as monitor_lib
from tensorflow_serving.model_servers import get_model_status_impl
from tensorflow_serving.servables.tensorflow import get_model_metadata_impl
from tensorflow_serving.servables.tensorflow import servable as servable_lib
from tensorflow_serving.servables.tensorflow import util as tf_util
from tensorflow_serving.util import metrics
from tensorflow_serving.util import status
from tensorflow_serving.util import tensor_codec

T = TypeVar("T")
S = TypeVar("S")

Servable = servable_lib.Servable


class ServingCore(Protocol):
  """What the data plane needs from the serving core; ServerCore has it."""

  def get_servable_handle(
      self, model_spec: model_pb2.ModelSpec) -> servable_handle.ServableHandle:
    """The servable a ModelSpec names (NOT_FOUND etc. as ServingError)."""

  @property
  def servable_state_monitor(self) -> monitor_lib.ServableStateMonitor:
    """Every version's lifecycle state (GetModelStatus)."""

  def log_request(self, request: message_lib.Message
                  | Callable[[], message_lib.Message],
                  response: message_lib.Message) -> None:
    """Offers a served request to its model's request loggers; never raises.

    `request` may be a function that builds it: it is called only when the
    model has request loggers.
    """

  def configured_model_names(self) -> tuple[str, ...]:
    """The models of the config in force, in its order; cheap (no copy)."""


@dataclasses.dataclass(frozen=True, slots=True)
class RequestContext:
  """What the data plane knows of one request besides its proto.

  Attributes:
    entrypoint: the protocol it came by, metrics.GRPC or metrics.REST (the
      entrypoint label of request_latency).
    api: the API label of request_latency: "Predict", "Classify", "Regress"
      over gRPC, the URL verb ("predict", ...; "" for the GETs) over REST.
      None: the call is not counted in the request metrics (gRPC's
      MultiInference, GetModelMetadata and GetModelStatus, as upstream).
    deadline: the absolute deadline in time.monotonic() seconds, from the
      gRPC deadline or --rest_api_timeout_in_ms; None: none.
    start: when the request arrived (time.monotonic()); latencies and the
      deadline's length are measured from it.
  """

  entrypoint: str
  api: Optional[str] = None
  deadline: Optional[float] = None
  start: float = dataclasses.field(default_factory=time.monotonic)

  @classmethod
  def with_timeout(cls, entrypoint: str, api: Optional[str],
                   timeout_seconds: Optional[float]) -> "RequestContext":
    """A context starting now whose deadline is timeout_seconds away."""
    start = time.monotonic()
    deadline = None if timeout_seconds is None else start + timeout_seconds
    return cls(entrypoint, api, deadline, start)

  def for_api(self, api: Optional[str]) -> "RequestContext":
    """The same request with its API label, for an edge that learns the
    label late (REST, from the URL). Cheaper than dataclasses.replace."""
    return RequestContext(self.entrypoint, api, self.deadline, self.start)

  def deadline_exceeded(self) -> status.ServingError:
    """The error of a request that ran out of time."""
    limit_ms = round(((self.deadline or self.start) - self.start) * 1000)
    return status.deadline_exceeded(
        f"Deadline exceeded: the request took longer than {limit_ms} ms")


# How the metrics' labels are chosen. Their values come from the server's
# own configuration, never from a client's text as such, so that a client
# cannot create series at will (each new value is a series, kept forever):
#   model_name: the name as requested once a version answered, or when the
#     config in force has that model; "" when the call names no model (GET
#     /v1/models); metrics.UNKNOWN otherwise (a name the server lacks).
#   version: the version that answered; metrics.NOT_APPLICABLE ("") for a
#     call no version answers (model status, the model list);
#     metrics.UNKNOWN when the call failed before a version was resolved
#     (an unknown model, version or label; a refused request).
#   signature: the signature that ran ("serving_default" when the request
#     names none) if the version that answered has it; NOT_APPLICABLE for a
#     call that runs none (status, metadata, the list, MultiInference,
#     run() without one); UNKNOWN otherwise.
# API and entrypoint are the RequestContext's.

# _serve's `signature` when the request's ModelSpec names it (read once the
# call is done: REST fills it while decoding).
_FROM_MODEL_SPEC = object()


def signature_label(servable: Any, signature_name: str) -> str:
  """The signature label of a request for `signature_name` on `servable`."""
  name = signature_name or tf_util.DEFAULT_SERVING_SIGNATURE_DEF_KEY
  # getattr rather than isinstance(Servable): an ABC check costs more than
  # the whole lookup on the hot path.
  get_inputs = getattr(servable, "get_signature_inputs", None)
  if get_inputs is not None and get_inputs(name) is not None:
    return name
  return metrics.UNKNOWN


class DataPlane:
  """The serving APIs over a ServingCore, for every front end.

  See the module docstring for what each call does besides running.
  """

  def __init__(self, core: ServingCore) -> None:
    self._core = core
    # (configured_model_names(), the same as a set), for the model_name
    # label of calls that fail before a version answers; replaced whole
    # when the core's tuple changes.
    self._names: tuple[tuple[str, ...], frozenset[str]] = ((), frozenset())

  # ------------------------------------------------------------ the APIs

  def predict(
      self,
      request: predict_pb2.PredictRequest,
      context: RequestContext,
      *,
      tensor_content: bool = False,
      decode: Optional[Callable[[Servable],
                                Optional[Mapping[str, np.ndarray]]]] = None
  ) -> predict_pb2.PredictResponse:
    """Runs a Predict request.

    Args:
      request: the request (its inputs may still be empty; see decode).
      context: the request's context.
      tensor_content: outputs in tensor_content rather than the typed
        fields (gRPC's --enable_serialization_as_tensor_content).
      decode: fills `request` from the wire format inside the handle, with
        the servable that will run it (REST JSON is typed by the
        signature's inputs: Servable.get_signature_inputs); its errors are
        the call's errors. It may instead return the inputs as arrays (alias
        -> array; the V2 protocol's raw tensors), which then run without a
        TensorProto round trip; request.inputs is filled from them only if
        the request is logged.
    """
    arrays: list[Mapping[str, np.ndarray]] = []

    def call(servable: Servable) -> predict_pb2.PredictResponse:
      inputs = decode(servable) if decode is not None else None
      if inputs is not None:
        arrays.append(inputs)
      return servable.predict(request, tensor_content=tensor_content,
                              deadline=context.deadline, inputs=inputs)

    def logged_request() -> predict_pb2.PredictRequest:
      if arrays:
        for alias, value in arrays[0].items():
          tensor_codec.ndarray_to_tensor_proto(value, request.inputs[alias])
      return request

    response = self._serve(request.model_spec, context, Servable, call, None,
                           _FROM_MODEL_SPEC)
    self._core.log_request(logged_request if arrays else request, response)
    return response

  def classify(
      self, request: classification_pb2.ClassificationRequest,
      context: RequestContext) -> classification_pb2.ClassificationResponse:
    """Runs a Classify request."""
    return self._serve(
        request.model_spec, context, Servable,
        lambda s: s.classify(request, deadline=context.deadline), request,
        _FROM_MODEL_SPEC)

  def regress(self, request: regression_pb2.RegressionRequest,
              context: RequestContext) -> regression_pb2.RegressionResponse:
    """Runs a Regress request."""
    return self._serve(
        request.model_spec, context, Servable,
        lambda s: s.regress(request, deadline=context.deadline), request,
        _FROM_MODEL_SPEC)

  def multi_inference(
      self, request: inference_pb2.MultiInferenceRequest,
      context: RequestContext) -> inference_pb2.MultiInferenceResponse:
    """Runs a MultiInference request on the model of its first task."""
    # The model (and version) come from the first task, as upstream.
    if request.tasks and request.tasks[0].HasField("model_spec"):
      model_spec = request.tasks[0].model_spec
    else:
      model_spec = model_pb2.ModelSpec()
    return self._serve(
        model_spec, context, Servable,
        lambda s: s.multi_inference(request, deadline=context.deadline),
        request, None)

  def get_model_metadata(
      self, request: get_model_metadata_pb2.GetModelMetadataRequest,
      context: RequestContext
  ) -> get_model_metadata_pb2.GetModelMetadataResponse:
    """Answers a GetModelMetadata request (checked before the model lookup,
    as upstream)."""

    return self._serve(request.model_spec, context, Servable,
                       lambda s: s.get_model_metadata(request), None, None,
                       check=lambda: get_model_metadata_impl.validate_request(
                           request))

  def get_model_status(
      self, request: get_model_status_pb2.GetModelStatusRequest,
      context: RequestContext
  ) -> get_model_status_pb2.GetModelStatusResponse:
    """Every version's state from the core's monitor (no handle needed)."""
    return self._observe(
        request.model_spec.name, context,
        lambda: get_model_status_impl.get_model_status(self._core, request))

  def list_models(
      self,
      context: RequestContext) -> list[get_model_status_impl.ModelStatus]:
    """Every configured model with what GetModelStatus says of it.

    Not in upstream (tensorflow/serving#795): REST's GET /v1/models. In the
    config's order; a model with no version yet (or none left) is there
    too, with GetModelStatus's error.
    """
    return self._observe(
        "", context,
        lambda: get_model_status_impl.list_model_statuses(self._core))

  def run(self, model_spec: model_pb2.ModelSpec, context: RequestContext,
          fn: Callable[[S], T], *, kind: type = Servable,
          signature: Optional[str] = None) -> T:
    """Runs fn(servable) on the servable of model_spec, as one request.

    The generic entry: the handle, the kind check (`kind`: the type fn
    needs), the deadline, metrics and errors as the typed methods have
    them; no request logging (there is no request proto to log).
    `signature`: the signature fn runs ("" for the default one), for the
    metrics' signature label; None if it runs none.
    """
    return self._serve(model_spec, context, kind, fn, None, signature)

  def count_refused(self, context: RequestContext, model_name: str,
                    error: status.ServingError) -> None:
    """Counts a request an edge refused before calling the data plane.

    (A malformed URL, body or Content-Encoding.) With this, request_count
    sees every request exactly once.
    """
    if context.api is not None:
      metrics.record_request(self._model_label(model_name), metrics.UNKNOWN,
                             metrics.UNKNOWN, context.api, context.entrypoint,
                             error.code, None)

  # ----------------------------------------------------------- the path

  def _serve(self, model_spec: model_pb2.ModelSpec, context: RequestContext,
             kind: type, fn: Callable[[Any], T],
             log_request: Optional[message_lib.Message], signature: Any, *,
             check: Optional[Callable[[], None]] = None) -> T:
    """fn(servable) as one request, holding the servable's handle.

    Args:
      model_spec: which servable.
      context: the request's context.
      kind: the type the servable must be (UNIMPLEMENTED otherwise).
      fn: the work.
      log_request: the request to offer to the request loggers on success.
      signature: names the signature fn runs, for the metrics:
        _FROM_MODEL_SPEC (the ModelSpec's), a name, or None (none).
      check: validation run before the lookup.
    """
    # Written inline rather than through _observe and a closure: this is
    # every inference request's path.
    version = metrics.UNKNOWN
    servable = None
    code = status.Code.OK
    try:
      deadline = context.deadline
      if deadline is not None and time.monotonic() >= deadline:
        raise context.deadline_exceeded()
      if check is not None:
        check()
      with self._core.get_servable_handle(model_spec) as handle:
        servable = handle.servable
        version = str(handle.id.version)
        if not isinstance(servable, kind):
          raise status.unimplemented(
              f"Servable {model_spec.name} does not support this API")
        response = fn(servable)
      if deadline is not None and time.monotonic() >= deadline:
        raise context.deadline_exceeded()
    except Exception as e:  # pylint: disable=broad-except
      error = self._failed(e, context, model_spec.name)
      code = error.code
      if error is e:
        raise
      raise error from e
    finally:
      if context.api is not None:
        if servable is None:
          model_name = self._model_label(model_spec.name)
          signature_name = (metrics.UNKNOWN if signature is not None else
                            metrics.NOT_APPLICABLE)
        else:
          model_name = model_spec.name
          if signature is None:
            signature_name = metrics.NOT_APPLICABLE
          else:
            signature_name = signature_label(
                servable, model_spec.signature_name
                if signature is _FROM_MODEL_SPEC else signature)
        metrics.record_request(model_name, version, signature_name,
                               context.api, context.entrypoint, code,
                               (time.monotonic() - context.start) * 1e6)
    if log_request is not None:
      self._core.log_request(log_request, response)
    return response

  def _observe(self, model_name: str, context: RequestContext,
               call: Callable[[], T]) -> T:
    """call() as one request that no version answers (status, the list)."""
    code = status.Code.OK
    try:
      deadline = context.deadline
      if deadline is not None and time.monotonic() >= deadline:
        raise context.deadline_exceeded()
      result = call()
      if deadline is not None and time.monotonic() >= deadline:
        raise context.deadline_exceeded()
      return result
    except Exception as e:  # pylint: disable=broad-except
      error = self._failed(e, context, model_name)
      code = error.code
      if error is e:
        raise
      raise error from e
    finally:
      if context.api is not None:
        metrics.record_request(
            self._model_label(model_name), metrics.NOT_APPLICABLE,
            metrics.NOT_APPLICABLE, context.api, context.entrypoint, code,
            (time.monotonic() - context.start) * 1e6)

  def _failed(self, e: Exception, context: RequestContext,
              model_name: str) -> status.ServingError:
    """The ServingError a failed call leaves with (a bug's is logged)."""
    if isinstance(e, status.ServingError):
      logging.vlog(1, "%s request for %s failed: %s", context.api or "A",
                   model_name, e.message)
      if (e.code == status.Code.DEADLINE_EXCEEDED and
          context.deadline is not None):
        # The model run was cut off by the deadline (TensorFlow says "Timed
        # out waiting for notification"): say which deadline.
        return context.deadline_exceeded()
      return e
    # A bug must fail one request, not the server, and read the same on
    # every transport.
    logging.exception("%s request for %s raised unexpectedly",
                      context.api or "A", model_name)
    return status.from_exception(e)

  def _model_label(self, model_name: str) -> str:
    """The model_name label of a call no version answered (see above)."""
    if not model_name:
      return metrics.NOT_APPLICABLE
    names = self._core.configured_model_names()
    cached = self._names
    if names is not cached[0]:
      cached = self._names = (names, frozenset(names))
    return model_name if model_name in cached[1] else metrics.UNKNOWN
