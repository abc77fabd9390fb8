"""Servable: what the serving APIs call on one loaded model version.

The contract (as upstream's servables/tensorflow/servable.h):
  * A Servable is what a Loader's servable() returns and what a
    ServableHandle hands to the data plane (model_servers/data_plane.py).
  * Its methods take and return the API protos and know nothing of the
    transport: gRPC, REST and any later protocol reach them through the data
    plane and only translate the wire format and the errors.
  * get_signature_inputs() is what a front end needs to decode a request
    whose wire format has no types of its own (REST JSON): the declared
    dtype and shape of each input. get_signature_outputs() describes what a
    signature returns (the V2 protocol's ModelMetadata lists both).
  * Every method may be called from many request threads at once.
  * `deadline` is the request's absolute deadline in time.monotonic()
    seconds, or None for none. The data plane refuses a request whose
    deadline has passed before the call; bounding the model run itself is
    the servable's business (SavedModelServable gives it to the TensorFlow
    run, which is cancelled when it passes: saved_model_bundle).
  * Failures are raised as ServingError with upstream's codes and texts.
"""

import abc
from typing import Mapping, Optional

import numpy as np

from tensorflow.core.protobuf import meta_graph_pb2
from tensorflow_serving.apis import classification_pb2
from tensorflow_serving.apis import get_model_metadata_pb2
from tensorflow_serving.apis import inference_pb2
from tensorflow_serving.apis import predict_pb2
from tensorflow_serving.apis import regression_pb2


class Servable(abc.ABC):
  """One loaded model version behind the serving APIs. See the module doc."""

  @property
  @abc.abstractmethod
  def name(self) -> str:
    """The model name."""

  @property
  @abc.abstractmethod
  def version(self) -> int:
    """The version number."""

  @abc.abstractmethod
  def get_signature_inputs(
      self, signature_name: str
  ) -> Optional[Mapping[str, meta_graph_pb2.TensorInfo]]:
    """Input alias -> TensorInfo of a signature ("" means serving_default).

    Returns None when there is no such signature; the caller words the
    error, as each protocol has its own text.
    """

  @abc.abstractmethod
  def get_signature_outputs(
      self, signature_name: str
  ) -> Optional[Mapping[str, meta_graph_pb2.TensorInfo]]:
    """Output alias -> TensorInfo of a signature ("" means serving_default).

    Returns None when there is no such signature, as get_signature_inputs.
    """

  @abc.abstractmethod
  def predict(
      self,
      request: predict_pb2.PredictRequest,
      *,
      tensor_content: bool = False,
      deadline: Optional[float] = None,
      inputs: Optional[Mapping[str, np.ndarray]] = None
  ) -> predict_pb2.PredictResponse:
    """Runs a Predict request.

    Args:
      request: the request.
      tensor_content: encode outputs in tensor_content rather than the typed
        fields (--enable_serialization_as_tensor_content).
      deadline: see the module docstring.
      inputs: the inputs already decoded (alias -> array), used instead of
        request.inputs, which is then left empty (a front end whose wire
        format carries raw tensors saves the TensorProto round trip).
    """

  @abc.abstractmethod
  def classify(
      self,
      request: classification_pb2.ClassificationRequest,
      *,
      deadline: Optional[float] = None
  ) -> classification_pb2.ClassificationResponse:
    """Runs a Classify request."""

  @abc.abstractmethod
  def regress(
      self,
      request: regression_pb2.RegressionRequest,
      *,
      deadline: Optional[float] = None) -> regression_pb2.RegressionResponse:
    """Runs a Regress request."""

  @abc.abstractmethod
  def multi_inference(
      self,
      request: inference_pb2.MultiInferenceRequest,
      *,
      deadline: Optional[float] = None
  ) -> inference_pb2.MultiInferenceResponse:
    """Runs the tasks of a MultiInference request."""

  @abc.abstractmethod
  def get_model_metadata(
      self, request: get_model_metadata_pb2.GetModelMetadataRequest
  ) -> get_model_metadata_pb2.GetModelMetadataResponse:
    """Returns the requested metadata of this version."""
