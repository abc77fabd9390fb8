"""Small pieces the TensorFlow APIs share: names, ModelSpecs, tf.Example input.

As upstream's servables/tensorflow/util: the signature and method-name
constants, the response ModelSpec, and turning an Input (ExampleList or
ExampleListWithContext) into the batch of serialized tf.Examples that
classification and regression signatures take. ExampleApi is the one way
Classify and Regress run (they differ only in their checks and results).
"""

import dataclasses
import time
from typing import Any, Callable, Optional, Sequence

import numpy as np

from tensorflow_serving.apis import input_pb2
from tensorflow_serving.apis import model_pb2
from tensorflow_serving.util import metrics
from tensorflow_serving.util import status

DEFAULT_SERVING_SIGNATURE_DEF_KEY = "serving_default"

PREDICT_METHOD_NAME = "tensorflow/serving/predict"
CLASSIFY_METHOD_NAME = "tensorflow/serving/classify"
REGRESS_METHOD_NAME = "tensorflow/serving/regress"

CLASSIFY_INPUTS = "inputs"
CLASSIFY_OUTPUT_CLASSES = "classes"
CLASSIFY_OUTPUT_SCORES = "scores"
REGRESS_INPUTS = "inputs"
REGRESS_OUTPUTS = "outputs"

# TensorFlow's DataTypeString names, which its error messages use.
_DTYPE_STRINGS = {
    1: "float", 2: "double", 3: "int32", 4: "uint8", 5: "int16", 6: "int8",
    7: "string", 8: "complex64", 9: "int64", 10: "bool", 11: "qint8",
    12: "quint8", 13: "qint32", 14: "bfloat16", 15: "qint16", 16: "quint16",
    17: "uint16", 18: "complex128", 19: "half", 20: "resource",
    21: "variant", 22: "uint32", 23: "uint64",
}


def dtype_string(dtype: int) -> str:
  """TensorFlow's short name of a DataType ("float", "int32")."""
  return _DTYPE_STRINGS.get(dtype, f"unknown dtype enum ({dtype})")


def signature_name_of(model_spec: model_pb2.ModelSpec) -> str:
  """The signature a request asks for; empty means serving_default."""
  return model_spec.signature_name or DEFAULT_SERVING_SIGNATURE_DEF_KEY


def find_signature_for_method(signatures, model_spec: model_pb2.ModelSpec,
                              method_name: str, kind: str,
                              method_name_check: bool, pre_process):
  """The requested signature of a Classify or Regress call, checked.

  Args:
    signatures: the bundle's signature name -> Signature map.
    model_spec: the request's ModelSpec (empty signature: serving_default).
    method_name: the method the call needs (CLASSIFY_/REGRESS_METHOD_NAME).
    kind: "classification" or "regression", for the error text.
    method_name_check: --enable_signature_method_name_check: require
      `method_name` instead of checking the signature's inputs and outputs.
    pre_process: checks the signature's inputs and outputs; raises
      ServingError.

  Raises:
    ServingError: INVALID_ARGUMENT with upstream's texts.
  """
  signature_name = signature_name_of(model_spec)
  signature = signatures.get(signature_name)
  if signature is None:
    raise status.invalid_argument(
        f"No signature was found with the name: {signature_name}")
  if method_name_check:
    if signature.method_name != method_name:
      raise status.invalid_argument(
          f"Expected {kind} signature method_name to be {method_name}. "
          f"Was: {signature.method_name}")
  else:
    pre_process(signature)
  return signature


def make_model_spec(out: model_pb2.ModelSpec, name: str,
                    signature_name: Optional[str],
                    version: Optional[int]) -> None:
  """Fills a response's ModelSpec as upstream's MakeModelSpec does.

  Args:
    out: the ModelSpec to fill (cleared first).
    name: the model name.
    signature_name: None to leave it out; "" becomes serving_default.
    version: the version served, or None to leave it out.
  """
  out.Clear()
  out.name = name
  if signature_name is not None:
    out.signature_name = signature_name or DEFAULT_SERVING_SIGNATURE_DEF_KEY
  if version is not None:
    out.version.value = version


def run_and_record(bundle, model_name: str, api: str,
                   feed_names: tuple[str, ...], feeds: Sequence[np.ndarray],
                   fetch_names: tuple[str, ...], version: Optional[int] = None,
                   signature_name: str = "",
                   deadline: Optional[float] = None) -> list[np.ndarray]:
  """bundle.run(), with its wall time added to runtime_latency{model_name,
  API, runtime, version, signature} (version "" when unknown).

  `deadline` (time.monotonic() seconds, or None) bounds the run.
  """
  start = time.perf_counter()
  outputs = bundle.run(feed_names, feeds, fetch_names, deadline)
  metrics.record_runtime_latency(
      model_name, api, (time.perf_counter() - start) * 1e6,
      "" if version is None else str(version), signature_name)
  return outputs


def input_to_serialized_examples(input_proto: input_pb2.Input) -> np.ndarray:
  """Returns the Input's examples as a [N] DT_STRING array of serialized bytes.

  With ExampleListWithContext each example is appended to the serialized
  context, so a feature present in both takes the example's value (protobuf
  merge semantics), as upstream does.

  Raises:
    ServingError: INVALID_ARGUMENT "Input is empty." when there are no
      examples (or no input at all).
  """
  kind = input_proto.WhichOneof("kind")
  if kind == "example_list":
    examples = input_proto.example_list.examples
    serialized = [e.SerializeToString() for e in examples]
  elif kind == "example_list_with_context":
    with_context = input_proto.example_list_with_context
    context = with_context.context.SerializeToString()
    serialized = [context + e.SerializeToString()
                  for e in with_context.examples]
  else:
    serialized = []
  if not serialized:
    raise status.invalid_argument("Input is empty.")
  array = np.empty(len(serialized), dtype=object)
  array[:] = serialized
  return array


@dataclasses.dataclass(frozen=True)
class ExampleApi:
  """An API that runs a batch of tf.Examples through one signature.

  Classify and Regress are the two (classifier.py, regressor.py): the same
  steps, told apart by the fields below.

  Attributes:
    api: the runtime_latency API label ("Classify", "Regress").
    method_name: the method_name the API needs (with the method-name check).
    kind: "classification" or "regression", for error texts.
    response_type: the response message class.
    pre_process: checks a signature; returns (input tensor name, output
      tensor names). Called as pre_process(signature, method_name_check).
    post_process: fills response.result from the fetched outputs; called as
      post_process(signature, num_examples, output_names, outputs, result).
  """

  api: str
  method_name: str
  kind: str
  response_type: type
  pre_process: Callable[..., tuple[str, list[str]]]
  post_process: Callable[..., None]

  def run(self, bundle, request: Any, servable_version: Optional[int], *,
          method_name_check: bool = False,
          deadline: Optional[float] = None) -> Any:
    """Runs `request` on `bundle`; the response echoes name, signature and
    version.

    Args:
      bundle: the SavedModelBundle.
      request: a ClassificationRequest or RegressionRequest.
      servable_version: the version served, echoed in the response.
      method_name_check: --enable_signature_method_name_check.
      deadline: the request's deadline (time.monotonic() seconds), which
        bounds the model run; None: none.

    Raises:
      ServingError: INVALID_ARGUMENT with upstream's texts, or the run's
        own error.
    """
    model_spec = request.model_spec
    signature = find_signature_for_method(
        bundle.signatures, model_spec, self.method_name, self.kind,
        method_name_check, self.pre_process)
    input_name, output_names = self.pre_process(signature, method_name_check)
    response = self.response_type()
    make_model_spec(response.model_spec, model_spec.name,
                    model_spec.signature_name, servable_version)
    examples = input_to_serialized_examples(request.input)
    outputs = run_and_record(bundle, model_spec.name, self.api, (input_name,),
                             [examples], tuple(output_names), servable_version,
                             signature_name_of(model_spec), deadline=deadline)
    self.post_process(signature, len(examples), output_names, outputs,
                      response.result)
    return response
