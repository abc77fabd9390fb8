"""Server: builds ServerCore and the gRPC (and REST) front ends from Options.

The counterpart of upstream's model_servers/server.cc. main.py turns flags
into Server.Options; tests build Options directly. Startup order follows
upstream: ServerCore.create blocks until every configured model is
available, and only then do the ports start answering, so a client that can
connect can also be served.
"""

import concurrent.futures
import dataclasses
import os
import signal
import threading
from typing import Any, Callable, Optional

from absl import logging
from google.protobuf import text_format
import grpc
from grpc_health.v1 import health
from grpc_health.v1 import health_pb2
from grpc_health.v1 import health_pb2_grpc

from tensorflow.core.protobuf import config_pb2

from tensorflow_serving.apis import model_service_pb2_grpc
from tensorflow_serving.core import log_collector
from tensorflow_serving.core import request_logger
from tensorflow_serving.core import server_request_logger
from tensorflow_serving.apis import prediction_service_pb2_grpc
from tensorflow_serving.model_servers import http_server
from tensorflow_serving.model_servers import model_config_file
from tensorflow_serving.model_servers import model_service_impl
from tensorflow_serving.model_servers import platform_config_util
from tensorflow_serving.model_servers import prediction_service_impl
from tensorflow_serving.model_servers import server_core as server_core_lib
from tensorflow_serving.model_servers import ssl_util
from tensorflow_serving.servables.tensorflow import batching_parameters_util
from tensorflow_serving.servables.tensorflow import saved_model_bundle_source_adapter as adapter_lib
from tensorflow_serving.servables.tensorflow import session_bundle_config_pb2
from tensorflow_serving.servables.tensorflow import tfrecord_log_collector
from tensorflow_serving.util import status

# gRPC's own limit; upstream sets it for both directions on the server.
_MAX_MESSAGE_SIZE = 2**31 - 1
# How long a stopping server lets in-flight requests finish.
_SHUTDOWN_GRACE_SECONDS = 10.0
# The service names --enable_grpc_healthcheck_service reports SERVING: the
# short names upstream sets, the full ones gRPC clients usually ask for, and
# "" (the whole server).
_HEALTH_SERVICE_NAMES = ("", "ModelService", "PredictionService",
                         "tensorflow.serving.ModelService",
                         "tensorflow.serving.PredictionService")


class StartupError(Exception):
  """The server could not start; main prints "Failed to start server"."""


@dataclasses.dataclass(frozen=True)
class ServerOptions:
  """Every option of tensorflow_model_server, named and defaulted as its flag."""

  port: int = 8500
  grpc_socket_path: str = ""
  rest_api_port: int = 0
  rest_api_num_threads: int = 8
  rest_api_timeout_in_ms: int = 30000
  rest_api_enable_cors_support: bool = False
  enable_batching: bool = False
  allow_version_labels_for_unavailable_models: bool = False
  batching_parameters_file: str = ""
  enable_per_model_batching_parameters: bool = False
  model_config_file: str = ""
  model_config_file_poll_wait_seconds: int = 0
  model_name: str = "default"
  model_base_path: str = ""
  num_load_threads: int = 0
  num_unload_threads: int = 0
  max_num_load_retries: int = 5
  load_retry_interval_micros: int = 60 * 1000 * 1000
  file_system_poll_wait_seconds: int = 1
  flush_filesystem_caches: bool = True
  tensorflow_session_parallelism: int = 0
  tensorflow_session_config_file: str = ""
  tensorflow_intra_op_parallelism: int = 0
  tensorflow_inter_op_parallelism: int = 0
  use_alts_credentials: bool = False
  ssl_config_file: str = ""
  platform_config_file: str = ""
  per_process_gpu_memory_fraction: float = 0.0
  saved_model_tags: str = "serve"
  grpc_channel_arguments: str = ""
  grpc_max_threads: int = 4  # main.py: 2 x CPUs (docs/performance.md)
  enable_model_warmup: bool = True
  num_request_iterations_for_warmup: int = 0
  monitoring_config_file: str = ""
  remove_unused_fields_from_bundle_metagraph: bool = True
  prefer_tflite_model: bool = False
  num_tflite_pools: int = 2
  num_tflite_interpreters_per_pool: int = 1
  enable_signature_method_name_check: bool = False
  xla_cpu_compilation_enabled: bool = False
  xla_gpu_compilation_enabled: bool = False
  enable_profiler: bool = True
  thread_pool_factory_config_file: str = ""
  mixed_precision: str = ""
  skip_initialize_tpu: bool = False
  enable_grpc_healthcheck_service: bool = False
  enable_serialization_as_tensor_content: bool = False

  @classmethod
  def flag_names(cls) -> list[str]:
    return [f.name for f in dataclasses.fields(cls)]


def validate_options(options: ServerOptions) -> None:
  """Raises StartupError with upstream's texts for inconsistent options."""
  if options.port == 0 and not options.grpc_socket_path:
    raise StartupError("At least one of server_options.grpc_port or "
                       "server_options.grpc_socket_path must be set.")
  if not options.model_base_path and not options.model_config_file:
    raise StartupError("Both server_options.model_base_path and "
                       "server_options.model_config_file are empty!")
  if options.use_alts_credentials and options.ssl_config_file:
    raise StartupError("Either use_alts_credentials must be false or "
                       "ssl_config_file must be empty.")
  if options.batching_parameters_file and not options.enable_batching:
    raise StartupError(
        "server_options.batching_parameters_file is set without setting "
        "server_options.enable_batching to true.")
  if (options.tensorflow_session_parallelism > 0 and
      options.tensorflow_intra_op_parallelism > 0 and
      options.tensorflow_inter_op_parallelism > 0):
    raise StartupError(
        "Either configure server_options.tensorflow_session_parallelism or "
        "(server_options.tensorflow_intra_op_parallelism, "
        "server_options.tensorflow_inter_op_parallelism) separately. You "
        "cannot configure both.")


def parse_grpc_channel_arguments(text: str) -> list[tuple[str, Any]]:
  """Parses "k1=v1,k2=v2"; a value that parses as an int is passed as an int."""
  result = []
  for item in filter(None, (part.strip() for part in text.split(","))):
    key, sep, value = item.partition("=")
    if not sep or not key:
      raise StartupError(f"Invalid --grpc_channel_arguments entry: {item!r} "
                         "(expected key=value)")
    try:
      number = int(value)
    except ValueError:
      number = None
    # As upstream, only values that fit an int32 are passed as ints.
    if number is not None and -2**31 <= number < 2**31:
      result.append((key, number))
    else:
      result.append((key, value))
  return result


def _read_server_credentials(
    options: ServerOptions) -> Optional[grpc.ServerCredentials]:
  """TLS credentials from --ssl_config_file, or None for plaintext."""
  if not options.ssl_config_file:
    return None
  try:
    return ssl_util.build_server_credentials(
        ssl_util.read_ssl_config(options.ssl_config_file))
  except status.ServingError as e:
    raise StartupError(str(e)) from e


def _add_port(server: grpc.Server, address: str,
              credentials: Optional[grpc.ServerCredentials]) -> int:
  """Binds address (TLS if credentials); returns the port, 0 on failure."""
  try:
    if credentials is None:
      return server.add_insecure_port(address)
    return server.add_secure_port(address, credentials)
  except RuntimeError:
    return 0


def _add_health_service(server: grpc.Server) -> health.HealthServicer:
  """grpc.health.v1.Health, with the model services marked SERVING."""
  servicer = health.HealthServicer()
  for name in _HEALTH_SERVICE_NAMES:
    servicer.set(name, health_pb2.HealthCheckResponse.SERVING)
  health_pb2_grpc.add_HealthServicer_to_server(servicer, server)
  return servicer


def _new_server_request_logger() -> server_request_logger.ServerRequestLogger:
  """ModelConfig.logging_config support, with the TFRecord file collector."""
  tfrecord_log_collector.register()
  return server_request_logger.ServerRequestLogger(_create_request_logger)


def _create_request_logger(
    config: request_logger.LoggingConfig) -> request_logger.RequestLogger:
  """A model's RequestLogger, writing to the collector its config names."""
  return request_logger.RequestLogger(
      config, log_collector.create(config.log_collector_config))


def _model_warmup_options(
    options: ServerOptions) -> session_bundle_config_pb2.ModelWarmupOptions:
  """--num_request_iterations_for_warmup, used only when > 0 (as upstream)."""
  warmup = session_bundle_config_pb2.ModelWarmupOptions()
  if options.num_request_iterations_for_warmup > 0:
    warmup.num_request_iterations.value = (
        options.num_request_iterations_for_warmup)
  return warmup


def _read_session_config(path: str) -> Optional[config_pb2.ConfigProto]:
  """Reads --tensorflow_session_config_file (a text ConfigProto), if set."""
  if not path:
    return None
  try:
    with open(path, encoding="utf-8") as f:
      return text_format.Parse(f.read(), config_pb2.ConfigProto())
  except (OSError, text_format.ParseError) as e:
    raise StartupError(
        f"Failed to read --tensorflow_session_config_file {path}: {e}") from e


class Server:
  """The model server: ServerCore plus its gRPC and REST front ends."""

  Options = ServerOptions

  def __init__(self) -> None:
    self._server_core = None
    self._grpc_server: Optional[grpc.Server] = None
    self._stopped = threading.Event()
    self._background_stoppers: list[Callable[[], None]] = []
    self.grpc_port: Optional[int] = None
    self.rest_port: Optional[int] = None
    self._batch_scheduler = None
    self._batching_parameters = None
    self._http_server: Optional[http_server.HttpRestServer] = None
    self._health: Optional[health.HealthServicer] = None
    # Called once the models have unloaded (platform batch schedulers).
    self._after_unload_stoppers: list[Callable[[], None]] = []

  @property
  def server_core(self):
    return self._server_core

  @property
  def batch_scheduler(self):
    """The shared batch scheduler (--enable_batching), else None."""
    return self._batch_scheduler

  def build_and_start(self, options: ServerOptions) -> None:
    """Loads the configured models, then starts serving. Raises StartupError."""
    validate_options(options)
    try:
      self._server_core = self._build_server_core(options)
    except status.ServingError as e:
      self.stop()  # Whatever started before the failure (schedulers).
      raise StartupError(str(e)) from e
    except StartupError:
      self.stop()  # E.g. a bad session config file after batching started.
      raise
    try:
      self._start_grpc(options)
      self._start_http(options)
    except BaseException:
      self.stop()  # Unload what was loaded; the caller exits or retries.
      raise

  def _build_server_core(
      self, options: ServerOptions) -> server_core_lib.ServerCore:
    """Reads the model config, then loads every model (blocking)."""
    if options.model_config_file:
      config = model_config_file.parse_model_server_config_file(
          options.model_config_file)
    else:
      config = model_config_file.build_single_model_config(
          options.model_name, options.model_base_path)
    batch_scheduler, batching_parameters = self._start_batching(options)
    adapter_options = adapter_lib.SavedModelBundleSourceAdapterOptions(
        saved_model_tags=adapter_lib.parse_saved_model_tags(
            options.saved_model_tags),
        session_parallelism=options.tensorflow_session_parallelism,
        intra_op_parallelism=options.tensorflow_intra_op_parallelism,
        inter_op_parallelism=options.tensorflow_inter_op_parallelism,
        session_config=_read_session_config(
            options.tensorflow_session_config_file),
        enable_signature_method_name_check=(
            options.enable_signature_method_name_check),
        batch_scheduler=batch_scheduler,
        batching_parameters=batching_parameters,
        enable_model_warmup=options.enable_model_warmup,
        model_warmup_options=_model_warmup_options(options))
    # Fail on bad thread flags now rather than at the first load.
    adapter_lib.SavedModelBundleSourceAdapter(adapter_options)
    platform_source_adapters = {
        server_core_lib.TENSORFLOW_MODEL_PLATFORM:
            lambda: adapter_lib.SavedModelBundleSourceAdapter(adapter_options),
    }
    if options.platform_config_file:
      platform_source_adapters = self._platform_config_adapters(options)
    core = server_core_lib.ServerCore.create(
        server_core_lib.ServerCore.Options(
            model_server_config=config,
            platform_source_adapters=platform_source_adapters,
            num_load_threads=options.num_load_threads,
            num_unload_threads=options.num_unload_threads,
            max_num_load_retries=options.max_num_load_retries,
            load_retry_interval_micros=options.load_retry_interval_micros,
            file_system_poll_wait_seconds=(
                options.file_system_poll_wait_seconds),
            allow_version_labels_for_unavailable_models=(
                options.allow_version_labels_for_unavailable_models),
            server_request_logger=_new_server_request_logger(),
        ))
    if options.flush_filesystem_caches:
      # Upstream frees its file systems' caches after loads; tf.io.gfile,
      # through which models are read here, exposes none to free.
      logging.info("--flush_filesystem_caches: no file system caches to "
                   "flush (models are read through tf.io.gfile, which keeps "
                   "none).")
    if (options.model_config_file and
        options.model_config_file_poll_wait_seconds > 0):
      poller = model_config_file.ModelConfigFilePoller(
          core, options.model_config_file,
          options.model_config_file_poll_wait_seconds)
      poller.start()
      self._background_stoppers.append(poller.stop)
    return core

  def _platform_config_adapters(self, options: ServerOptions):
    """The platforms of --platform_config_file (replacing the TF flags)."""
    adapters = platform_config_util.create_platform_adapters(
        platform_config_util.read_platform_config_map(
            options.platform_config_file),
        platform_config_util.AdapterSettings(
            enable_signature_method_name_check=(
                options.enable_signature_method_name_check)))
    self._after_unload_stoppers.extend(adapters.stoppers)
    return adapters.factories

  def _start_batching(self, options: ServerOptions):
    """Starts the one batch scheduler all models share (--enable_batching).

    Returns:
      (scheduler, BatchingParameters), or (None, None) without batching.
    """
    if not options.enable_batching:
      return None, None
    if options.platform_config_file:
      logging.warning("--enable_batching is ignored: --platform_config_file "
                      "decides the platform's batching.")
      return None, None
    try:
      params = (
          batching_parameters_util.read_batching_parameters_file(
              options.batching_parameters_file)
          if options.batching_parameters_file else
          batching_parameters_util.default_batching_parameters())
      scheduler = batching_parameters_util.create_batch_scheduler(params)
    except status.ServingError as e:
      raise StartupError(str(e)) from e
    self._batch_scheduler = scheduler
    self._batching_parameters = params
    return scheduler, params

  def _start_grpc(self, options: ServerOptions) -> None:
    """Starts the gRPC server on the TCP port and/or the Unix socket."""
    credentials = _read_server_credentials(options)
    channel_args = parse_grpc_channel_arguments(options.grpc_channel_arguments)
    # The defaults below only fill in what --grpc_channel_arguments leaves
    # out: gRPC keeps the first of two values for one key.
    given = {key for key, _ in channel_args}
    channel_args += [(key, value) for key, value in (
        ("grpc.max_send_message_length", _MAX_MESSAGE_SIZE),
        ("grpc.max_receive_message_length", _MAX_MESSAGE_SIZE),
        # A port already in use is a startup error, not a silent share.
        ("grpc.so_reuseport", 0),
    ) if key not in given]
    if self._batch_scheduler is not None:
      warning = batching_parameters_util.request_threads_warning(
          self._batching_parameters, options.grpc_max_threads)
      if warning:
        logging.warning("%s", warning)
    server = grpc.server(
        concurrent.futures.ThreadPoolExecutor(
            max_workers=max(1, options.grpc_max_threads),
            thread_name_prefix="grpc_worker"),
        options=channel_args)
    prediction_service_pb2_grpc.add_PredictionServiceServicer_to_server(
        prediction_service_impl.PredictionServiceImpl(
            self._server_core,
            prediction_service_impl.PredictionServiceImplOptions(
                enable_serialization_as_tensor_content=(
                    options.enable_serialization_as_tensor_content))),
        server)
    model_service_pb2_grpc.add_ModelServiceServicer_to_server(
        model_service_impl.ModelServiceImpl(self._server_core), server)
    if options.port:
      address = f"0.0.0.0:{options.port}"
      self.grpc_port = _add_port(server, address, credentials)
      if not self.grpc_port:
        raise StartupError(f"Failed to bind gRPC port {address} (in use?)")
    if options.grpc_socket_path:
      socket_path = options.grpc_socket_path
      if os.path.exists(socket_path):
        os.unlink(socket_path)  # A stale socket from an earlier run.
      if not _add_port(server, f"unix:{socket_path}", credentials):
        hint = (" (a socket path can have at most 107 characters)"
                if len(socket_path) > 107 else "")
        raise StartupError(
            f"Failed to listen on gRPC UNIX socket {socket_path}{hint}")
    if options.enable_grpc_healthcheck_service:
      self._health = _add_health_service(server)
    server.start()
    self._grpc_server = server
    if options.port:
      logging.info("Running gRPC ModelServer at 0.0.0.0:%d ...", self.grpc_port)
    if options.grpc_socket_path:
      logging.info("Running gRPC ModelServer at UNIX socket %s ...",
                   options.grpc_socket_path)

  def _start_http(self, options: ServerOptions) -> None:
    """Starts the REST API (and the Prometheus page) if --rest_api_port is set."""
    if not options.rest_api_port:
      return
    if options.rest_api_port == options.port:
      logging.error(
          "--rest_api_port cannot be the same as --port. Please use a "
          "different port for HTTP/REST API. Skipped exporting HTTP/REST API.")
      return
    try:
      monitoring = (
          http_server.read_monitoring_config(options.monitoring_config_file)
          if options.monitoring_config_file else None)
    except status.ServingError as e:
      raise StartupError(str(e)) from e
    rest = http_server.HttpRestServer(
        self._server_core,
        http_server.HttpRestServer.Options(
            num_threads=options.rest_api_num_threads,
            timeout_in_ms=options.rest_api_timeout_in_ms,
            enable_cors_support=options.rest_api_enable_cors_support,
            monitoring_config=monitoring))
    try:
      self.rest_port = rest.start(options.rest_api_port)
    except OSError as e:
      raise StartupError(
          f"Failed to start HTTP/REST API on port {options.rest_api_port}: "
          f"{e}") from e
    self._http_server = rest

  def wait_for_termination(self) -> None:
    """Serves until SIGTERM/SIGINT, then drains in-flight requests and exits."""
    for sig in (signal.SIGTERM, signal.SIGINT):
      signal.signal(sig, lambda signum, frame: self._stopped.set())
    while not self._stopped.wait(timeout=1.0):
      pass
    logging.info("Received shutdown signal; draining in-flight requests.")
    self.stop()

  def stop(self) -> None:
    """Stops taking requests, lets in-flight ones finish, unloads the models."""
    self._stopped.set()
    if self._health is not None:
      self._health.enter_graceful_shutdown()  # Health checks: NOT_SERVING.
    grpc_stopped = None
    if self._grpc_server is not None:
      # Refuses new RPCs at once; in-flight ones get the grace period, which
      # runs while REST drains below.
      grpc_stopped = self._grpc_server.stop(grace=_SHUTDOWN_GRACE_SECONDS)
      self._grpc_server = None
    if self._http_server is not None:
      self._http_server.stop()
      self._http_server = None
    if grpc_stopped is not None:
      grpc_stopped.wait()
    for stopper in self._background_stoppers:
      stopper()
    self._background_stoppers.clear()
    if self._server_core is not None:
      self._server_core.stop()
      self._server_core = None
    if self._batch_scheduler is not None:
      self._batch_scheduler.stop()
      self._batch_scheduler = None
    for stopper in self._after_unload_stoppers:
      stopper()
    self._after_unload_stoppers.clear()
    logging.info("Server stopped.")
