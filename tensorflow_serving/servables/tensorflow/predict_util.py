"""Predict on a SavedModelBundle: check the request, run, encode the outputs.

The checks and their texts follow upstream's predict_util and TensorFlow's
saved_model GetInputValues, in the same order:
  1. the signature exists (FAILED_PRECONDITION otherwise);
  2. with --enable_signature_method_name_check, its method_name is one of
     predict/classify/regress (INTERNAL otherwise, as upstream);
  3. the number of inputs matches (fewer is fine only when the signature has
     default inputs);
  4. every signature input is sent or has a default, and parses;
  5. no request input is left unused;
  6. output_filter names known, distinct outputs.
Input shapes are not checked: tensors are fed as sent and only the graph's ops
can reject them. Dtypes are checked before the run, with the text upstream's
session gives for a fed tensor of the wrong dtype: "Expects arg[i] to be
<expected> but <actual> is provided", i being the input's position among the
run's feed tensor names in sorted order, as TensorFlow's DirectSession
numbers them.
"""

from typing import Callable, Mapping, Optional, Sequence

import numpy as np

from tensorflow.core.framework import tensor_pb2
from tensorflow_serving.apis import predict_pb2
from tensorflow_serving.servables.tensorflow import saved_model_bundle
from tensorflow_serving.servables.tensorflow import util
from tensorflow_serving.util import status
from tensorflow_serving.util import tensor_codec

_Signature = saved_model_bundle.Signature


def get_predict_signature(bundle: saved_model_bundle.SavedModelBundle,
                          signature_name: str,
                          method_name_check: bool = False) -> _Signature:
  """Returns the signature Predict runs, after checks 1 and 2 above."""
  signature = bundle.signatures.get(signature_name)
  if signature is None:
    raise status.failed_precondition(
        f'Serving signature key "{signature_name}" not found.')
  if method_name_check and signature.method_name not in (
      util.PREDICT_METHOD_NAME, util.CLASSIFY_METHOD_NAME,
      util.REGRESS_METHOD_NAME):
    raise status.internal(
        "Expected prediction signature method_name to be one of {"
        f"{util.PREDICT_METHOD_NAME}, {util.CLASSIFY_METHOD_NAME}, "
        f"{util.REGRESS_METHOD_NAME}}}. Was: {signature.method_name}")
  return signature


def _join(names) -> str:
  return ",".join(sorted(names))


def _check_inputs_size(signature: _Signature, sent: Sequence[str]) -> None:
  expected = len(signature.input_aliases)
  if len(sent) > expected or (len(sent) < expected and
                              not signature.defaults):
    sent_set = set(sent)
    wanted = set(signature.input_aliases)
    raise status.invalid_argument(
        f"input size does not match signature: {len(sent)}!={expected} "
        f"len({{{_join(sent_set)}}}) != len({{{_join(wanted)}}}). "
        f"Sent extra: {{{_join(sent_set - wanted)}}}. "
        f"Missing but required: {{{_join(wanted - sent_set)}}}.")


def _collect_feeds(
    signature: _Signature,
    sent: Mapping[str, object],
    to_array: Callable[[str, object], np.ndarray],
) -> list[np.ndarray]:
  """Returns one array per signature input (sorted aliases), checks 3-5."""
  _check_inputs_size(signature, list(sent))
  feeds = []
  used = 0
  for alias in signature.input_aliases:
    value = sent.get(alias)
    if value is None:
      default = signature.defaults.get(alias)
      if default is None:
        raise status.invalid_argument(
            f"Signature input alias: {alias}(feed name: "
            f"{signature.input_names[alias]}) not found in request and no "
            "default value provided. Inputs expected to be in the request {"
            f"{_join(sent)}}}, or default input alias set: "
            f"{_join(signature.defaults)}")
      feeds.append(default)
      continue
    used += 1
    feeds.append(to_array(alias, value))
  if sent and used != len(sent):
    used_names = [a for a in signature.input_aliases if a in sent]
    raise status.invalid_argument(
        "Inputs contains invalid name. Used request inputs: "
        f"{_join(used_names)}, request input: {_join(sent)}")
  return feeds


def _type_mismatch(signature: _Signature, alias: str, actual: int,
                   expected: int) -> status.ServingError:
  feed_name = signature.input_names[alias]
  index = sorted(signature.feed_names).index(feed_name)
  return status.invalid_argument(
      f"Expects arg[{index}] to be {util.dtype_string(expected)} but "
      f"{util.dtype_string(actual)} is provided")


def _proto_to_array(signature: _Signature):
  """Decoder of request TensorProtos for one signature (dtype-checked)."""

  def to_array(alias: str, proto: tensor_pb2.TensorProto) -> np.ndarray:
    expected = signature.input_dtypes[alias]
    # An unset dtype is left to the codec, which says so.
    if expected and proto.dtype and proto.dtype != expected:
      raise _type_mismatch(signature, alias, proto.dtype, expected)
    try:
      return tensor_codec.tensor_proto_to_ndarray(proto)
    except status.ServingError as e:
      raise e.with_prefix(f"tensor parsing error: {alias}: ") from None

  return to_array


def _array_input(signature: _Signature):
  """Checker of inputs given already decoded, as arrays (dtype-checked as
  TensorProtos are)."""

  def to_array(alias: str, value: np.ndarray) -> np.ndarray:
    expected = signature.input_dtypes[alias]
    actual = tensor_codec.from_numpy_dtype(value.dtype)
    if expected and actual != expected:
      raise _type_mismatch(signature, alias, actual, expected)
    return value

  return to_array


def _output_aliases(signature: _Signature,
                    output_filter: Sequence[str]) -> tuple[str, ...]:
  """The aliases to fetch: output_filter (checked) or all, check 6."""
  if not output_filter:
    return signature.output_aliases
  seen = set()
  for alias in output_filter:
    if alias not in signature.output_names:
      raise status.invalid_argument(
          f"output tensor alias not found in signature: {alias} Outputs "
          f"expected to be in the set {{{_join(signature.output_aliases)}}}.")
    if alias in seen:
      raise status.invalid_argument(f"duplicate output tensor alias: {alias}")
    seen.add(alias)
  return tuple(output_filter)


def _run(bundle: saved_model_bundle.SavedModelBundle, signature: _Signature,
         feeds: list[np.ndarray], aliases: tuple[str, ...],
         model_name: str, version: Optional[int],
         deadline: Optional[float]) -> list[np.ndarray]:
  if signature.unsupported:
    raise status.unimplemented(
        f"Signature {signature.name} cannot be run: {signature.unsupported}")
  if aliases is signature.output_aliases:
    fetch_names = signature.fetch_names
  else:
    fetch_names = tuple(signature.output_names[a] for a in aliases)
  return util.run_and_record(bundle, model_name, "Predict",
                             signature.feed_names, feeds, fetch_names,
                             version, signature.name, deadline=deadline)


def run_predict(
    bundle: saved_model_bundle.SavedModelBundle,
    request: predict_pb2.PredictRequest,
    servable_version: Optional[int],
    *,
    method_name_check: bool = False,
    tensor_content: bool = False,
    inputs: Optional[Mapping[str, np.ndarray]] = None,
    deadline: Optional[float] = None,
) -> predict_pb2.PredictResponse:
  """Runs a PredictRequest.

  Args:
    bundle: the loaded model.
    request: the request; model_spec.name and signature_name are used here
      (the version was resolved by whoever found the bundle).
    servable_version: the version served, echoed in the response.
    method_name_check: --enable_signature_method_name_check.
    tensor_content: --enable_serialization_as_tensor_content: outputs in
      tensor_content instead of the typed fields.
    inputs: the input values already decoded (alias -> array), used instead
      of request.inputs (the V2 protocol's tensors arrive as raw bytes, and
      a TensorProto round trip would copy them twice more). The same checks
      apply, in the same order.
    deadline: the request's deadline (time.monotonic() seconds), which
      bounds the model run; None: none.

  Returns:
    The response, with model_spec {name, version, signature_name}.

  Raises:
    ServingError: with upstream's codes and texts (see the module doc), or
      TensorFlow's error from the run.
  """
  signature_name = util.signature_name_of(request.model_spec)
  signature = get_predict_signature(bundle, signature_name, method_name_check)
  if inputs is None:
    feeds = _collect_feeds(signature, request.inputs,
                           _proto_to_array(signature))
  else:
    feeds = _collect_feeds(signature, inputs, _array_input(signature))
  aliases = _output_aliases(signature, request.output_filter)
  outputs = _run(bundle, signature, feeds, aliases, request.model_spec.name,
                 servable_version, deadline)

  response = predict_pb2.PredictResponse()
  util.make_model_spec(response.model_spec, request.model_spec.name,
                       signature_name, servable_version)
  response_outputs = response.outputs
  for alias, array in zip(aliases, outputs):
    tensor_codec.ndarray_to_tensor_proto(
        array, response_outputs[alias], as_tensor_content=tensor_content)
  return response

