"""GrpcInferenceServiceImpl: the V2 protocol's gRPC service, a thin edge.

inference.GRPCInferenceService (the Open Inference Protocol's RPCs and
Triton's model repository RPCs) over V2InferenceImpl: each RPC turns its
proto into the impl's arguments, calls it and builds the response proto; a
ServingError ends the RPC through grpc_status_util, as for every gRPC
service of this server.

ModelInfer reads typed contents or raw_input_contents (util/v2_tensor_codec,
inside the data plane's handle, so a malformed request is counted like any
failed call) and answers every output in raw_output_contents, which is what
tritonclient and the kserve SDK read: numeric outputs are the Predict
response's tensor_content bytes, unchanged. It is counted in the request
metrics with API label "ModelInfer".

Thread-safe: gRPC calls the methods from its worker threads.
"""

import grpc

from tensorflow.core.framework import tensor_pb2
from tensorflow.core.framework import types_pb2
from tensorflow_serving.apis import grpc_service_pb2
from tensorflow_serving.apis import grpc_service_pb2_grpc
from tensorflow_serving.model_servers import data_plane as data_plane_lib
from tensorflow_serving.model_servers import grpc_status_util
from tensorflow_serving.model_servers import v2_inference_impl
from tensorflow_serving.servables.tensorflow import servable as servable_lib
from tensorflow_serving.util import status
from tensorflow_serving.util import tensor_codec
from tensorflow_serving.util import v2_tensor_codec as codec

API_LABEL = "ModelInfer"

# Numeric dtypes whose tensor_content already is V2's raw layout
# (little-endian, row-major; bools one byte each, 0 or 1).
_RAW_AS_IS = frozenset(
    d.tf_dtype for d in (codec.datatype(n) for n in codec.DATATYPE_NAMES)
    if d.wire_dtype is not None)


def decode_model_infer_request(
    request: grpc_service_pb2.ModelInferRequest
) -> v2_inference_impl.InferRequest:
  """A ModelInferRequest as the impl's InferRequest.

  Raises:
    ServingError: INVALID_ARGUMENT for malformed tensors or parameters.
  """
  raws = request.raw_input_contents
  if raws and len(raws) != len(request.inputs):
    raise status.invalid_argument(
        f"expected {len(request.inputs)} raw_input_contents entries, one per "
        f"input, got {len(raws)}")
  inputs = []
  seen = set()
  for i, tensor in enumerate(request.inputs):
    if tensor.name in seen:
      raise status.invalid_argument(
          f"input '{tensor.name}' is given more than once")
    seen.add(tensor.name)
    value = codec.decode_infer_input(tensor, raws[i] if raws else None)
    inputs.append(v2_inference_impl.InferInput(
        tensor.name, codec.datatype(tensor.datatype), value))
  return v2_inference_impl.InferRequest(
      id=request.id,
      parameters=codec.parameters_dict(request.parameters),
      inputs=inputs,
      outputs=[output.name for output in request.outputs])


def add_raw_output(response: grpc_service_pb2.ModelInferResponse, name: str,
                   tensor: tensor_pb2.TensorProto) -> None:
  """Appends one output, its data in raw_output_contents.

  A numeric tensor's tensor_content is passed on as is; anything else
  (strings, or values in the typed fields) goes through numpy.
  """
  if tensor.dtype in _RAW_AS_IS and (tensor.tensor_content or
                                     _is_empty(tensor)):
    output = response.outputs.add(
        name=name, datatype=codec.datatype_of_tf_dtype(tensor.dtype).name)
    output.shape.extend(d.size for d in tensor.tensor_shape.dim)
    response.raw_output_contents.append(tensor.tensor_content)
    return
  if tensor.dtype == types_pb2.DT_INVALID:
    raise status.internal(f"output {name} has no dtype")
  codec.add_infer_output(response, name,
                         tensor_codec.tensor_proto_to_ndarray(tensor),
                         codec.datatype_of_tf_dtype(tensor.dtype))


def _is_empty(tensor: tensor_pb2.TensorProto) -> bool:
  return any(d.size == 0 for d in tensor.tensor_shape.dim)


class GrpcInferenceServiceImpl(
    grpc_service_pb2_grpc.GRPCInferenceServiceServicer):
  """inference.GRPCInferenceService over V2InferenceImpl."""

  def __init__(self, impl: v2_inference_impl.V2InferenceImpl) -> None:
    self._impl = impl

  # pylint: disable=invalid-name  (the proto's method names)

  def ServerLive(self, request: grpc_service_pb2.ServerLiveRequest,
                 context: grpc.ServicerContext
                ) -> grpc_service_pb2.ServerLiveResponse:
    return grpc_service_pb2.ServerLiveResponse(live=self._impl.server_live())

  def ServerReady(self, request: grpc_service_pb2.ServerReadyRequest,
                  context: grpc.ServicerContext
                 ) -> grpc_service_pb2.ServerReadyResponse:
    return grpc_service_pb2.ServerReadyResponse(
        ready=self._impl.server_ready())

  def ModelReady(self, request: grpc_service_pb2.ModelReadyRequest,
                 context: grpc.ServicerContext
                ) -> grpc_service_pb2.ModelReadyResponse:
    return grpc_service_pb2.ModelReadyResponse(
        ready=self._impl.model_ready(request.name, request.version))

  def ServerMetadata(self, request: grpc_service_pb2.ServerMetadataRequest,
                     context: grpc.ServicerContext
                    ) -> grpc_service_pb2.ServerMetadataResponse:
    return self._impl.server_metadata()

  def ModelMetadata(self, request: grpc_service_pb2.ModelMetadataRequest,
                    context: grpc.ServicerContext
                   ) -> grpc_service_pb2.ModelMetadataResponse:
    return grpc_status_util.serve(
        context, None,
        lambda r, ctx: self._impl.model_metadata(r.name, r.version, ctx),
        request)

  def ModelInfer(self, request: grpc_service_pb2.ModelInferRequest,
                 context: grpc.ServicerContext
                ) -> grpc_service_pb2.ModelInferResponse:
    return grpc_status_util.serve(context, API_LABEL, self._infer, request)

  def _infer(self, request: grpc_service_pb2.ModelInferRequest,
             context: data_plane_lib.RequestContext
            ) -> grpc_service_pb2.ModelInferResponse:

    def decode(unused_servable: servable_lib.Servable
              ) -> v2_inference_impl.InferRequest:
      return decode_model_infer_request(request)

    result = self._impl.infer(request.model_name, request.model_version,
                              decode, context)
    response = grpc_service_pb2.ModelInferResponse(
        model_name=result.model_name, model_version=result.model_version,
        id=result.id)
    for name, tensor in result.outputs:
      add_raw_output(response, name, tensor)
    return response

  def RepositoryIndex(self, request: grpc_service_pb2.RepositoryIndexRequest,
                      context: grpc.ServicerContext
                     ) -> grpc_service_pb2.RepositoryIndexResponse:
    return grpc_status_util.serve(
        context, None,
        lambda r, unused_ctx: self._impl.repository_index(
            r.repository_name, r.ready), request)

  def RepositoryModelLoad(
      self, request: grpc_service_pb2.RepositoryModelLoadRequest,
      context: grpc.ServicerContext
  ) -> grpc_service_pb2.RepositoryModelLoadResponse:

    def load(r, ctx):
      self._impl.repository_model_load(
          r.repository_name, r.model_name,
          repository_parameters_dict(r.parameters), ctx)
      return grpc_service_pb2.RepositoryModelLoadResponse()

    return grpc_status_util.serve(context, None, load, request)

  def RepositoryModelUnload(
      self, request: grpc_service_pb2.RepositoryModelUnloadRequest,
      context: grpc.ServicerContext
  ) -> grpc_service_pb2.RepositoryModelUnloadResponse:

    def unload(r, ctx):
      self._impl.repository_model_unload(
          r.repository_name, r.model_name,
          repository_parameters_dict(r.parameters), ctx)
      return grpc_service_pb2.RepositoryModelUnloadResponse()

    return grpc_status_util.serve(context, None, unload, request)


def repository_parameters_dict(parameters) -> dict:
  """A map of ModelRepositoryParameter as {name: Python value}."""
  result = {}
  for key, parameter in parameters.items():
    choice = parameter.WhichOneof("parameter_choice")
    result[key] = None if choice is None else getattr(parameter, choice)
  return result
