"""SavedModelServable: the Servable of a SavedModel loaded into a session."""

import dataclasses
import threading
from typing import Mapping, Optional

import numpy as np
from google.protobuf import any_pb2
from tensorflow.core.protobuf import meta_graph_pb2
from tensorflow_serving.apis import classification_pb2
from tensorflow_serving.apis import get_model_metadata_pb2
from tensorflow_serving.apis import inference_pb2
from tensorflow_serving.apis import predict_pb2
from tensorflow_serving.apis import regression_pb2
from tensorflow_serving.core import servable_id as servable_id_lib
from tensorflow_serving.servables.tensorflow import classifier
from tensorflow_serving.servables.tensorflow import get_model_metadata_impl
from tensorflow_serving.servables.tensorflow import multi_inference
from tensorflow_serving.servables.tensorflow import predict_util
from tensorflow_serving.servables.tensorflow import regressor
from tensorflow_serving.servables.tensorflow import saved_model_bundle
from tensorflow_serving.servables.tensorflow import servable
from tensorflow_serving.servables.tensorflow import util


@dataclasses.dataclass(frozen=True)
class SavedModelServableOptions:
  """How requests are checked.

  Attributes:
    enable_signature_method_name_check: require signatures' method_name to
      match the API (--enable_signature_method_name_check). Off by default,
      as upstream, so TF2 exports (all "predict") can classify and regress.
  """

  enable_signature_method_name_check: bool = False


class SavedModelServable(servable.Servable):
  """Serves one SavedModelBundle; owns it and closes it in close()."""

  Options = SavedModelServableOptions

  def __init__(self,
               servable_id: servable_id_lib.ServableId,
               bundle: saved_model_bundle.SavedModelBundle,
               options: SavedModelServableOptions = SavedModelServableOptions()
              ) -> None:
    self._id = servable_id
    self._bundle = bundle
    self._check = options.enable_signature_method_name_check
    self._metadata_lock = threading.Lock()
    self._signature_def_map: any_pb2.Any | None = None  # guarded by lock

  @property
  def name(self) -> str:
    return self._id.name

  @property
  def version(self) -> int:
    return self._id.version

  @property
  def servable_id(self) -> servable_id_lib.ServableId:
    return self._id

  @property
  def bundle(self) -> saved_model_bundle.SavedModelBundle:
    """The loaded model (session, MetaGraphDef, resolved signatures)."""
    return self._bundle

  @property
  def signatures(self) -> Mapping[str, saved_model_bundle.Signature]:
    """Signature key -> resolved signature."""
    return self._bundle.signatures

  def get_signature_inputs(
      self, signature_name: str
  ) -> Optional[Mapping[str, meta_graph_pb2.TensorInfo]]:
    signature = self._bundle.signatures.get(
        signature_name or util.DEFAULT_SERVING_SIGNATURE_DEF_KEY)
    return None if signature is None else signature.signature_def.inputs

  def get_signature_outputs(
      self, signature_name: str
  ) -> Optional[Mapping[str, meta_graph_pb2.TensorInfo]]:
    signature = self._bundle.signatures.get(
        signature_name or util.DEFAULT_SERVING_SIGNATURE_DEF_KEY)
    return None if signature is None else signature.signature_def.outputs

  # `deadline` bounds the TensorFlow run (SavedModelBundle.run: when it
  # passes, the run is cancelled and the call is DEADLINE_EXCEEDED).

  def predict(
      self,
      request: predict_pb2.PredictRequest,
      *,
      tensor_content: bool = False,
      deadline: Optional[float] = None,
      inputs: Optional[Mapping[str, np.ndarray]] = None
  ) -> predict_pb2.PredictResponse:
    return predict_util.run_predict(
        self._bundle, request, self._id.version,
        method_name_check=self._check, tensor_content=tensor_content,
        deadline=deadline, inputs=inputs)

  def classify(
      self,
      request: classification_pb2.ClassificationRequest,
      *,
      deadline: Optional[float] = None
  ) -> classification_pb2.ClassificationResponse:
    return classifier.run_classify(
        self._bundle, request, self._id.version, method_name_check=self._check,
        deadline=deadline)

  def regress(
      self,
      request: regression_pb2.RegressionRequest,
      *,
      deadline: Optional[float] = None) -> regression_pb2.RegressionResponse:
    return regressor.run_regress(
        self._bundle, request, self._id.version, method_name_check=self._check,
        deadline=deadline)

  def multi_inference(
      self,
      request: inference_pb2.MultiInferenceRequest,
      *,
      deadline: Optional[float] = None
  ) -> inference_pb2.MultiInferenceResponse:
    return multi_inference.run_multi_inference(
        self._bundle, request, self._id.version, method_name_check=self._check,
        deadline=deadline)

  def get_model_metadata(
      self, request: get_model_metadata_pb2.GetModelMetadataRequest
  ) -> get_model_metadata_pb2.GetModelMetadataResponse:
    signature_def_map = self._signature_def_map
    if signature_def_map is None:
      with self._metadata_lock:
        if self._signature_def_map is None:
          self._signature_def_map = (
              get_model_metadata_impl.pack_signature_def_map(
                  self._bundle.meta_graph_def))
        signature_def_map = self._signature_def_map
    return get_model_metadata_impl.get_model_metadata(
        request, self._id.name, self._id.version, signature_def_map)

  def close(self) -> None:
    """Frees the session; called by the loader's unload()."""
    self._bundle.close()
