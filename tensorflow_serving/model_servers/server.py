"""Server: builds ServerCore and the gRPC (and REST) front ends from Options.

The counterpart of upstream's model_servers/server.cc. main.py turns flags
into Server.Options; tests build Options directly. Startup order follows
upstream: ServerCore.create blocks until every configured model is
available, and only then do the ports start answering, so a client that can
connect can also be served. One DataPlane over the ServerCore serves every
front end (gRPC PredictionService and ModelService, REST, and the V2
protocol's gRPC service and /v2 REST API through V2InferenceImpl).

Readiness is ServerCore's (is_ready): the V2 protocol's ServerReady and
/v2/health/ready answer it, and the gRPC health service follows it, so
every service is NOT_SERVING while a configured model has no AVAILABLE
version (after a reload that adds one) and from the first moment of a
shutdown (stop() marks the core before anything closes).
"""

import concurrent.futures
import dataclasses
import gc
import multiprocessing
import os
import signal
import threading
from typing import Any, Callable, Optional

from absl import logging
import grpc
from grpc_health.v1 import health
from grpc_health.v1 import health_pb2
from grpc_health.v1 import health_pb2_grpc

from tensorflow.core.protobuf import config_pb2

from tensorflow_serving.apis import grpc_service_pb2_grpc
from tensorflow_serving.apis import model_service_pb2_grpc
from tensorflow_serving.core import loader_harness
from tensorflow_serving.core import log_collector
from tensorflow_serving.core import request_logger
from tensorflow_serving.core import server_request_logger
from tensorflow_serving.apis import prediction_service_pb2_grpc
from tensorflow_serving.model_servers import data_plane as data_plane_lib
from tensorflow_serving.model_servers import grpc_inference_service_impl
from tensorflow_serving.model_servers import grpc_drain
from tensorflow_serving.model_servers import grpc_memory_budget
from tensorflow_serving.model_servers import grpc_restricted_api
from tensorflow_serving.model_servers import http_rest_api_util
from tensorflow_serving.model_servers import http_server
from tensorflow_serving.model_servers import model_config_file
from tensorflow_serving.model_servers import model_service_impl
from tensorflow_serving.model_servers import platform_config_util
from tensorflow_serving.model_servers import prediction_service_impl
from tensorflow_serving.model_servers import restricted_api as restricted_api_lib
from tensorflow_serving.model_servers import server_core as server_core_lib
from tensorflow_serving.model_servers import ssl_util
from tensorflow_serving.model_servers import v2_http_rest_api_handler
from tensorflow_serving.model_servers import v2_inference_impl
from tensorflow_serving.servables.tensorflow import batching_parameters_util
from tensorflow_serving.servables.tensorflow import bundle_factory_util
from tensorflow_serving.servables.tensorflow import saved_model_bundle_source_adapter as adapter_lib
from tensorflow_serving.servables.tensorflow import session_bundle_config_pb2
from tensorflow_serving.servables.tensorflow import tfrecord_log_collector
from tensorflow_serving.sources.storage_path import file_system_registry
from tensorflow_serving.sources.storage_path import model_cache as model_cache_lib
from tensorflow_serving.sources.storage_path import version_readiness
from tensorflow_serving.util import memory_budget as memory_budget_lib
from tensorflow_serving.util import proto_util
from tensorflow_serving.util import status

# gRPC's own limit; upstream sets it for both directions on the server.
_MAX_MESSAGE_SIZE = 2**31 - 1
# How long a stopping server lets in-flight requests finish.
_SHUTDOWN_GRACE_SECONDS = 10.0
# The service names --enable_grpc_healthcheck_service reports: the short
# names upstream sets, the full ones gRPC clients usually ask for, the V2
# protocol's service, and "" (the whole server). All are SERVING exactly
# when the server is ready (ServerCore.is_ready).
_HEALTH_SERVICE_NAMES = ("", "ModelService", "PredictionService",
                         "tensorflow.serving.ModelService",
                         "tensorflow.serving.PredictionService",
                         "inference.GRPCInferenceService")


class StartupError(Exception):
  """The server could not start; main prints "Failed to start server"."""


def _default_grpc_max_threads() -> int:
  """2 x CPUs. Upstream says 4 x CPUs; Python threads share one interpreter
  lock, and fewer of them measured faster at every load tried
  (docs/performance.md)."""
  return 2 * multiprocessing.cpu_count()


@dataclasses.dataclass(frozen=True)
class ServerOptions:
  """Every option of tensorflow_model_server, named as its flag.

  ServerOptions() is the binary's configuration: main.py takes every flag's
  default from these fields (main_test checks it), and the CPU-derived ones
  are computed on this machine.
  """

  port: int = 8500
  grpc_socket_path: str = ""
  rest_api_port: int = 0
  rest_api_num_threads: int = dataclasses.field(
      default_factory=http_server.default_num_threads)
  rest_api_timeout_in_ms: int = 30000
  rest_api_enable_cors_support: bool = False
  # Not in upstream: the largest REST body, as received and once inflated
  # (upstream: 100 MB inflated, a plain body unbounded).
  rest_api_max_body_bytes: int = http_rest_api_util.DEFAULT_MAX_BODY_BYTES
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
  max_num_load_retries: int = loader_harness.DEFAULT_MAX_NUM_LOAD_RETRIES
  load_retry_interval_micros: int = (
      loader_harness.DEFAULT_LOAD_RETRY_INTERVAL_MICROS)
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
  grpc_max_threads: int = dataclasses.field(
      default_factory=_default_grpc_max_threads)
  enable_model_warmup: bool = True
  num_request_iterations_for_warmup: int = 0
  monitoring_config_file: str = ""
  remove_unused_fields_from_bundle_metagraph: bool = True
  prefer_tflite_model: bool = False
  num_tflite_pools: int = dataclasses.field(
      default_factory=multiprocessing.cpu_count)
  num_tflite_interpreters_per_pool: int = 1
  enable_signature_method_name_check: bool = False
  xla_cpu_compilation_enabled: bool = False
  xla_gpu_compilation_enabled: bool = False
  enable_profiler: bool = True
  thread_pool_factory_config_file: str = ""
  mixed_precision: str = ""
  skip_initialize_tpu: bool = False
  # On by default, unlike upstream: Kubernetes gRPC probes need it, and it
  # reports real readiness here (docs/serving_config.md).
  enable_grpc_healthcheck_service: bool = True
  enable_serialization_as_tensor_content: bool = False
  # Not in upstream: models on object stores and the upload-complete guard
  # (docs/serving_config.md).
  model_cache_dir: str = ""
  version_ready_marker: str = ""
  storage_timeout_seconds: float = 30.0
  storage_download_threads: int = 8
  # Not in upstream: access control by API group (restricted_api.py).
  restricted_api: str = ""
  # Not in upstream: HTTPS on the REST port (an SSLConfig, as ssl_config_file).
  rest_api_ssl_config_file: str = ""
  # Not in upstream: the bytes all requests may be decoding at once
  # (util/memory_budget.py); 0: no bound.
  request_memory_budget_bytes: int = 1 << 30
  # Not in upstream: log records as JSON lines (applied by main.py, for the
  # whole process; docs/serving_config.md).
  log_format: str = "text"

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
  try:
    restricted_api_lib.RestrictedApi.parse(options.restricted_api)
  except status.ServingError as e:
    raise StartupError(e.message) from e
  if options.rest_api_max_body_bytes <= 0:
    raise StartupError("--rest_api_max_body_bytes must be positive: "
                       f"{options.rest_api_max_body_bytes}")
  if options.request_memory_budget_bytes < 0:
    raise StartupError("--request_memory_budget_bytes cannot be negative: "
                       f"{options.request_memory_budget_bytes}")
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


def _add_health_service(
    server: grpc.Server,
    core: server_core_lib.ServerCore) -> health.HealthServicer:
  """grpc.health.v1.Health: every service SERVING exactly when `core` is
  ready, NOT_SERVING otherwise."""
  servicer = health.HealthServicer()

  def follow(ready: bool) -> None:
    serving = (health_pb2.HealthCheckResponse.SERVING if ready else
               health_pb2.HealthCheckResponse.NOT_SERVING)
    for name in _HEALTH_SERVICE_NAMES:
      servicer.set(name, serving)

  core.add_readiness_listener(follow)
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


def _session_bundle_config(
    options: ServerOptions) -> session_bundle_config_pb2.SessionBundleConfig:
  """The "tensorflow" platform's config, from the flags (as upstream's server).

  Raises:
    StartupError: a session config file that cannot be read.
    ServingError: a batching parameters file that cannot be read.
  """
  config = session_bundle_config_pb2.SessionBundleConfig()
  if options.enable_batching:
    config.batching_parameters.CopyFrom(
        batching_parameters_util.read_batching_parameters_file(
            options.batching_parameters_file)
        if options.batching_parameters_file else
        batching_parameters_util.default_batching_parameters())
  session_config = bundle_factory_util.build_session_config(
      options.tensorflow_session_parallelism,
      options.tensorflow_intra_op_parallelism,
      options.tensorflow_inter_op_parallelism,
      _read_session_config(options.tensorflow_session_config_file))
  config.session_config.CopyFrom(session_config)
  config.saved_model_tags.extend(
      adapter_lib.parse_saved_model_tags(options.saved_model_tags))
  config.enable_model_warmup = options.enable_model_warmup
  config.model_warmup_options.CopyFrom(_model_warmup_options(options))
  return config


def _platform_config_map(
    options: ServerOptions) -> platform_config_util.PlatformConfigMap:
  """--platform_config_file, else the "tensorflow" platform of the flags.

  Either way the server builds its platforms from this map, through
  platform_config_util.create_platform_adapters.
  """
  if options.platform_config_file:
    if options.enable_batching:
      logging.warning("--enable_batching is ignored: --platform_config_file "
                      "decides the platform's batching.")
    return platform_config_util.read_platform_config_map(
        options.platform_config_file)
  return platform_config_util.tensorflow_platform_config_map(
      _session_bundle_config(options))


def _batching_parameters_by_platform(
    config_map: platform_config_util.PlatformConfigMap,
    adapters: platform_config_util.PlatformAdapters) -> dict[str, object]:
  """Platform -> its BatchingParameters, for the platforms that batch."""
  result = {}
  for platform in adapters.batch_schedulers:
    config = platform_config_util.SavedModelBundleSourceAdapterConfig()
    if config_map.platform_configs[platform].source_adapter_config.Unpack(
        config):
      result[platform] = config.legacy_config.batching_parameters
  return result


def _read_session_config(path: str) -> Optional[config_pb2.ConfigProto]:
  """Reads --tensorflow_session_config_file (a text ConfigProto), if set."""
  if not path:
    return None
  try:
    return proto_util.parse_proto_text_file(path, config_pb2.ConfigProto())
  except status.ServingError as e:
    raise StartupError(
        f"Failed to read --tensorflow_session_config_file {path}: {e}") from e


class Server:
  """The model server: ServerCore plus its gRPC and REST front ends."""

  Options = ServerOptions

  def __init__(self) -> None:
    self._server_core = None
    self._data_plane: Optional[data_plane_lib.DataPlane] = None
    self._v2: Optional[v2_inference_impl.V2InferenceImpl] = None
    self._grpc_server: Optional[grpc.Server] = None
    self._stopped = threading.Event()
    self._background_stoppers: list[Callable[[], None]] = []
    self.grpc_port: Optional[int] = None
    self.rest_port: Optional[int] = None
    # The batching parameters of each platform that batches (the startup
    # warning about --grpc_max_threads reads them).
    self._batching_parameters: dict[str, object] = {}
    self._http_server: Optional[http_server.HttpRestServer] = None
    self._health: Optional[health.HealthServicer] = None
    # Refuses new RPCs once stopping, and counts the ones being served.
    self._grpc_drain = grpc_drain.GrpcDrain()
    self._grpc_socket_path = ""
    # --restricted_api, parsed (the gRPC interceptor's; REST's to use too).
    self.restricted_api = restricted_api_lib.RestrictedApi({})
    # --request_memory_budget_bytes, shared by gRPC and REST; None: no bound.
    self.memory_budget: Optional[memory_budget_lib.MemoryBudget] = None
    # The platforms' adapters and the batch schedulers they own (stopped
    # once the models have unloaded).
    self._platform_adapters: Optional[
        platform_config_util.PlatformAdapters] = None
    # Called once the models have unloaded (the model cache).
    self._after_unload_stoppers: list[Callable[[], None]] = []

  @property
  def server_core(self):
    return self._server_core

  @property
  def batch_scheduler(self):
    """The "tensorflow" platform's batch scheduler (--enable_batching)."""
    if self._platform_adapters is None:
      return None
    return self._platform_adapters.batch_schedulers.get(
        server_core_lib.TENSORFLOW_MODEL_PLATFORM)

  def build_and_start(self, options: ServerOptions) -> None:
    """Loads the configured models, then starts serving. Raises StartupError."""
    validate_options(options)
    try:
      self._server_core = self._build_server_core(options)
      self._data_plane = data_plane_lib.DataPlane(self._server_core)
      self._v2 = v2_inference_impl.V2InferenceImpl(self._server_core,
                                                   self._data_plane)
    except status.ServingError as e:
      self.stop()  # Whatever started before the failure (schedulers).
      raise StartupError(str(e)) from e
    except StartupError:
      self.stop()  # E.g. a bad session config file after batching started.
      raise
    # What exists now (TensorFlow's modules, the loaded graphs: over 270,000
    # objects) lives as long as the server. Out of the collector's
    # sight, a full collection scans only what requests allocate, instead of
    # stopping every thread for 100-200 ms (docs/performance.md, "Request
    # batching": the tail latency under load).
    gc.freeze()
    try:
      self._start_grpc(options)
      self._start_http(options)
    except BaseException:
      self.stop()  # Unload what was loaded; the caller exits or retries.
      raise

  def _build_server_core(
      self, options: ServerOptions) -> server_core_lib.ServerCore:
    """Reads the model config, then loads every model (blocking)."""
    file_system = file_system_registry.SchemeFileSystem(
        file_system_registry.SchemeFileSystem.Options(
            timeout_seconds=options.storage_timeout_seconds))
    cache = model_cache_lib.ModelCache(
        file_system,
        model_cache_lib.ModelCache.Options(
            cache_dir=options.model_cache_dir,
            download_threads=options.storage_download_threads))
    self._after_unload_stoppers.append(cache.close)
    if options.model_config_file:
      config = model_config_file.parse_model_server_config_file(
          options.model_config_file, file_system)
    else:
      config = model_config_file.build_single_model_config(
          options.model_name, options.model_base_path)
    config_map = _platform_config_map(options)
    self._platform_adapters = platform_config_util.create_platform_adapters(
        config_map,
        platform_config_util.AdapterSettings(
            enable_signature_method_name_check=(
                options.enable_signature_method_name_check)))
    self._batching_parameters = _batching_parameters_by_platform(
        config_map, self._platform_adapters)
    core = server_core_lib.ServerCore.create(
        server_core_lib.ServerCore.Options(
            model_server_config=config,
            platform_source_adapters=self._platform_adapters.factories,
            num_load_threads=options.num_load_threads,
            num_unload_threads=options.num_unload_threads,
            max_num_load_retries=options.max_num_load_retries,
            load_retry_interval_micros=options.load_retry_interval_micros,
            file_system_poll_wait_seconds=(
                options.file_system_poll_wait_seconds),
            allow_version_labels_for_unavailable_models=(
                options.allow_version_labels_for_unavailable_models),
            server_request_logger=_new_server_request_logger(),
            file_system=file_system,
            model_cache=cache,
            version_readiness=version_readiness.VersionReadiness.Options(
                ready_marker=options.version_ready_marker),
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
          options.model_config_file_poll_wait_seconds, file_system)
      poller.start()
      self._background_stoppers.append(poller.stop)
    return core

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
    # The drain first: while stopping, every RPC is refused the same way.
    interceptors: list[grpc.ServerInterceptor] = [self._grpc_drain]
    restricted = restricted_api_lib.RestrictedApi.parse(options.restricted_api)
    self.restricted_api = restricted
    if restricted.enabled:
      interceptors.append(grpc_restricted_api.GrpcRestrictedApi(restricted))
    if options.request_memory_budget_bytes:
      self.memory_budget = memory_budget_lib.MemoryBudget(
          options.request_memory_budget_bytes)
      interceptors.append(
          grpc_memory_budget.GrpcMemoryBudget(self.memory_budget))
    for params in self._batching_parameters.values():
      warning = batching_parameters_util.request_threads_warning(
          params, options.grpc_max_threads)
      if warning:
        logging.warning("%s", warning)
    server = grpc.server(
        concurrent.futures.ThreadPoolExecutor(
            max_workers=max(1, options.grpc_max_threads),
            thread_name_prefix="grpc_worker"),
        interceptors=interceptors,
        options=channel_args)
    prediction_service_pb2_grpc.add_PredictionServiceServicer_to_server(
        prediction_service_impl.PredictionServiceImpl(
            self._data_plane,
            prediction_service_impl.PredictionServiceImplOptions(
                enable_serialization_as_tensor_content=(
                    options.enable_serialization_as_tensor_content))),
        server)
    model_service_pb2_grpc.add_ModelServiceServicer_to_server(
        model_service_impl.ModelServiceImpl(self._server_core,
                                            self._data_plane), server)
    grpc_service_pb2_grpc.add_GRPCInferenceServiceServicer_to_server(
        grpc_inference_service_impl.GrpcInferenceServiceImpl(self._v2), server)
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
      self._grpc_socket_path = socket_path
    if options.enable_grpc_healthcheck_service:
      self._health = _add_health_service(server, self._server_core)
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
      if options.rest_api_ssl_config_file:
        logging.warning("--rest_api_ssl_config_file is ignored: "
                        "--rest_api_port is not set.")
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
    try:
      ssl_context = (ssl_util.build_ssl_context(
          ssl_util.read_ssl_config(options.rest_api_ssl_config_file))
                     if options.rest_api_ssl_config_file else None)
    except status.ServingError as e:
      raise StartupError(f"--rest_api_ssl_config_file: {e}") from e
    rest = http_server.HttpRestServer(
        self._data_plane,
        http_server.HttpRestServer.Options(
            num_threads=options.rest_api_num_threads,
            timeout_in_ms=options.rest_api_timeout_in_ms,
            enable_cors_support=options.rest_api_enable_cors_support,
            monitoring_config=monitoring,
            max_body_bytes=options.rest_api_max_body_bytes,
            ssl_context=ssl_context,
            restricted_api=self.restricted_api),
        v2_handler=v2_http_rest_api_handler.V2HttpRestApiHandler(self._v2),
        memory_budget=self.memory_budget)
    try:
      self.rest_port = rest.start(options.rest_api_port)
    except OSError as e:
      raise StartupError(
          f"Failed to start HTTP/REST API on port {options.rest_api_port}: "
          f"{e}") from e
    self._http_server = rest

  def request_stop(self) -> None:
    """Makes wait_for_termination() drain and return (signal-handler safe)."""
    self._stopped.set()

  def wait_for_termination(self) -> None:
    """Serves until request_stop() (main.py calls it on SIGTERM/SIGINT), then
    drains: refuses new requests, finishes the ones in flight, unloads the
    models. The gRPC port stays open, refusing every RPC with UNAVAILABLE,
    for the process to close at its exit (see stop(keep_grpc_port=True))."""
    while not self._stopped.wait(timeout=1.0):
      pass
    logging.info("Received shutdown signal; draining in-flight requests.")
    self.stop(keep_grpc_port=True)

  def stop(self, keep_grpc_port: bool = False) -> None:
    """Stops taking requests, lets in-flight ones finish, unloads the models.

    Nothing in flight is lost: from the first moment every new RPC is
    refused with UNAVAILABLE and every new REST request with 503 before any
    work is done for it (grpc_drain.GrpcDrain, HttpRestServer.
    start_draining), health checks say NOT_SERVING, and the requests
    already admitted on both ports finish (within _SHUTDOWN_GRACE_SECONDS)
    before the models unload. The REST port goes last
    (HttpRestServer.stop): it keeps answering 503 while the models unload,
    then closes its connections once quiet and refuses new ones.

    Args:
      keep_grpc_port: leave the gRPC server running (refusing every RPC) for
        a process that exits right after: grpcio's own stop cancels the RPCs
        that arrived but were not yet handed to a handler, whose clients then
        see CANCELLED (grpc/grpc#41785), while the process's exit closes the
        connections, which a client sees as UNAVAILABLE. The REST port is
        likewise left open, dropping new connections, which the exit then
        refuses. False (tests, an embedding program): stop both, freeing the
        ports.
    """
    self._stopped.set()
    if self._server_core is not None:
      # Not ready from here on: V2 readiness and the health service say so
      # while in-flight requests finish.
      self._server_core.begin_shutdown()
    self._grpc_drain.start_draining()
    if self._http_server is not None:
      # New REST requests: 503 from now on (http_server.start_draining).
      self._http_server.start_draining()
    if self._health is not None:
      self._health.enter_graceful_shutdown()  # Health checks: NOT_SERVING.
    if self._http_server is not None:
      if not self._http_server.wait_for_in_flight(_SHUTDOWN_GRACE_SECONDS):
        logging.warning("REST requests still running after %g s; stopping "
                        "anyway.", _SHUTDOWN_GRACE_SECONDS)
    if self._grpc_server is not None:
      if not self._grpc_drain.wait_for_in_flight(_SHUTDOWN_GRACE_SECONDS):
        logging.warning("%d gRPC request(s) still running after %g s; "
                        "stopping anyway.", self._grpc_drain.in_flight,
                        _SHUTDOWN_GRACE_SECONDS)
      if not keep_grpc_port:
        self._grpc_server.stop(grace=_SHUTDOWN_GRACE_SECONDS).wait()
        self._grpc_server = None
      elif self._grpc_socket_path:
        # New connections now fail at once; the process's exit closes the
        # open ones. (A socket file left by a killed server is removed at
        # start-up.)
        try:
          os.unlink(self._grpc_socket_path)
        except OSError:
          pass
      self._grpc_socket_path = ""
    for stopper in self._background_stoppers:
      stopper()
    self._background_stoppers.clear()
    if self._server_core is not None:
      self._server_core.stop()
      self._server_core = None
    if self._platform_adapters is not None:
      self._platform_adapters.stop()
    for stopper in self._after_unload_stoppers:
      stopper()
    self._after_unload_stoppers.clear()
    if self._http_server is not None:
      # Last, so that the port keeps answering 503 while the models unload:
      # quiet connections close, new ones are refused (kept open, dropping
      # new connections, when the process exits next).
      self._http_server.stop(keep_port=keep_grpc_port)
      self._http_server = None
    logging.info("Server stopped.")
