"""Reading and replaying a SavedModel's warmup requests (not what they run).

The first requests to a freshly loaded model are slow: TensorFlow builds
kernels, allocates and optimises on first use. Upstream lets a model ship
sample requests that the server replays at load time, before the version is
made available, so that clients never see that cost. This module is the part
that does not know what a request is:

  * the file is <version dir>/assets.extra/tf_serving_warmup_requests, a
    TFRecord file of PredictionLog protos (one request per record);
  * a missing file is fine: there is nothing to warm up;
  * each record is handed to an executor num_request_iterations times
    (ModelWarmupOptions, default 1), on num_model_warmup_threads threads
    (default 1);
  * at most MAX_NUM_RECORDS records; one more fails the warmup;
  * any failure (unreadable file, a record that is not a PredictionLog, a
    request the model rejects) is raised, and fails the version's load.

The executor that runs one PredictionLog on a servable lives in
saved_model_warmup.py.
"""

import concurrent.futures
import os
import threading
import time
from typing import Callable, Iterator

from absl import logging
import tensorflow as tf

from tensorflow_serving.apis import prediction_log_pb2
from tensorflow_serving.servables.tensorflow import session_bundle_config_pb2
from tensorflow_serving.util import metrics
from tensorflow_serving.util import status

ASSETS_EXTRA_DIRECTORY = "assets.extra"
WARMUP_REQUESTS_FILE_NAME = "tf_serving_warmup_requests"
# As upstream: a warmup file is a sample, not a data set.
MAX_NUM_RECORDS = 1000

ModelWarmupOptions = session_bundle_config_pb2.ModelWarmupOptions
WarmupExecutor = Callable[[prediction_log_pb2.PredictionLog], None]


def warmup_file_path(export_dir: str) -> str:
  """Where a version directory keeps its warmup requests."""
  return os.path.join(export_dir, ASSETS_EXTRA_DIRECTORY,
                      WARMUP_REQUESTS_FILE_NAME)


def _records(path: str) -> Iterator[bytes]:
  """The file's records, with TensorFlow's read errors as ServingError."""
  try:
    for record in tf.data.TFRecordDataset(path):
      yield record.numpy()
  except tf.errors.DataLossError as e:
    raise status.data_loss(
        f"{e.message}. Please verify your warmup data is in TFRecord "
        "format.") from e
  except tf.errors.OpError as e:
    raise status.from_exception(e) from e


def _parse(record: bytes, path: str) -> prediction_log_pb2.PredictionLog:
  log = prediction_log_pb2.PredictionLog()
  try:
    log.ParseFromString(record)
  except Exception as e:  # pylint: disable=broad-except
    raise status.invalid_argument(
        f"Failed to parse warmup record: {record[:64]!r} from {path}") from e
  return log


def _replay(path: str, iterations: int, threads: int,
            executor: WarmupExecutor) -> int:
  """Runs every record; returns how many were read. Raises the first error."""
  num_records = 0

  def too_many() -> status.ServingError:
    return status.invalid_argument(
        f"Number of warmup records exceeds the maximum ({MAX_NUM_RECORDS}) "
        f"at {path}")

  if threads <= 1:
    for record in _records(path):
      log = _parse(record, path)
      for _ in range(iterations):
        executor(log)
      num_records += 1
      if num_records > MAX_NUM_RECORDS:
        raise too_many()
    return num_records

  # Several threads: one reader (this thread) feeds a bounded pool, and the
  # first failure stops both.
  failed = threading.Event()
  slots = threading.Semaphore(2 * threads)

  def run(log: prediction_log_pb2.PredictionLog) -> None:
    try:
      if not failed.is_set():
        for _ in range(iterations):
          executor(log)
    except BaseException:
      failed.set()
      raise
    finally:
      slots.release()

  futures = []
  with concurrent.futures.ThreadPoolExecutor(
      max_workers=threads, thread_name_prefix="warmup") as pool:
    try:
      for record in _records(path):
        if failed.is_set():
          break
        num_records += 1
        if num_records > MAX_NUM_RECORDS:
          raise too_many()
        log = _parse(record, path)
        slots.acquire()
        futures.append(pool.submit(run, log))
    except BaseException:
      failed.set()  # The workers skip what is still queued.
      raise
  for future in futures:
    future.result()  # Raises the first failure, if any.
  return num_records


def run_saved_model_warmup(options: ModelWarmupOptions, export_dir: str,
                           executor: WarmupExecutor) -> None:
  """Replays export_dir's warmup requests through executor.

  Args:
    options: iterations per record and threads (unset: 1 each).
    export_dir: the version directory.
    executor: runs one PredictionLog's request on the model being loaded,
      raising ServingError if it fails.

  Raises:
    ServingError: as the module docstring says; DATA_LOSS for a file that is
      not TFRecord, INVALID_ARGUMENT for too many or unparsable records,
      and whatever the executor raised.
  """
  path = warmup_file_path(export_dir)
  if not tf.io.gfile.exists(path):
    logging.info("No warmup data file found at %s", path)
    return
  iterations = (options.num_request_iterations.value
                if options.HasField("num_request_iterations") else 1)
  threads = (max(options.num_model_warmup_threads.value, 1)
             if options.HasField("num_model_warmup_threads") else 1)
  logging.info("Starting to read warmup data for model at %s with %d "
               "iteration(s) per record on %d thread(s)", path, iterations,
               threads)
  start = time.monotonic()
  code = status.Code.OK
  try:
    num_records = _replay(path, iterations, threads, executor)
  except Exception as e:
    code = status.from_exception(e).code
    raise
  finally:
    metrics.record_warmup(export_dir, code,
                          (time.monotonic() - start) * 1e6)
  logging.info("Finished reading warmup data for model at %s. Number of "
               "warmup records read: %d. Elapsed time (microseconds): %d.",
               path, num_records, int((time.monotonic() - start) * 1e6))
