"""PredictionServiceImpl: the gRPC PredictionService, a thin edge.

Each RPC hands its request, with a RequestContext (entrypoint "GRPC", the
metrics API label, the gRPC deadline), to the transport-free DataPlane
(model_servers/data_plane.py), which finds the model version, checks the
servable kind, runs the call, logs it, records the metrics and turns any
failure into a ServingError; this module only turns that error into the gRPC
status (grpc_status_util).

Like upstream, Predict, Classify and Regress are counted in
/tensorflow/serving/request_count and request_latency; MultiInference and
GetModelMetadata are not.
"""

import dataclasses
import grpc

from tensorflow_serving.apis import classification_pb2
from tensorflow_serving.apis import get_model_metadata_pb2
from tensorflow_serving.apis import inference_pb2
from tensorflow_serving.apis import predict_pb2
from tensorflow_serving.apis import prediction_service_pb2_grpc
from tensorflow_serving.apis import regression_pb2
from tensorflow_serving.model_servers import data_plane as data_plane_lib
from tensorflow_serving.model_servers import grpc_status_util


@dataclasses.dataclass(frozen=True)
class PredictionServiceImplOptions:
  """Attributes:

  enable_serialization_as_tensor_content: Predict outputs go in
    tensor_content instead of the typed *_val fields
    (--enable_serialization_as_tensor_content).
  """

  enable_serialization_as_tensor_content: bool = False


class PredictionServiceImpl(prediction_service_pb2_grpc.PredictionServiceServicer):
  """tensorflow.serving.PredictionService over a DataPlane.

  Thread-safe: gRPC calls the methods from its worker threads.
  """

  Options = PredictionServiceImplOptions

  def __init__(self, data_plane: data_plane_lib.DataPlane,
               options: PredictionServiceImplOptions = (
                   PredictionServiceImplOptions())) -> None:
    self._data_plane = data_plane
    self._tensor_content = options.enable_serialization_as_tensor_content

  def _predict(self, request: predict_pb2.PredictRequest,
               context: data_plane_lib.RequestContext
              ) -> predict_pb2.PredictResponse:
    return self._data_plane.predict(request, context,
                                    tensor_content=self._tensor_content)

  def Predict(self, request: predict_pb2.PredictRequest,
              context: grpc.ServicerContext) -> predict_pb2.PredictResponse:
    return grpc_status_util.serve(context, "Predict", self._predict, request)

  def Classify(
      self, request: classification_pb2.ClassificationRequest,
      context: grpc.ServicerContext
  ) -> classification_pb2.ClassificationResponse:
    return grpc_status_util.serve(context, "Classify",
                                  self._data_plane.classify, request)

  def Regress(
      self, request: regression_pb2.RegressionRequest,
      context: grpc.ServicerContext) -> regression_pb2.RegressionResponse:
    return grpc_status_util.serve(context, "Regress",
                                  self._data_plane.regress, request)

  def MultiInference(
      self, request: inference_pb2.MultiInferenceRequest,
      context: grpc.ServicerContext) -> inference_pb2.MultiInferenceResponse:
    return grpc_status_util.serve(context, None,
                                  self._data_plane.multi_inference, request)

  def GetModelMetadata(
      self, request: get_model_metadata_pb2.GetModelMetadataRequest,
      context: grpc.ServicerContext
  ) -> get_model_metadata_pb2.GetModelMetadataResponse:
    return grpc_status_util.serve(context, None,
                                  self._data_plane.get_model_metadata, request)
