"""Regress on a SavedModelBundle: tf.Examples in, one float per example out.

A regression signature takes one input, "inputs" (the serialized
tf.Examples), and has one output, "outputs" (DT_FLOAT, [batch] or
[batch, 1]). The method_name is not checked unless
--enable_signature_method_name_check is set. Codes and texts are upstream's.
"""

from typing import Sequence

import numpy as np

from tensorflow_serving.apis import regression_pb2
from tensorflow_serving.servables.tensorflow import saved_model_bundle
from tensorflow_serving.servables.tensorflow import util
from tensorflow_serving.util import status
from tensorflow_serving.util import tensor_codec

_Signature = saved_model_bundle.Signature


def pre_process_regression(
    signature: _Signature,
    method_name_check: bool = False) -> tuple[str, list[str]]:
  """Checks a regression signature.

  Returns:
    (input tensor name, [output tensor name]).

  Raises:
    ServingError: INVALID_ARGUMENT naming what the signature lacks.
  """
  signature_def = signature.signature_def
  if method_name_check and signature.method_name != util.REGRESS_METHOD_NAME:
    raise status.invalid_argument(
        "Expected regression signature method_name to be "
        f"{util.REGRESS_METHOD_NAME}. Was: {signature.method_name}")
  if len(signature_def.inputs) != 1:
    raise status.invalid_argument("Expected one input Tensor.")
  if len(signature_def.outputs) != 1:
    raise status.invalid_argument("Expected one output Tensor.")
  if util.REGRESS_INPUTS not in signature_def.inputs:
    raise status.invalid_argument(
        f"No regression inputs found in SignatureDef: {signature_def}")
  if util.REGRESS_OUTPUTS not in signature_def.outputs:
    raise status.invalid_argument(
        f"No regression outputs found in SignatureDef: {signature_def}")
  return (signature_def.inputs[util.REGRESS_INPUTS].name,
          [signature_def.outputs[util.REGRESS_OUTPUTS].name])


def post_process_regression_result(
    signature: _Signature,
    num_examples: int,
    output_names: Sequence[str],
    outputs: Sequence[np.ndarray],
    result: regression_pb2.RegressionResult,
) -> None:
  """Checks the "outputs" tensor and fills result with one value per example."""
  if len(outputs) != len(output_names):
    raise status.invalid_argument(
        "Expected output_tensors and output_tensor_names to have the same "
        "size.")
  info = signature.signature_def.outputs.get(util.REGRESS_OUTPUTS)
  if info is None:
    raise status.failed_precondition(
        "No regression outputs found in SignatureDef: "
        f"{signature.signature_def}")
  output = None
  for name, array in zip(output_names, outputs):
    if name == info.name:
      output = np.asarray(array)
      break
  if output is None:
    raise status.invalid_argument(
        f"Could not find output tensor '{info.name}'")
  if not (output.ndim == 1 or (output.ndim == 2 and output.shape[1] == 1)):
    raise status.invalid_argument(
        "Expected output Tensor shape to be either [batch_size] or "
        f"[batch_size, 1] but got {tensor_codec.format_shape(output.shape)}")
  if output.shape[0] != num_examples:
    raise status.invalid_argument(
        "Input batch size did not match output batch size: "
        f"{num_examples} vs. {output.shape[0]}")
  if output.dtype != np.float32:
    try:
      got = tensor_codec.dtype_name(tensor_codec.from_numpy_dtype(output.dtype))
    except status.ServingError:
      got = str(output.dtype)
    raise status.invalid_argument(
        f"Expected output Tensor of DT_FLOAT.  Got: {got}")
  if output.size != num_examples:
    raise status.invalid_argument(
        f"Expected output batch size to be {num_examples}.  Got: "
        f"{output.size}")
  regressions = result.regressions
  for value in output.ravel().tolist():
    regressions.add(value=value)


# Regress, the tf.Example API with one float per example: run_regress(bundle,
# request, version, *, method_name_check=False, deadline=None)
# (util.ExampleApi.run).
run_regress = util.ExampleApi(
    "Regress", util.REGRESS_METHOD_NAME, "regression",
    regression_pb2.RegressionResponse, pre_process_regression,
    post_process_regression_result).run
