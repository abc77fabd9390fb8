"""Classify on a SavedModelBundle: tf.Examples in, (label, score) lists out.

A classification signature takes one input, "inputs" (the serialized
tf.Examples), and has a "classes" output (DT_STRING [batch, num_classes]), a
"scores" output (DT_FLOAT [batch, num_classes]) or both. With scores only, the
labels are empty; with classes only, the scores are 0. The method_name is not
checked unless --enable_signature_method_name_check is set (TF2 exports name
every signature tensorflow/serving/predict). Codes and texts are upstream's.
"""

from typing import Optional, Sequence

import numpy as np

from tensorflow_serving.apis import classification_pb2
from tensorflow_serving.servables.tensorflow import saved_model_bundle
from tensorflow_serving.servables.tensorflow import util
from tensorflow_serving.util import status
from tensorflow_serving.util import tensor_codec

_Signature = saved_model_bundle.Signature


def _dtype_name(array: np.ndarray) -> str:
  try:
    return tensor_codec.dtype_name(tensor_codec.from_numpy_dtype(array.dtype))
  except status.ServingError:
    return str(array.dtype)


def _label(value) -> str:
  if isinstance(value, bytes):
    return value.decode("utf-8", "replace")
  return str(value)


def pre_process_classification(
    signature: _Signature,
    method_name_check: bool = False) -> tuple[str, list[str]]:
  """Checks a classification signature.

  Returns:
    (input tensor name, output tensor names: classes first, then scores).

  Raises:
    ServingError: INVALID_ARGUMENT naming what the signature lacks.
  """
  signature_def = signature.signature_def
  if (method_name_check and
      signature.method_name != util.CLASSIFY_METHOD_NAME):
    raise status.invalid_argument(
        "Expected classification signature method_name to be "
        f"{util.CLASSIFY_METHOD_NAME}. Was: {signature.method_name}")
  if len(signature_def.inputs) != 1:
    raise status.invalid_argument("Expected one input Tensor.")
  if len(signature_def.outputs) not in (1, 2):
    raise status.invalid_argument(
        "Expected one or two output Tensors, found "
        f"{len(signature_def.outputs)}")
  if util.CLASSIFY_INPUTS not in signature_def.inputs:
    raise status.invalid_argument(
        f"No classification inputs found in SignatureDef: {signature_def}")
  outputs = signature_def.outputs
  if (util.CLASSIFY_OUTPUT_CLASSES not in outputs and
      util.CLASSIFY_OUTPUT_SCORES not in outputs):
    raise status.invalid_argument(
        "Expected classification signature outputs to contain at least one "
        f'of "{util.CLASSIFY_OUTPUT_CLASSES}" or '
        f'"{util.CLASSIFY_OUTPUT_SCORES}". Signature was: {signature_def}')
  output_names = [
      outputs[key].name
      for key in (util.CLASSIFY_OUTPUT_CLASSES, util.CLASSIFY_OUTPUT_SCORES)
      if key in outputs
  ]
  return signature_def.inputs[util.CLASSIFY_INPUTS].name, output_names


def _check_output(array: np.ndarray, what: str, want_dtype: str,
                  num_examples: int) -> None:
  if array.ndim != 2:
    raise status.invalid_argument(
        "Expected Tensor shape: [batch_size num_classes] but got "
        f"{tensor_codec.format_shape(array.shape)}")
  dtype = _dtype_name(array)
  if dtype != want_dtype:
    raise status.invalid_argument(
        f"Expected {what} Tensor of {want_dtype}. Got: {dtype}")
  if array.shape[0] != num_examples:
    raise status.invalid_argument(
        f"Expected {what} output batch size of {num_examples}. "
        f"Got: {array.shape[0]}")


def post_process_classification_result(
    signature: _Signature,
    num_examples: int,
    output_names: Sequence[str],
    outputs: Sequence[np.ndarray],
    result: classification_pb2.ClassificationResult,
) -> None:
  """Checks the classes/scores outputs and fills result.

  Args:
    signature: the classification signature.
    num_examples: how many examples were sent.
    output_names: tensor names of `outputs` (may hold other tensors too, as in
      MultiInference).
    outputs: the fetched arrays.
    result: filled with one Classifications per example.
  """
  if len(outputs) != len(output_names):
    raise status.invalid_argument(
        f"Expected {len(output_names)} output tensor(s).  Got: {len(outputs)}")
  signature_outputs = signature.signature_def.outputs
  classes_info = signature_outputs.get(util.CLASSIFY_OUTPUT_CLASSES)
  scores_info = signature_outputs.get(util.CLASSIFY_OUTPUT_SCORES)
  classes: Optional[np.ndarray] = None
  scores: Optional[np.ndarray] = None
  for name, array in zip(output_names, outputs):
    if classes_info is not None and name == classes_info.name:
      classes = np.asarray(array)
    elif scores_info is not None and name == scores_info.name:
      scores = np.asarray(array)

  if classes is not None:
    _check_output(classes, "classes", "DT_STRING", num_examples)
  if scores is not None:
    _check_output(scores, "scores", "DT_FLOAT", num_examples)
  if classes is not None and scores is not None:
    if classes.shape[1] != scores.shape[1]:
      raise status.invalid_argument(
          "Tensors class and score should match in dim_size(1). Got "
          f"{classes.shape[1]} vs. {scores.shape[1]}")

  # Labels are bytes; Class.label is a proto string, so invalid UTF-8 becomes
  # U+FFFD instead of failing the whole response.
  label_rows = ([[_label(v) for v in row] for row in classes.tolist()]
                if classes is not None else None)
  score_rows = scores.tolist() if scores is not None else None
  for i in range(num_examples):
    classes_proto = result.classifications.add().classes
    if label_rows is not None and score_rows is not None:
      for label, score in zip(label_rows[i], score_rows[i]):
        classes_proto.add(label=label, score=score)
    elif label_rows is not None:
      for label in label_rows[i]:
        classes_proto.add(label=label)
    elif score_rows is not None:
      for score in score_rows[i]:
        classes_proto.add(score=score)


# run_classify(bundle, request, version, *, method_name_check=False,
# deadline=None) runs a ClassificationRequest (util.ExampleApi.run).
run_classify = util.ExampleApi("Classify", util.CLASSIFY_METHOD_NAME,
                               "classification",
                               classification_pb2.ClassificationResponse,
                               pre_process_classification,
                               post_process_classification_result).run
