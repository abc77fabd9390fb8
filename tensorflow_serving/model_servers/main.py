"""tensorflow_model_server: the TensorFlow Serving model server, in Python.

Accepts upstream's whole flag set (model_servers/main.cc), with the same
names, types, defaults and `--flag=value` syntax, turns it into
Server.Options and runs the server until it is told to stop.

  tensorflow_model_server --port=8500 --rest_api_port=8501 \
      --model_name=mnist --model_base_path=/tmp/mnist_model

TensorFlow's oneDNN kernels are off unless the environment sets
TF_ENABLE_ONEDNN_OPTS: on the models measured here they cost more CPU per
request at every batch size (docs/performance.md). TF_ENABLE_ONEDNN_OPTS=1
turns them back on (convolutional models may gain from them).
"""

import os
import signal
import sys
from typing import Sequence

# Read once, when TensorFlow is first imported (by the server module below).
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")


def _exit_during_startup(signum: int, frame) -> None:
  """SIGTERM/SIGINT before the server serves: nothing to drain, exit 0 now.

  Installed before anything slow (importing TensorFlow, loading the models),
  so that a container's stop is not ignored until the models have loaded
  (as PID 1 a process has no default signal action).
  """
  del frame
  sys.stderr.write(f"Received {signal.Signals(signum).name} during start-up; "
                   "exiting.\n")
  sys.stderr.flush()
  os._exit(0)  # pylint: disable=protected-access


def _install_startup_signal_handlers() -> None:
  for sig in (signal.SIGTERM, signal.SIGINT):
    signal.signal(sig, _exit_during_startup)


# Run as the program (python main.py, or the pip package's
# tensorflow_model_server script, whose import of this module imports
# TensorFlow before run() is called): catch the signals from here on.
if (__name__ == "__main__" or
    os.path.basename(sys.argv[0] if sys.argv else "") ==
    "tensorflow_model_server"):
  _install_startup_signal_handlers()

# pylint: disable=g-import-not-at-top,wrong-import-position
from absl import app
from absl import flags
from absl import logging

from tensorflow_serving.model_servers import log_format as log_format_lib
from tensorflow_serving.model_servers import server as server_lib
from tensorflow_serving.model_servers import version as version_lib
# pylint: enable=g-import-not-at-top,wrong-import-position

# Every flag's default is its ServerOptions field's, so that ServerOptions()
# in a test is the binary's configuration (main_test checks the two agree).
_DEFAULTS = server_lib.ServerOptions()

# --- Core flags --------------------------------------------------------------
flags.DEFINE_integer("port", _DEFAULTS.port, "TCP port to listen on for gRPC/HTTP API. Disabled if port set to zero.")
flags.DEFINE_string("grpc_socket_path", _DEFAULTS.grpc_socket_path, "If non-empty, listen to a UNIX socket for gRPC API on the given path. Can be either relative or absolute path.")
flags.DEFINE_integer("rest_api_port", _DEFAULTS.rest_api_port, "Port to listen on for HTTP/REST API. If set to zero HTTP/REST API will not be exported. This port must be different than the one specified in --port.")
flags.DEFINE_integer("rest_api_num_threads", _DEFAULTS.rest_api_num_threads, "Number of threads for HTTP/REST API processing. If not set, will be auto set based on number of CPUs.")
flags.DEFINE_integer("rest_api_timeout_in_ms", _DEFAULTS.rest_api_timeout_in_ms, "Timeout for HTTP/REST API calls.")
flags.DEFINE_bool("rest_api_enable_cors_support", _DEFAULTS.rest_api_enable_cors_support, "Enable CORS headers in response")
flags.DEFINE_integer("rest_api_max_body_bytes", _DEFAULTS.rest_api_max_body_bytes, "The largest REST request body, both as received and once inflated (Content-Encoding gzip or deflate); a larger one gets 413. The default is upstream's limit on an inflated body (100 MB). Not in upstream.")
flags.DEFINE_bool("enable_batching", _DEFAULTS.enable_batching, "enable batching")
flags.DEFINE_bool("allow_version_labels_for_unavailable_models", _DEFAULTS.allow_version_labels_for_unavailable_models, "If true, allows assigning unused version labels to models that are not available yet.")
flags.DEFINE_string("batching_parameters_file", _DEFAULTS.batching_parameters_file, "If non-empty, read an ascii BatchingParameters protobuf from the supplied file name and use the contained values instead of the defaults.")
flags.DEFINE_bool("enable_per_model_batching_parameters", _DEFAULTS.enable_per_model_batching_parameters, "Enables model specific batching params like batch sizes, timeouts, batching feature flags to be read from `batching_params.pbtxt` file present in SavedModel dir of the model.")
flags.DEFINE_string("model_config_file", _DEFAULTS.model_config_file, "If non-empty, read an ascii ModelServerConfig protobuf from the supplied file name, and serve the models in that file. This config file can be used to specify multiple models to serve and other advanced parameters including non-default version policy. (If used, --model_name, --model_base_path are ignored.)")
flags.DEFINE_integer("model_config_file_poll_wait_seconds", _DEFAULTS.model_config_file_poll_wait_seconds, "Interval in seconds between each poll of the filesystemfor model_config_file. If unset or set to zero, poll will be done exactly once and not periodically. Setting this to negative is reserved for testing purposes only.")
flags.DEFINE_string("model_name", _DEFAULTS.model_name, "name of model (ignored if --model_config_file flag is set)")
flags.DEFINE_string("model_base_path", _DEFAULTS.model_base_path, "path to export (ignored if --model_config_file flag is set, otherwise required)")
flags.DEFINE_integer("num_load_threads", _DEFAULTS.num_load_threads, "The number of threads in the thread-pool used to load servables. If set as 0, we don't use a thread-pool, and servable loads are performed serially in the manager's main work loop, may casue the Serving request to be delayed. Default: 0")
flags.DEFINE_integer("num_unload_threads", _DEFAULTS.num_unload_threads, "The number of threads in the thread-pool used to unload servables. If set as 0, we don't use a thread-pool, and servable loads are performed serially in the manager's main work loop, may casue the Serving request to be delayed. Default: 0")
flags.DEFINE_integer("max_num_load_retries", _DEFAULTS.max_num_load_retries, "maximum number of times it retries loading a model after the first failure, before giving up. If set to 0, a load is attempted only once. Default: 5")
flags.DEFINE_integer("load_retry_interval_micros", _DEFAULTS.load_retry_interval_micros, "The interval, in microseconds, between each servable load retry. If set negative, it doesn't wait. Default: 1 minute")
flags.DEFINE_integer("file_system_poll_wait_seconds", _DEFAULTS.file_system_poll_wait_seconds, "Interval in seconds between each poll of the filesystem for new model version. If set to zero poll will be exactly done once and not periodically. Setting this to negative value will disable polling entirely causing ModelServer to indefinitely wait for a new model at startup. Negative values are reserved for testing purposes only.")
flags.DEFINE_bool("flush_filesystem_caches", _DEFAULTS.flush_filesystem_caches, "If true (the default), filesystem caches will be flushed after the initial load of all servables, and after each subsequent individual servable reload (if the number of load threads is 1). This reduces memory consumption of the model server, at the potential cost of cache misses if model files are accessed after servables are loaded.")
flags.DEFINE_integer("tensorflow_session_parallelism", _DEFAULTS.tensorflow_session_parallelism, "Number of threads to use for running a Tensorflow session. Auto-configured by default.Note that this option is ignored if --platform_config_file is non-empty.")
flags.DEFINE_string("tensorflow_session_config_file", _DEFAULTS.tensorflow_session_config_file, "If non-empty, read an ascii TensorFlow Session ConfigProto protobuf from the supplied file name. Note, parts of the session config (threads, parallelism etc.) can be overridden if needed, via corresponding command-line flags.")
flags.DEFINE_integer("tensorflow_intra_op_parallelism", _DEFAULTS.tensorflow_intra_op_parallelism, "Number of threads to use to parallelize the executionof an individual op. Auto-configured by default.Note that this option is ignored if --platform_config_file is non-empty.")
flags.DEFINE_integer("tensorflow_inter_op_parallelism", _DEFAULTS.tensorflow_inter_op_parallelism, "Controls the number of operators that can be executed simultaneously. Auto-configured by default.Note that this option is ignored if --platform_config_file is non-empty.")
flags.DEFINE_bool("use_alts_credentials", _DEFAULTS.use_alts_credentials, "Use Google ALTS credentials")
flags.DEFINE_string("ssl_config_file", _DEFAULTS.ssl_config_file, "If non-empty, read an ascii SSLConfig protobuf from the supplied file name and set up a secure gRPC channel")
flags.DEFINE_string("platform_config_file", _DEFAULTS.platform_config_file, "If non-empty, read an ascii PlatformConfigMap protobuf from the supplied file name, and use that platform config instead of the Tensorflow platform. (If used, --enable_batching is ignored.)")
flags.DEFINE_float("per_process_gpu_memory_fraction", _DEFAULTS.per_process_gpu_memory_fraction, "Fraction that each process occupies of the GPU memory space the value is between 0.0 and 1.0 (with 0.0 as the default) If 1.0, the server will allocate all the memory when the server starts, If 0.0, Tensorflow will automatically select a value.")
flags.DEFINE_string("saved_model_tags", _DEFAULTS.saved_model_tags, "Comma-separated set of tags corresponding to the meta graph def to load from SavedModel.")
flags.DEFINE_string("grpc_channel_arguments", _DEFAULTS.grpc_channel_arguments, "A comma separated list of arguments to be passed to the grpc server. (e.g. grpc.max_connection_age_ms=2000)")
flags.DEFINE_integer("grpc_max_threads", _DEFAULTS.grpc_max_threads, "Max grpc server threads to handle grpc messages.")
flags.DEFINE_bool("enable_model_warmup", _DEFAULTS.enable_model_warmup, "Enables model warmup, which triggers lazy initializations (such as TF optimizations) at load time, to reduce first request latency.")
flags.DEFINE_integer("num_request_iterations_for_warmup", _DEFAULTS.num_request_iterations_for_warmup, "Number of times a request is iterated during warmup replay. This value is used only if > 0.")
flags.DEFINE_bool("version", False, "Display version")
flags.DEFINE_string("monitoring_config_file", _DEFAULTS.monitoring_config_file, "If non-empty, read an ascii MonitoringConfig protobuf from the supplied file name")
flags.DEFINE_bool("remove_unused_fields_from_bundle_metagraph", _DEFAULTS.remove_unused_fields_from_bundle_metagraph, "Removes unused fields from MetaGraphDef proto message to save memory.")
flags.DEFINE_bool("prefer_tflite_model", _DEFAULTS.prefer_tflite_model, "EXPERIMENTAL; CAN BE REMOVED ANYTIME! Prefer TensorFlow Lite model from `model.tflite` file in SavedModel directory, instead of the TensorFlow model from `saved_model.pb` file. If no TensorFlow Lite model found, fallback to TensorFlow model.")
flags.DEFINE_integer("num_tflite_pools", _DEFAULTS.num_tflite_pools, "EXPERIMENTAL; CAN BE REMOVED ANYTIME! Number of TFLite interpreters in an interpreter pool of TfLiteSession. Typically there is one TfLiteSession for each TF Serving model.")
flags.DEFINE_integer("num_tflite_interpreters_per_pool", _DEFAULTS.num_tflite_interpreters_per_pool, "EXPERIMENTAL; CAN BE REMOVED ANYTIME! Number of TFLite interpreters in an interpreter pool of TfLiteSession.")
flags.DEFINE_bool("enable_signature_method_name_check", _DEFAULTS.enable_signature_method_name_check, "Enable method_name check for SignatureDef. Disable this if serving native TF2 regression/classification models.")
flags.DEFINE_bool("xla_cpu_compilation_enabled", _DEFAULTS.xla_cpu_compilation_enabled, "EXPERIMENTAL; CAN BE REMOVED ANYTIME! Enable XLA:CPU JIT (default is disabled). With XLA:CPU JIT disabled, models utilizing this feature will return bad Status on first compilation request.")
flags.DEFINE_bool("xla_gpu_compilation_enabled", _DEFAULTS.xla_gpu_compilation_enabled, "EXPERIMENTAL; CAN BE REMOVED ANYTIME! Enable XLA:GPU JIT (default is disabled).")
flags.DEFINE_bool("enable_profiler", _DEFAULTS.enable_profiler, "Enable profiler service.")
flags.DEFINE_string("thread_pool_factory_config_file", _DEFAULTS.thread_pool_factory_config_file, "If non-empty, read an ascii ThreadPoolConfig protobuf from the supplied file name.")
flags.DEFINE_string("mixed_precision", _DEFAULTS.mixed_precision, "specify mixed_precision mode")
flags.DEFINE_bool("skip_initialize_tpu", _DEFAULTS.skip_initialize_tpu, "Whether to skip auto initializing TPU.")
flags.DEFINE_bool("enable_grpc_healthcheck_service", _DEFAULTS.enable_grpc_healthcheck_service, "Enable the standard gRPC healthcheck service.")
flags.DEFINE_bool("enable_serialization_as_tensor_content", _DEFAULTS.enable_serialization_as_tensor_content, "Enable serialization of predict response as tensor content.")

# --- Not in upstream: object stores and the upload-complete guard ------------
flags.DEFINE_string("model_cache_dir", _DEFAULTS.model_cache_dir, "Directory where versions on s3:// and gs:// base paths are copied before they load (a version's copy is removed when it unloads). Default: <temp dir>/tensorflow_serving_model_cache.")
flags.DEFINE_string("version_ready_marker", _DEFAULTS.version_ready_marker, "If non-empty, a version directory is loaded only once it holds a file of this name (written last by the uploader). If empty, a version is loaded once saved_model.pb and its variables are all there and its files were unchanged for one poll interval.")
flags.DEFINE_float("storage_timeout_seconds", _DEFAULTS.storage_timeout_seconds, "Connect and read timeout, in seconds, of each request to an object store (s3://, gs://); throttled, failed or broken requests are retried (S3: 3 attempts in all; GCS: until this time has passed).")
flags.DEFINE_integer("storage_download_threads", _DEFAULTS.storage_download_threads, "Files of one version downloaded at once from an object store.")

# --- Not in upstream: access control -----------------------------------------
flags.DEFINE_string("restricted_api", _DEFAULTS.restricted_api, "GROUPS:KEY=VALUE[;GROUPS:KEY=VALUE...]: requests to the API groups GROUPS (a comma list of inference, metadata, model_management, metrics, health) must carry the header (gRPC metadata) KEY with the value VALUE, else they get PERMISSION_DENIED (REST: 403). Empty: every API is open.")

# --- Not in upstream: TLS on the REST port ------------------------------------
flags.DEFINE_string("rest_api_ssl_config_file", _DEFAULTS.rest_api_ssl_config_file, "If non-empty, read an ascii SSLConfig protobuf (as --ssl_config_file) from the supplied file name and serve the HTTP/REST API, the V2 endpoints and the Prometheus page over HTTPS only; client_verify: true requires client certificates signed by custom_ca (mutual TLS).")

# --- Not in upstream: memory bounds --------------------------------------------
flags.DEFINE_integer("request_memory_budget_bytes", _DEFAULTS.request_memory_budget_bytes, "The bytes all requests together may be decoding at once (gRPC messages and what is decoded from them, REST bodies once inflated and parsed). A large request that finds the budget full waits briefly, then gets RESOURCE_EXHAUSTED before anything is allocated for it. Requests under 1 MiB are not counted. 0: no bound.")

# --- Not in upstream: logs as JSON lines ------------------------------------
flags.DEFINE_enum("log_format", _DEFAULTS.log_format, log_format_lib.FORMATS, "How log records are written to stderr: 'text' (absl's format, as upstream) or 'json' (one JSON object per line: time, level, logger, message, file:line, thread, and the traceback if any). TensorFlow's C++ start-up lines are printed before this applies and stay text.")

# Flags that name features this server does not have (TPU, TFLite, XLA, GPU,
# mixed precision, the TF profiler): accepted for compatibility, and a log
# line says once that they are ignored when set to a non-default value.
_IGNORED_FLAGS = (
    "use_alts_credentials",  # Only checked against --ssl_config_file.
    "per_process_gpu_memory_fraction",
    "prefer_tflite_model",
    "num_tflite_pools",
    "num_tflite_interpreters_per_pool",
    "xla_cpu_compilation_enabled",
    "xla_gpu_compilation_enabled",
    "enable_profiler",
    "thread_pool_factory_config_file",
    "mixed_precision",
    "skip_initialize_tpu",
    "remove_unused_fields_from_bundle_metagraph",
    "enable_per_model_batching_parameters",
)

FLAGS = flags.FLAGS


def _parse_flags(argv: list[str]) -> list[str]:
  """Parses known flags; like upstream, an unknown argument is reported, not fatal."""
  app.define_help_flags()
  try:
    rest = FLAGS(argv, known_only=True)
  except flags.Error as e:
    sys.stderr.write(f"{e}\n{FLAGS.main_module_help()}\n")
    sys.exit(255)
  except SystemExit as e:
    # absl's --help/--helpfull printed the usage and exit with 1; upstream's
    # usage path exits with -1.
    sys.exit(255 if e.code == 1 else e.code)
  for arg in rest[1:]:
    sys.stderr.write(f"unknown argument: {arg}\n")
  return rest[:1]


def _options_from_flags() -> server_lib.Server.Options:
  names = server_lib.Server.Options.flag_names()
  return server_lib.Server.Options(**{name: FLAGS[name].value for name in names})


def main(argv: Sequence[str]) -> None:
  del argv  # Flags are parsed already.
  log_format_lib.configure(FLAGS.log_format)
  if FLAGS.version:
    print(version_lib.version_text())
    sys.exit(0)
  for name in _IGNORED_FLAGS:
    # Only a value that would change something is worth a warning.
    if FLAGS[name].value != FLAGS[name].default:
      logging.warning("--%s is accepted for compatibility and ignored: this "
                      "server has no such feature.", name)
  server = server_lib.Server()
  try:
    server.build_and_start(_options_from_flags())
  except server_lib.StartupError as e:
    print(f"Failed to start server. Error: {e}", flush=True)
    sys.exit(255)
  # Serving: a signal now drains (Server.stop).
  for sig in (signal.SIGTERM, signal.SIGINT):
    signal.signal(sig, lambda signum, frame: server.request_stop())
  server.wait_for_termination()
  # The gRPC port is still open, refusing every RPC: the exit closes it
  # (see Server.stop). Nothing else is left to clean up.
  logging.flush()
  sys.stdout.flush()
  sys.stderr.flush()
  os._exit(0)  # pylint: disable=protected-access


def run() -> None:
  """Entry point: upstream-style flag parsing, then absl's app machinery."""
  _install_startup_signal_handlers()
  app.run(main, argv=_parse_flags(sys.argv), flags_parser=lambda a: a)


if __name__ == "__main__":
  run()
