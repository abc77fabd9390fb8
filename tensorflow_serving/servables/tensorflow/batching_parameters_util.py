"""BatchingParameters -> the batch scheduler and batching sessions.

--enable_batching and --batching_parameters_file configure batching with a
text-format BatchingParameters proto (servables/tensorflow/
session_bundle_config.proto). This module is the one place that reads it:
the defaults for unset fields, upstream's validation errors, and the
conversion into SharedBatchScheduler options (thread pool, once per server),
QueueOptions (per model signature) and BatchingSessionOptions (how batches
are padded). It mirrors upstream's bundle_factory_util (CreateBatchScheduler,
GetQueueOptions, WrapSessionForBatching).

How the server uses it (model_servers/platform_config_util, once per
platform whose SessionBundleConfig has batching_parameters):
  scheduler = create_batch_scheduler(params)              # at startup
  # per model version, when its bundle is built (the bundle's `batcher`):
  bundle = load_saved_model_bundle(
      path, batcher=lambda run: wrap_bundle_run_for_batching(
          run, scheduler, params))
  ...
  bundle.close()                          # at unload: closes its queues
  scheduler.stop()                        # after the last unload
"""

import dataclasses

from google.protobuf import text_format

from tensorflow_serving.batching import shared_batch_scheduler
from tensorflow_serving.servables.tensorflow import batching_session
from tensorflow_serving.servables.tensorflow import session_bundle_config_pb2
from tensorflow_serving.util import proto_util
from tensorflow_serving.util import status

BatchingParameters = session_bundle_config_pb2.BatchingParameters

# Upstream's server names the pool so when --enable_batching has no file.
DEFAULT_THREAD_POOL_NAME = "model_server_batch_threads"


def default_batching_parameters() -> BatchingParameters:
  """What --enable_batching without --batching_parameters_file means.

  Only the pool name is set; every other field takes the scheduler's
  default: num_batch_threads = CPUs, max_batch_size 1000,
  batch_timeout_micros 0, max_enqueued_batches 10, no splitting,
  max_execution_batch_size 1000.
  """
  params = BatchingParameters()
  params.thread_pool_name.value = DEFAULT_THREAD_POOL_NAME
  return params


def parse_batching_parameters(text: str) -> BatchingParameters:
  """Parses text-format BatchingParameters.

  Raises:
    ServingError: INVALID_ARGUMENT "Error parsing text-format
      tensorflow.serving.BatchingParameters: <line>:<column>: <what>".
  """
  params = BatchingParameters()
  try:
    text_format.Parse(text, params)
  except text_format.ParseError as e:
    raise status.invalid_argument(
        proto_util.parse_error_detail(params.DESCRIPTOR.full_name, e)) from e
  return params


def read_batching_parameters_file(path: str) -> BatchingParameters:
  """Reads --batching_parameters_file, as upstream's ParseProtoTextFile.

  Raises:
    ServingError: the file system's error ("<path>; No such file or
      directory", NOT_FOUND) if it cannot be read, INVALID_ARGUMENT
      "Invalid protobuf file: '<path>'. Error parsing ..." if it does not
      parse.
  """
  return proto_util.parse_proto_text_file(path, BatchingParameters())


def max_batch_size(params: BatchingParameters) -> int:
  """max_batch_size, or the scheduler's default when unset."""
  if params.HasField("max_batch_size"):
    return params.max_batch_size.value
  return shared_batch_scheduler.QueueOptions().input_batch_size_limit


def scheduler_options(
    params: BatchingParameters
) -> shared_batch_scheduler.SharedBatchSchedulerOptions:
  """The thread-pool part of `params` (unset fields keep their defaults)."""
  changes = {}
  if params.HasField("num_batch_threads"):
    changes["num_batch_threads"] = params.num_batch_threads.value
  if params.HasField("thread_pool_name"):
    changes["thread_pool_name"] = params.thread_pool_name.value
  return shared_batch_scheduler.SharedBatchSchedulerOptions(**changes)


def queue_options(
    params: BatchingParameters) -> shared_batch_scheduler.QueueOptions:
  """The per-queue part of `params` (upstream's GetQueueOptions)."""
  options = shared_batch_scheduler.QueueOptions(
      input_batch_size_limit=max_batch_size(params))
  if params.HasField("batch_timeout_micros"):
    options = dataclasses.replace(
        options, batch_timeout_micros=params.batch_timeout_micros.value)
  if params.HasField("max_enqueued_batches"):
    options = dataclasses.replace(
        options, max_enqueued_batches=params.max_enqueued_batches.value)
  if (params.HasField("enable_large_batch_splitting") and
      params.enable_large_batch_splitting.value):
    options = dataclasses.replace(
        options,
        enable_large_batch_splitting=True,
        max_execution_batch_size=(
            params.max_execution_batch_size.value
            if params.HasField("max_execution_batch_size") else
            options.input_batch_size_limit))
  return options


def session_options(
    params: BatchingParameters) -> batching_session.BatchingSessionOptions:
  """The tensor-side part of `params`: padding of batches and inputs."""
  return batching_session.BatchingSessionOptions(
      allowed_batch_sizes=tuple(params.allowed_batch_sizes),
      pad_variable_length_inputs=params.pad_variable_length_inputs)


def validate_batching_parameters(params: BatchingParameters) -> None:
  """Every check upstream makes, at startup rather than at first model load.

  Raises:
    ServingError: INVALID_ARGUMENT with upstream's texts.
  """
  batching_session.validate_allowed_batch_sizes(
      list(params.allowed_batch_sizes), max_batch_size(params))
  options = scheduler_options(params)
  if options.num_batch_threads < 1:
    raise status.invalid_argument(
        f"num_batch_threads must be positive; was {options.num_batch_threads}")
  # BatchingSession supplies the real split function; any will do here.
  shared_batch_scheduler.validate_queue_options(
      dataclasses.replace(queue_options(params),
                          split_input_task_func=lambda *args: []))


def request_threads_warning(params: BatchingParameters,
                            request_threads: int,
                            flag: str = "--grpc_max_threads") -> str:
  """Why `request_threads` keeps batches small, or "" if it does not.

  A request waits for its batch on the thread that received it (a gRPC
  worker), so at most `request_threads` requests are in batches at once: a
  batch can never hold more rows than that (one-row requests), and with a
  batch_timeout_micros every batch then waits its full timeout for requests
  that cannot arrive (docs/performance.md, "Request batching"). Upstream
  gives the same advice: about twice max_batch_size request threads.

  Args:
    params: the server's BatchingParameters.
    request_threads: the size of the pool that receives requests.
    flag: the flag that sets it, for the message.
  """
  largest = queue_options(params).effective_max_execution_batch_size
  if request_threads >= largest:
    return ""
  return (f"{flag}={request_threads} lets at most {request_threads} requests "
          "wait for a batch at once, fewer than the largest batch "
          f"({largest} rows): batches of one-row requests cannot grow beyond "
          f"{request_threads} rows. To batch N concurrent requests, set "
          f"{flag} to at least N (upstream: about 2 x max_batch_size).")


def create_batch_scheduler(
    params: BatchingParameters) -> shared_batch_scheduler.SharedBatchScheduler:
  """Validates `params` and starts the server's one batch scheduler.

  Raises:
    ServingError: INVALID_ARGUMENT for invalid parameters.
  """
  validate_batching_parameters(params)
  return shared_batch_scheduler.SharedBatchScheduler(scheduler_options(params))


def wrap_bundle_run_for_batching(
    run: batching_session.BundleRunFn,
    scheduler: shared_batch_scheduler.SharedBatchScheduler,
    params: BatchingParameters) -> batching_session.BatchingRunner:
  """Batches a `run(feed_names, feeds, fetch_names)` step (one per version).

  Each feed/fetch set gets its own queue of `scheduler` on first use. The
  result is called like `run` and must be close()d when the version unloads.
  """
  return batching_session.BatchingRunner(run, scheduler, queue_options(params),
                                         session_options(params))
