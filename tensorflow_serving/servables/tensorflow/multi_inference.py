"""MultiInference: several Classify/Regress tasks on one input, one session run.

All tasks must name the same model; each signature is evaluated once. The
tasks' signatures may take their examples through different input tensors
(a TF2 export gives every signature function its own placeholder): as
upstream HEAD does, the input tensor names of all tasks are collected into a
set and the same serialized examples are fed to each of them, and the
fetches of all tasks are run together in one session run; each task's result
is then cut out of them. (Older upstream releases refused tasks whose input
tensors differed, with "Input tensor must be the same for all Signatures.")
The version is the one the caller resolved from the first task's ModelSpec.
Codes and texts are upstream's; each result carries its task's ModelSpec
(name, signature, version served).
"""

from typing import Optional

from tensorflow_serving.apis import inference_pb2
from tensorflow_serving.servables.tensorflow import classifier
from tensorflow_serving.servables.tensorflow import regressor
from tensorflow_serving.servables.tensorflow import saved_model_bundle
from tensorflow_serving.servables.tensorflow import util
from tensorflow_serving.util import status


def run_multi_inference(
    bundle: saved_model_bundle.SavedModelBundle,
    request: inference_pb2.MultiInferenceRequest,
    servable_version: Optional[int],
    *,
    method_name_check: bool = False,
    deadline: Optional[float] = None,
) -> inference_pb2.MultiInferenceResponse:
  """Runs every task of a MultiInferenceRequest on one bundle.

  `deadline` (time.monotonic() seconds, or None) bounds the model run.

  Raises:
    ServingError: INVALID_ARGUMENT for inconsistent tasks, UNIMPLEMENTED for a
      method other than classify or regress, or the run's own error.
  """
  if not request.tasks:
    raise status.invalid_argument(
        "MultiInferenceRequest must contain at least one task")
  model_name = ""
  plans = []  # (task, signature name, signature)
  seen_signatures = set()
  feeds = set()
  fetches = set()
  for task in request.tasks:
    if not task.model_spec.name:
      raise status.invalid_argument(
          "Found ModelSpec with an empty model name.")
    if not model_name:
      model_name = task.model_spec.name
    elif model_name != task.model_spec.name:
      raise status.invalid_argument(
          "All ModelSpecs in a MultiInferenceRequest must access the same "
          "model name.")
    signature_name = util.signature_name_of(task.model_spec)
    if signature_name in seen_signatures:
      raise status.invalid_argument(
          f"Duplicate evaluation of signature: {signature_name}")
    seen_signatures.add(signature_name)
    signature = bundle.signatures.get(signature_name)
    if signature is None:
      raise status.invalid_argument(
          f"Requested signature not found in model graph: {signature_name}")
    if task.method_name == util.CLASSIFY_METHOD_NAME:
      task_input, task_outputs = classifier.pre_process_classification(
          signature, method_name_check)
    elif task.method_name == util.REGRESS_METHOD_NAME:
      task_input, task_outputs = regressor.pre_process_regression(
          signature, method_name_check)
    else:
      raise status.unimplemented(
          f"Unsupported signature method_name: {task.method_name}")
    feeds.add(task_input)
    fetches.update(task_outputs)
    plans.append((task, signature_name, signature))

  # Sorted, as upstream's std::set: one feed/fetch order per task set, so
  # the bundle reuses one callable for it.
  feed_names = tuple(sorted(feeds))
  fetch_names = tuple(sorted(fetches))
  examples = util.input_to_serialized_examples(request.input)
  outputs = bundle.run(feed_names, [examples] * len(feed_names), fetch_names,
                       deadline)

  response = inference_pb2.MultiInferenceResponse()
  for task, signature_name, signature in plans:
    result = response.results.add()
    util.make_model_spec(result.model_spec, task.model_spec.name,
                         signature_name, servable_version)
    if task.method_name == util.CLASSIFY_METHOD_NAME:
      classifier.post_process_classification_result(
          signature, len(examples), fetch_names, outputs,
          result.classification_result)
    else:
      regressor.post_process_regression_result(
          signature, len(examples), fetch_names, outputs,
          result.regression_result)
  return response
