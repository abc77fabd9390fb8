"""ServerCore: the models of a ModelServerConfig, loaded and kept current.

The heart of tensorflow_model_server (as upstream's model_servers/
server_core.h). From a ModelServerConfig's model_config_list it builds

  FileSystemStoragePathSource -> DynamicSourceRouter -> one SourceAdapter per
  platform (+ an error adapter for unknown ones) -> AspiredVersionsManager

where each platform's adapter is wrapped in a CachingSourceAdapter, which
copies versions on s3:// and gs:// to a local ModelCache as part of their
load (not in upstream),

with one event bus that a ServableStateMonitor listens to. Platforms come
from a registry (Options.platform_source_adapters: name -> adapter factory):
the server registers "tensorflow"; tests register "hashmap".

Behaviour, as upstream:
  * create() blocks until every configured model has a version AVAILABLE, and
    fails with "N model(s) did not become available: {...}" (UNKNOWN) if some
    version ends in error instead. Models load on num_initial_load_threads
    threads at startup, num_load_threads afterwards.
  * reload_config() replaces the config: models missing from it are
    unloaded, new ones loaded (and waited for), existing ones follow their
    new version policy. Only ModelConfigList -> ModelConfigList transitions
    are allowed. Invalid configs are rejected (INVALID_ARGUMENT or
    FAILED_PRECONDITION, upstream's texts) before anything changes, so the
    old config stays in force.
  * Version labels must point at an AVAILABLE version; with
    allow_version_labels_for_unavailable_models, a label that is new (or
    keeps its version) may point at any version.
  * get_servable_handle(ModelSpec) resolves name + version / version_label /
    latest.

Not in upstream:
  * Readiness, in one place: is_ready() is true only while every model of
    the config in force has an AVAILABLE version and no shutdown has begun
    (begin_shutdown(), or stop()); is_live() until stop(). Readiness
    listeners hear every change (the gRPC health service, through Server).
    The V2 protocol's ServerReady and /v2/health/ready answer is_ready().
  * load_model() and unload_model() change one model of the config in
    force, exactly as a reload_config() with that one change would (the V2
    protocol's repository API). A model taken out of the config by any
    reload is remembered (unloaded_model_configs()), so that load_model()
    can bring it back by name.
One reload runs at a time (config lock); request lookups never wait for it.
"""

import dataclasses
import os
import threading
import time
from typing import Callable, Mapping, Optional

from absl import logging

from tensorflow_serving.apis import inference_pb2
from tensorflow_serving.apis import model_pb2
from tensorflow_serving.config import file_system_storage_path_source_pb2
from tensorflow_serving.config import model_server_config_pb2
from tensorflow_serving.core import aspired_version_policy
from tensorflow_serving.core import aspired_versions_manager
from tensorflow_serving.core import availability_preserving_policy
from tensorflow_serving.core import dynamic_source_router
from tensorflow_serving.core import loader_harness
from tensorflow_serving.core import manager as manager_lib
from tensorflow_serving.core import servable_handle
from tensorflow_serving.core import servable_id as servable_id_lib
from tensorflow_serving.core import servable_state
from tensorflow_serving.core import servable_state_metrics
from tensorflow_serving.core import servable_state_monitor
from tensorflow_serving.core import server_request_logger as request_logger_lib
from tensorflow_serving.core import source_adapter
from tensorflow_serving.core import target
from tensorflow_serving.sources.storage_path import caching_source_adapter
from tensorflow_serving.sources.storage_path import file_system as fs_lib
from tensorflow_serving.sources.storage_path import file_system_registry
from tensorflow_serving.sources.storage_path import file_system_storage_path_source as fs_source
from tensorflow_serving.sources.storage_path import model_cache as model_cache_lib
from tensorflow_serving.sources.storage_path import version_readiness as readiness_lib
from tensorflow_serving.util import clock as clock_lib
from tensorflow_serving.util import event_bus
from tensorflow_serving.util import metrics
from tensorflow_serving.util import status

ModelServerConfig = model_server_config_pb2.ModelServerConfig
StoragePathSourceConfig = (
    file_system_storage_path_source_pb2.FileSystemStoragePathSourceConfig)
ManagerState = servable_state.ManagerState
ServableRequest = manager_lib.ServableRequest

# The platform name of TensorFlow models (upstream's kTensorFlowModelPlatform).
TENSORFLOW_MODEL_PLATFORM = "tensorflow"

SourceAdapterFactory = Callable[[], source_adapter.SourceAdapter]

# Told the new value each time ServerCore.is_ready() changes.
ReadinessListener = Callable[[bool], None]


def _default_initial_load_threads() -> int:
  return 4 * (os.cpu_count() or 1)


def _is_relative_path(uri: str) -> bool:
  """True for a plain relative path; URIs ("gs://b/m") count as absolute."""
  if "://" in uri:
    return False
  return not uri.startswith("/")


def _get_platform(model_config) -> str:
  """A model's platform, also from the deprecated model_type field."""
  if model_config.model_type != model_server_config_pb2.MODEL_TYPE_UNSPECIFIED:
    logging.warning("Deprecated ModelServerConfig::model_type field used. "
                    "Prefer ModelServerConfig::model_platform.")
    if model_config.model_platform:
      raise status.invalid_argument(
          "Illegal setting both ModelServerConfig::model_type (deprecated) "
          "and ModelServerConfig::model_platform.")
    if model_config.model_type == model_server_config_pb2.TENSORFLOW:
      return TENSORFLOW_MODEL_PLATFORM
    raise status.invalid_argument(
        f"ModelServerConfig::model_type choice {model_config.model_type} not "
        "supported.")
  if not model_config.model_platform:
    raise status.invalid_argument(
        "Illegal setting neither ModelServerConfig::model_type (deprecated) "
        "nor ModelServerConfig::model_platform.")
  return model_config.model_platform


def _validate_model_config_list(config_list) -> None:
  names = set()
  for model in config_list.config:
    if model.name in names:
      raise status.invalid_argument(
          f"Illegal to list model {model.name} multiple times in config list")
    names.add(model.name)
  for model in config_list.config:
    if _is_relative_path(model.base_path):
      raise status.invalid_argument(
          f"Expected model {model.name} to have an absolute path or URI; got "
          f"base_path()={model.base_path}")


def _validate_no_models_change_platforms(old_list, new_list) -> None:
  old_platforms = {m.name: _get_platform(m) for m in old_list.config}
  for model in new_list.config:
    old = old_platforms.get(model.name)
    if old is None:
      continue
    new = _get_platform(model)
    if new != old:
      raise status.invalid_argument(
          "Illegal to change a model's platform. For model "
          f"{model.name} platform was {old} and new platform requested is "
          f"{new}")


def wait_until_models_available(
    models: set[str],
    monitor: servable_state_monitor.ServableStateMonitor,
    stop_event: threading.Event | None = None,
    deadline: Optional[float] = None,
    serving: servable_state_monitor.ServableStateMonitor | None = None
) -> None:
  """Blocks until each model has a version AVAILABLE (or one in END).

  There is no timeout by default (as upstream: a base path that does not
  exist yet is waited for); setting `stop_event` ends the wait, and so does
  `deadline` (time.monotonic() seconds), if given. With `serving` (a
  monitor that has seen everything so far), models that have an AVAILABLE
  version there count as available too: a model removed and re-added
  within one manager round never changes state, so `monitor` (fresh) would
  never hear of it.

  Raises:
    ServingError: UNKNOWN "N model(s) did not become available: {...}" naming
      each version that ended instead, with its error; CANCELLED if stopped;
      DEADLINE_EXCEEDED when the deadline passes first.
  """
  if not models:
    return
  done = threading.Event()
  outcome = []

  def notify(reached, states):
    outcome.append((reached, states))
    done.set()

  monitor.notify_when_servables_reach_state(
      [ServableRequest.latest(m) for m in sorted(models)],
      ManagerState.AVAILABLE, notify)
  while not done.wait(0.05):
    if serving is not None and models <= serving.get_available_servable_states():
      return
    if stop_event is not None and stop_event.is_set():
      raise status.cancelled(
          "ServerCore stopped while waiting for models to become available")
    if deadline is not None and time.monotonic() >= deadline:
      raise status.deadline_exceeded(
          f"Model(s) {', '.join(sorted(models))} did not become available "
          "before the request's deadline; they stay configured and load when "
          "their versions can be loaded")
  reached, states = outcome[0]
  if reached:
    return
  failed = sorted(
      (id_ for id_, state in states.items() if state != ManagerState.AVAILABLE),
      key=lambda id_: (id_.name, id_.version))
  message = f"{len(failed)} model(s) did not become available: {{"
  for id_ in failed:
    state = monitor.get_state(id_)
    error = ""
    if state is not None and state.health is not None:
      error = " due to error: " + servable_state.status_string(state.health)
    message += f"{{{id_}{error}}}, "
  message += "}"
  raise status.unknown(message)


class ServerCore:
  """Serves the models of a ModelServerConfig. See the module docstring."""

  @dataclasses.dataclass(frozen=True)
  class Options:
    """ServerCore options (flag names in brackets).

    Attributes:
      model_server_config: the models to serve at startup.
      platform_source_adapters: platform name -> factory of the
        SourceAdapter[str, Loader] that turns a version dir into a Loader.
      num_load_threads: load threads after startup; 0 loads on the manager
        thread [--num_load_threads].
      num_unload_threads: unload threads; 0 unloads on the manager thread
        [--num_unload_threads].
      num_initial_load_threads: load threads until the startup models are
        available (default 4 per CPU, as upstream).
      max_num_load_retries: retries after a failed load (default 5)
        [--max_num_load_retries].
      load_retry_interval_micros: wait between load attempts (default 60 s)
        [--load_retry_interval_micros].
      file_system_poll_wait_seconds: version-directory poll interval (default
        1; 0 polls once; negative never; fractions allowed for tests)
        [--file_system_poll_wait_seconds].
      servable_versions_always_present: refuse to unload a model's last
        versions when its directory empties.
      allow_version_labels: whether labels are usable at all (default True).
      allow_version_labels_for_unavailable_models: a new label may point at
        a version that is not loaded [--allow_version_labels_for_unavailable_
        models].
      force_allow_any_version_labels_for_unavailable_models: any label may.
      aspired_version_policy_factory: builds the manager's policy (default:
        AvailabilityPreservingPolicy).
      manage_state_interval_micros: the manager thread's period (100 ms).
      clock: event timestamps and load-retry waits (a fake one in tests).
      file_system: how base paths are read (None: s3:// and gs:// through
        their object-store clients, other paths through tf.io.gfile).
      model_cache: where versions on object stores are copied before they
        load; every platform's adapter is wrapped in a CachingSourceAdapter
        (None: a ModelCache with default options, over file_system).
      version_readiness: the upload-complete guard's options
        [--version_ready_marker] (None: no guard, as upstream).
      server_request_logger: where ModelConfig.logging_config takes effect:
        updated with each applied config, fed by log_request(), closed by
        stop(). None: a config with logging_config is refused ("No
        request-logger-creator provided.", as upstream's open-source build).
    """

    model_server_config: ModelServerConfig = dataclasses.field(
        default_factory=ModelServerConfig)
    platform_source_adapters: Mapping[str, SourceAdapterFactory] = (
        dataclasses.field(default_factory=dict))
    num_load_threads: int = 0
    num_unload_threads: int = 0
    num_initial_load_threads: int = dataclasses.field(
        default_factory=_default_initial_load_threads)
    max_num_load_retries: int = loader_harness.DEFAULT_MAX_NUM_LOAD_RETRIES
    load_retry_interval_micros: int = (
        loader_harness.DEFAULT_LOAD_RETRY_INTERVAL_MICROS)
    file_system_poll_wait_seconds: float = 1
    servable_versions_always_present: bool = False
    allow_version_labels: bool = True
    allow_version_labels_for_unavailable_models: bool = False
    force_allow_any_version_labels_for_unavailable_models: bool = False
    aspired_version_policy_factory: Callable[
        [], aspired_version_policy.AspiredVersionPolicy] = (
            availability_preserving_policy.AvailabilityPreservingPolicy)
    manage_state_interval_micros: int = 100_000
    clock: clock_lib.Clock = dataclasses.field(
        default_factory=clock_lib.RealClock)
    file_system: fs_lib.FileSystem | None = None
    model_cache: model_cache_lib.ModelCache | None = None
    version_readiness: readiness_lib.VersionReadiness.Options | None = None
    server_request_logger: request_logger_lib.ServerRequestLogger | None = None

  def __init__(self, options: "ServerCore.Options") -> None:
    """Builds an empty ServerCore; reload_config() then loads models.

    create() does both. Calling them separately lets another thread stop()
    a server that is still waiting for its startup models (a base path that
    does not exist yet is waited for without end, as upstream).
    """
    self._options = options
    self._bus = event_bus.EventBus(event_bus.EventBus.Options(
        clock=options.clock))
    self._monitor = servable_state_monitor.ServableStateMonitor(self._bus)
    # Not in upstream: each version's state and load time as metrics.
    self._state_metrics = servable_state_metrics.ServableStateMetrics(
        self._bus)
    self._manager = aspired_versions_manager.AspiredVersionsManager(
        aspired_versions_manager.AspiredVersionsManager.Options(
            manage_state_interval_micros=options.manage_state_interval_micros,
            aspired_version_policy=options.aspired_version_policy_factory(),
            num_load_threads=options.num_load_threads,
            num_unload_threads=options.num_unload_threads,
            max_num_load_retries=options.max_num_load_retries,
            load_retry_interval_micros=options.load_retry_interval_micros,
            servable_event_bus=self._bus,
            clock=options.clock))
    # Platform -> router port; the last port is for unknown platforms.
    self._platform_ports = {
        p: i for i, p in enumerate(sorted(options.platform_source_adapters))
    }
    # One reload at a time; guards the pipeline fields below.
    self._config_mu = threading.Lock()
    self._config = ModelServerConfig()  # guarded by self._config_mu
    # The names in self._config, in its order; replaced whole, read lock-free.
    self._model_names: tuple[str, ...] = ()
    self._source: fs_source.FileSystemStoragePathSource | None = None
    self._router: dynamic_source_router.DynamicSourceRouter | None = None
    self._adapters: list[source_adapter.SourceAdapter] = []
    self._labels_mu = threading.Lock()
    # model -> label -> version; None until the first config is applied.
    self._labels: dict[str, dict[str, int]] | None = (
        None)  # guarded by self._labels_mu
    # Set by stop(); ends waits for models and refuses further reloads.
    self._stop_event = threading.Event()
    # Models a reload took out of the config, by name: what load_model()
    # restores. guarded by self._config_mu
    self._unloaded: dict[str, model_server_config_pb2.ModelConfig] = {}
    # Readiness (see is_ready). Reentrant, so that a listener may ask.
    self._ready_mu = threading.RLock()
    self._configured_names: frozenset[str] | None = (
        None)  # guarded by self._ready_mu; None before the first config
    self._shutting_down = False  # guarded by self._ready_mu
    self._last_ready: bool | None = None  # guarded by self._ready_mu
    self._readiness_listeners: list[ReadinessListener] = [
    ]  # guarded by self._ready_mu
    # After the monitor's subscription, so the monitor has seen each event
    # by the time readiness is recomputed from it.
    self._readiness_subscription = self._bus.subscribe(
        lambda unused_event: self._update_readiness())
    # The cache made here when Options.model_cache is None; closed by stop().
    self._own_model_cache: model_cache_lib.ModelCache | None = None

  @classmethod
  def create(cls, options: "ServerCore.Options") -> "ServerCore":
    """Builds a ServerCore and blocks until its models are available.

    Raises:
      ServingError: the config is invalid, or some model did not become
        available ("N model(s) did not become available: {...}").
    """
    core = cls(options)
    try:
      core.reload_config(options.model_server_config)
    except BaseException:
      core.stop()
      raise
    return core

  # ------------------------------------------------------------ accessors

  @property
  def servable_state_monitor(
      self) -> servable_state_monitor.ServableStateMonitor:
    """Every version's lifecycle state (GetModelStatus reads it)."""
    return self._monitor

  @property
  def config(self) -> ModelServerConfig:
    """A copy of the config in force."""
    with self._config_mu:
      copy = ModelServerConfig()
      copy.CopyFrom(self._config)
      return copy

  def configured_model_names(self) -> tuple[str, ...]:
    """The models of the config in force, in its order (without a lock:
    the tuple is replaced whole when a config is applied)."""
    return self._model_names

  def list_available_servable_ids(self) -> list[servable_id_lib.ServableId]:
    return self._manager.list_available_servable_ids()

  def unloaded_model_configs(
      self) -> dict[str, model_server_config_pb2.ModelConfig]:
    """Copies of the models a reload took out of the config, by name.

    Each is the model's last entry in the config; load_model(name) puts it
    back. A model that returns to the config leaves this list.
    """
    with self._config_mu:
      result = {}
      for name, entry in self._unloaded.items():
        copy = model_server_config_pb2.ModelConfig()
        copy.CopyFrom(entry)
        result[name] = copy
      return result

  # ------------------------------------------------------------- readiness

  def is_live(self) -> bool:
    """True until stop(): the server process is up and answering."""
    return not self._stop_event.is_set()

  def is_ready(self) -> bool:
    """True only while every configured model has an AVAILABLE version.

    False before the first config is applied, while a model of the config
    in force has no AVAILABLE version (loading, failed, or not yet on
    disk), and for good from the first moment of a shutdown
    (begin_shutdown() or stop()). A config without models is ready.
    """
    with self._ready_mu:
      return self._compute_ready_locked()

  def begin_shutdown(self) -> None:
    """Marks the server not ready from now on, before anything stops.

    The server calls it first thing when a shutdown starts, so health checks
    turn NOT_SERVING while in-flight requests still finish.
    """
    with self._ready_mu:
      self._shutting_down = True
      self._notify_readiness_locked()

  def add_readiness_listener(self, listener: ReadinessListener) -> None:
    """Calls listener(is_ready()) now and after every change of it.

    Listeners run in the thread that caused the change (often the manager's
    event bus, while it delivers), one change at a time and in order; they
    must be quick and must not reload or stop this ServerCore.
    """
    with self._ready_mu:
      self._readiness_listeners.append(listener)
      ready = self._compute_ready_locked()
      self._last_ready = ready
      listener(ready)

  def _compute_ready_locked(self) -> bool:
    if (self._shutting_down or self._stop_event.is_set() or
        self._configured_names is None):
      return False
    if not self._configured_names:
      return True
    available = self._monitor.get_available_servable_states()
    return self._configured_names <= available

  def _notify_readiness_locked(self) -> None:
    ready = self._compute_ready_locked()
    if ready == self._last_ready:
      return
    self._last_ready = ready
    logging.info("Server %s ready.", "is" if ready else "is not")
    for listener in list(self._readiness_listeners):
      try:
        listener(ready)
      except Exception:  # pylint: disable=broad-except
        logging.exception("A readiness listener raised")

  def _update_readiness(self) -> None:
    with self._ready_mu:
      self._notify_readiness_locked()

  def _set_configured_names(self, config: ModelServerConfig) -> None:
    """Readiness now counts the models of `config`."""
    with self._ready_mu:
      self._configured_names = frozenset(
          m.name for m in config.model_config_list.config)
      self._notify_readiness_locked()

  # -------------------------------------------------------------- requests

  def servable_request_from_model_spec(
      self, model_spec: model_pb2.ModelSpec) -> ServableRequest:
    """Turns a request's ModelSpec into a ServableRequest.

    Raises:
      ServingError: INVALID_ARGUMENT without a name or for an unknown label;
        UNAVAILABLE before labels are initialised.
    """
    if not model_spec.name:
      raise status.invalid_argument("ModelSpec has no name specified.")
    choice = model_spec.WhichOneof("version_choice")
    if choice == "version":
      return ServableRequest.specific(model_spec.name, model_spec.version.value)
    if choice == "version_label":
      if not self._options.allow_version_labels:
        raise status.invalid_argument(
            "ModelSpec has 'version_label' set, but it is not currently "
            "allowed by the server.")
      return ServableRequest.specific(
          model_spec.name,
          self.get_model_version_for_label(model_spec.name,
                                           model_spec.version_label))
    return ServableRequest.latest(model_spec.name)

  def get_model_version_for_label(self, model_name: str, label: str) -> int:
    """The version a label points at (see servable_request_from_model_spec)."""
    with self._labels_mu:
      if self._labels is None:
        raise status.unavailable(f"Model labels does not init yet.{label}")
      version = self._labels.get(model_name, {}).get(label)
    if version is None:
      raise status.invalid_argument(
          f"Unrecognized servable version label: {label}")
    return version

  def get_servable_handle(
      self, model_spec: model_pb2.ModelSpec) -> servable_handle.ServableHandle:
    """A handle to the servable a ModelSpec names; release it when done.

    Raises:
      ServingError: as servable_request_from_model_spec; NOT_FOUND "Servable
        not found for request: Latest(x)" if no such version is AVAILABLE.
    """
    return self._manager.get_servable_handle(
        self.servable_request_from_model_spec(model_spec))

  # ---------------------------------------------------------------- config

  def reload_config(self, new_config: ModelServerConfig) -> None:
    """Makes `new_config` the config in force; see the module docstring.

    Blocks until the models new in it are available.

    Raises:
      ServingError: FAILED_PRECONDITION for an illegal transition or a bad
        label; INVALID_ARGUMENT for an invalid model list (the old config
        stays in force); UNKNOWN if a new model did not become available
        (the new config is in force, the other models serve).
    """
    with self._config_mu:
      self._reload_locked(new_config)

  def load_model(self,
                 name: str,
                 base_path: Optional[str] = None,
                 model_platform: Optional[str] = None,
                 deadline: Optional[float] = None) -> None:
    """Serves one model: a reload_config() of the config in force with that
    one model added or changed, every other model untouched.

    The model's entry is the one in the config in force, else the one it
    had when a reload took it out (unloaded_model_configs()), else a new
    one (needs base_path; platform "tensorflow" unless given). A base_path
    or model_platform given replaces the entry's. A model that was not in
    the config gets its version labels once it has loaded (a second reload;
    labels may only name AVAILABLE versions). Blocks until the model
    has an AVAILABLE version (or until `deadline`, time.monotonic() seconds;
    the model then stays configured and loads when it can). A model whose
    entry does not change is not reloaded; the call only waits for it.

    Raises:
      ServingError: NOT_FOUND for an unknown model without base_path;
        whatever reload_config raises (a platform change is INVALID_ARGUMENT;
        a version that failed to load, UNKNOWN); DEADLINE_EXCEEDED.
    """
    with self._config_mu:
      self._check_not_stopped()
      current = self._config
      entries = list(current.model_config_list.config)
      index = next((i for i, m in enumerate(entries) if m.name == name), None)
      entry = model_server_config_pb2.ModelConfig()
      if index is not None:
        entry.CopyFrom(entries[index])
      elif name in self._unloaded:
        entry.CopyFrom(self._unloaded[name])
      elif base_path:
        entry.name = name
        entry.model_platform = TENSORFLOW_MODEL_PLATFORM
      else:
        raise status.not_found(
            f"Model {name} is not in the model configuration; give its "
            "base_path to add it")
      if base_path:
        entry.base_path = base_path
      if model_platform:
        entry.model_platform = model_platform
      if index is not None and entry == entries[index]:
        changed = False
      else:
        changed = True
        new_config = ModelServerConfig()
        new_config.CopyFrom(current)
        models = new_config.model_config_list.config
        if index is None:
          # Labels may only name AVAILABLE versions (as in any reload): a
          # model that comes back gets them once it has loaded.
          models.add().CopyFrom(entry)
          models[len(models) - 1].ClearField("version_labels")
        else:
          models[index].CopyFrom(entry)
        logging.info("Loading model %s (base path %s)", name, entry.base_path)
        self._reload_locked(new_config, deadline)
        if index is None and entry.version_labels:
          models[len(models) - 1].CopyFrom(entry)
          self._reload_locked(new_config, deadline)
    if not changed:
      wait_until_models_available({name}, self._monitor, self._stop_event,
                                  deadline)

  def unload_model(self, name: str, deadline: Optional[float] = None) -> None:
    """Stops serving one model: a reload_config() of the config in force
    without it, every other model untouched.

    Blocks until the model's versions have unloaded (each waits for its
    requests in flight), or until `deadline` (time.monotonic() seconds).
    Unloading a model that a reload already took out is a no-op.

    Raises:
      ServingError: NOT_FOUND for a model that was never configured;
        DEADLINE_EXCEEDED.
    """
    with self._config_mu:
      self._check_not_stopped()
      current = self._config
      names = [m.name for m in current.model_config_list.config]
      if name not in names:
        if name in self._unloaded:
          return
        raise status.not_found(f"Model {name} is not in the model "
                               "configuration")
      new_config = ModelServerConfig()
      new_config.CopyFrom(current)
      del new_config.model_config_list.config[names.index(name)]
      logging.info("Unloading model %s", name)
      self._reload_locked(new_config, deadline)
    live = self._monitor.get_live_servable_states().get(name, {})
    requests = [ServableRequest.specific(name, v) for v in live]
    if not requests:
      return
    timeout = None if deadline is None else max(0.0,
                                                deadline - time.monotonic())
    reached, _ = self._monitor.wait_until_servables_reach_state(
        requests, ManagerState.END, timeout)
    if not reached and not self._stop_event.is_set():
      raise status.deadline_exceeded(
          f"Model {name} is out of the configuration, but its versions did "
          "not finish unloading before the request's deadline")

  def _check_not_stopped(self) -> None:
    if self._stop_event.is_set():
      raise status.failed_precondition("ServerCore is stopped")

  def _reload_locked(self, new_config: ModelServerConfig,
                     deadline: Optional[float] = None) -> None:
    """reload_config's work; the caller holds self._config_mu."""
    self._check_not_stopped()
    old_case = self._config.WhichOneof("config")
    new_case = new_config.WhichOneof("config")
    is_first = old_case is None
    if not (is_first or (old_case == "model_config_list" and
                         new_case == "model_config_list")):
      raise status.failed_precondition(
          "Cannot transition to requested config. It is only legal to "
          "transition from one ModelConfigList to another.")
    if new_case is None:
      logging.info("Taking no action for empty config.")
      if is_first:
        self._set_configured_names(new_config)
      return
    if new_case != "model_config_list":
      raise status.invalid_argument(
          "Missing custom_model_config_loader in ServerCore Options")
    _validate_model_config_list(new_config.model_config_list)
    if not is_first:
      _validate_no_models_change_platforms(self._config.model_config_list,
                                           new_config.model_config_list)
    routes = self._create_routes(new_config)
    logging.info("Adding/updating models.")
    source_config = self._create_storage_path_source_config(new_config)
    if is_first:
      # As upstream, the first config's labels are checked once its models
      # have loaded: they may name any version that became available.
      self._update_request_loggers(new_config)
      self._add_first_models(new_config, source_config, routes, deadline)
      self._install_labels(self._compute_label_map(new_config))
    else:
      # Later configs are checked before anything changes, so a rejected
      # config leaves the old one (and its labels) in force.
      new_labels = self._compute_label_map(new_config)
      self._update_request_loggers(new_config)
      self._update_models(new_config, source_config, routes, new_labels,
                          deadline)
    logging.info("Finished adding/updating models")
    logging.info("Finished reloading config")

  def _update_request_loggers(self, config: ModelServerConfig) -> None:
    """Points each model's requests at the loggers of its logging_config."""
    configs = {
        model.name: [model.logging_config]
        for model in config.model_config_list.config
        if model.HasField("logging_config")
    }
    request_logger = self._options.server_request_logger
    if request_logger is None:
      if configs:
        raise status.invalid_argument("No request-logger-creator provided.")
      return
    request_logger.update(configs)

  def log_request(self, request, response) -> None:
    """Offers a served request to its model's request loggers, if any.

    Called by the gRPC and REST front ends after a successful Predict,
    Classify, Regress or MultiInference, with the response whose model_spec
    names the model and version that served it. `request` may be a function
    that builds the request proto, called only when the model has loggers.
    Never raises: a log that cannot be written is reported, and the request
    still succeeds.
    """
    request_logger = self._options.server_request_logger
    if request_logger is None:
      return
    if isinstance(response, inference_pb2.MultiInferenceResponse):
      if not response.results:
        return
      model_spec = response.results[0].model_spec
    else:
      model_spec = response.model_spec
    if not request_logger.has_loggers(model_spec.name):
      return
    if callable(request):
      request = request()
    metadata = request_logger_lib.LogMetadata()
    metadata.model_spec.CopyFrom(model_spec)
    try:
      if request_logger.log(request, response, metadata):
        metrics.record_request_log(model_spec.name, status.Code.OK)
    except status.ServingError as e:
      metrics.record_request_log(model_spec.name, e.code)
      logging.log_every_n_seconds(logging.WARNING,
                                  "Request logging failed: %s", 60, e.message)

  def _create_routes(self, config: ModelServerConfig) -> dict[str, int]:
    routes = {}
    for model in config.model_config_list.config:
      platform = _get_platform(model)
      port = self._platform_ports.get(platform)
      if port is None:
        raise status.invalid_argument(
            f"Model {model.name} requests unsupported platform {platform}")
      routes[model.name] = port
    return routes

  def _create_storage_path_source_config(
      self, config: ModelServerConfig) -> StoragePathSourceConfig:
    source_config = StoragePathSourceConfig()
    source_config.file_system_poll_wait_seconds = int(
        self._options.file_system_poll_wait_seconds)
    source_config.servable_versions_always_present = (
        self._options.servable_versions_always_present)
    for model in config.model_config_list.config:
      logging.info(" (Re-)adding model: %s", model.name)
      servable = source_config.servables.add()
      servable.servable_name = model.name
      servable.base_path = model.base_path
      servable.servable_version_policy.CopyFrom(model.model_version_policy)
    return source_config

  def _compute_label_map(
      self, config: ModelServerConfig) -> dict[str, dict[str, int]]:
    """Validates the labels of `config` against what is AVAILABLE now."""
    opts = self._options
    with self._labels_mu:
      current = self._labels or {}
    new_map: dict[str, dict[str, int]] = {}
    for model in config.model_config_list.config:
      states = self._monitor.get_version_states(model.name)
      for label in sorted(model.version_labels):
        version = model.version_labels[label]
        allow_unavailable = (
            opts.force_allow_any_version_labels_for_unavailable_models)
        if not allow_unavailable and (
            opts.allow_version_labels_for_unavailable_models):
          existing = current.get(model.name, {}).get(label)
          allow_unavailable = existing is None or existing == version
        state = states.get(version)
        if not allow_unavailable and (
            state is None or
            state.state.manager_state != ManagerState.AVAILABLE):
          raise status.failed_precondition(
              f"Request to assign label to version {version} of model "
              f"{model.name}, which is not currently available for inference")
        new_map.setdefault(model.name, {})[label] = version
    if not opts.allow_version_labels and new_map:
      raise status.failed_precondition(
          "Model version labels are not currently allowed by the server.")
    return new_map

  def _install_labels(self, labels: dict[str, dict[str, int]]) -> None:
    with self._labels_mu:
      self._labels = labels

  def _add_first_models(self, config: ModelServerConfig,
                        source_config: StoragePathSourceConfig,
                        routes: dict[str, int],
                        deadline: Optional[float] = None) -> None:
    """Builds source -> router -> adapters -> manager; waits for the models."""
    opts = self._options
    cache = self._model_cache()
    adapters: list[source_adapter.SourceAdapter] = [
        caching_source_adapter.CachingSourceAdapter(
            opts.platform_source_adapters[p](), cache)
        for p in sorted(self._platform_ports)
    ]
    adapters.append(
        source_adapter.ErrorInjectingSourceAdapter(
            status.internal("No platform found for model")))
    router = dynamic_source_router.DynamicSourceRouter(len(adapters), routes)
    source = fs_source.FileSystemStoragePathSource.create(
        source_config,
        fs_source.FileSystemStoragePathSource.Options(
            file_system=opts.file_system,
            poll_wait_seconds=opts.file_system_poll_wait_seconds,
            version_readiness=opts.version_readiness))
    self._adapters, self._router, self._source = adapters, router, source
    self._install_config(config)
    # Wire from the manager backwards, so nothing has to be buffered; the
    # source starts polling when connected.
    self._manager.set_num_load_threads(opts.num_initial_load_threads)
    try:
      for adapter, port in zip(adapters, router.output_ports):
        target.connect_source_to_target(adapter, self._manager)
        target.connect_source_to_target(port, adapter)
      target.connect_source_to_target(source, router)
      wait_until_models_available(
          {m.name for m in config.model_config_list.config}, self._monitor,
          self._stop_event, deadline)
    finally:
      self._manager.set_num_load_threads(opts.num_load_threads)

  def _update_models(self, config: ModelServerConfig,
                     source_config: StoragePathSourceConfig,
                     routes: dict[str, int],
                     labels: dict[str, dict[str, int]],
                     deadline: Optional[float] = None) -> None:
    """Moves the running pipeline to a new config; waits for new models."""
    # A fresh monitor, so versions of a model removed earlier and now added
    # back are not mistaken for the new ones.
    fresh_monitor = servable_state_monitor.ServableStateMonitor(self._bus)
    try:
      old_models = {s.servable_name for s in self._source.config.servables}
      new_models = {s.servable_name for s in source_config.servables
                   } - old_models
      old_routes = self._router.routes
      # Keep the old routes while the source tears down removed models.
      self._router.update_routes({**old_routes, **routes})
      # Readiness counts the new models before their first event.
      self._set_configured_names(config)
      try:
        self._source.update_config(source_config)
      except status.ServingError:
        self._router.update_routes(old_routes)
        self._set_configured_names(self._config)
        raise
      self._router.update_routes(routes)
      self._install_config(config)
      self._install_labels(labels)
      wait_until_models_available(new_models, fresh_monitor, self._stop_event,
                                  deadline, serving=self._monitor)
    finally:
      fresh_monitor.close()

  def _install_config(self, config: ModelServerConfig) -> None:
    """Makes `config` the one in force (caller holds self._config_mu)."""
    new_names = {m.name for m in config.model_config_list.config}
    for model in self._config.model_config_list.config:
      if model.name not in new_names:
        entry = model_server_config_pb2.ModelConfig()
        entry.CopyFrom(model)
        self._unloaded[model.name] = entry
    for name in new_names:
      self._unloaded.pop(name, None)
    self._config = config
    self._model_names = tuple(m.name for m in config.model_config_list.config)
    self._set_configured_names(config)

  def _model_cache(self) -> model_cache_lib.ModelCache:
    if self._options.model_cache is not None:
      return self._options.model_cache
    if self._own_model_cache is None:
      self._own_model_cache = model_cache_lib.ModelCache(
          self._options.file_system or
          file_system_registry.SchemeFileSystem())
    return self._own_model_cache

  # -------------------------------------------------------------- shutdown

  def stop(self) -> None:
    """Stops polling and waiting, and unloads every model (idempotent).

    Safe to call from another thread while create() or reload_config() is
    waiting for models; that call then raises CANCELLED.
    """
    self._stop_event.set()
    self._update_readiness()
    source = self._source
    if source is not None:
      source.stop()
    self._manager.stop()
    if self._own_model_cache is not None:
      self._own_model_cache.close()
    self._monitor.close()
    self._readiness_subscription.cancel()
    self._state_metrics.close()
    if self._options.server_request_logger is not None:
      self._options.server_request_logger.close()
