"""BasicManager: loads, serves and unloads the versions it is told to.

The mechanism under AspiredVersionsManager (as upstream's
core/basic_manager.h): it holds one LoaderHarness per managed version and
does what it is told (manage, load, unload, stop managing) without deciding
anything itself. It also:
  * publishes each version's ServableState (START, LOADING, AVAILABLE,
    UNLOADING, END with the error if any) on the event bus;
  * runs loads on a pool of num_load_threads threads and unloads on
    num_unload_threads threads (0: in the calling thread);
  * hands out ServableHandles, and unloads a version only after every handle
    to it has been released (the unload waits for that, on its thread).

Locks, always taken in this order: self._mu (the managed versions), then the
event bus, then a harness's or the serving map's own lock. Event-bus
subscribers never call back into the manager.
"""

# pylint: disable=redefined-builtin  (`id` as upstream names it)

import concurrent.futures
import dataclasses
import threading
from typing import Any, Callable

from absl import logging

from tensorflow_serving.core import loader as loader_lib
from tensorflow_serving.core import loader_harness
from tensorflow_serving.core import manager as manager_lib
from tensorflow_serving.core import servable_data
from tensorflow_serving.core import servable_handle
from tensorflow_serving.core import servable_id as servable_id_lib
from tensorflow_serving.core import servable_state as state_lib
from tensorflow_serving.util import clock as clock_lib
from tensorflow_serving.util import event_bus as event_bus_lib
from tensorflow_serving.util import status

ServableId = servable_id_lib.ServableId
State = loader_harness.State
DoneCallback = Callable[[status.ServingError | None], None]


@dataclasses.dataclass(frozen=True)
class ServableStateSnapshot:
  """A managed version's harness state and its manager-specific state.

  `error` is the harness's error when the state is ERROR.
  """

  id: ServableId
  state: State
  additional_state: Any
  error: status.ServingError | None = None


class _InlineExecutor:
  """Runs each task in the submitting thread (num_*_threads == 0)."""

  def submit(self, fn: Callable[..., None], *args) -> None:
    fn(*args)

  def shutdown(self, wait: bool = True) -> None:
    del wait


def _create_executor(num_threads: int, name: str):
  if num_threads <= 0:
    return _InlineExecutor()
  return concurrent.futures.ThreadPoolExecutor(
      max_workers=num_threads, thread_name_prefix=name)


class _ServingMap:
  """The READY versions that handles are given out for, with handle counts."""

  def __init__(self) -> None:
    # Reentrant: a handle garbage-collected inside get_handle() releases
    # itself in the same thread. The per-request paths (get_handle and
    # release) take the lock itself, which is cheaper than the Condition.
    self._mu = threading.RLock()
    self._cond = threading.Condition(self._mu)
    self._by_id: dict[ServableId, loader_harness.LoaderHarness] = {
    }  # guarded by self._mu
    self._latest: dict[str, loader_harness.LoaderHarness] = {
    }  # guarded by self._mu
    self._refcounts: dict[ServableId, int] = {}  # guarded by self._mu
    # Versions wait_until_released() waits for; releasing the last handle
    # of any other version wakes no one.
    self._awaited: set[ServableId] = set()  # guarded by self._mu

  def update(self, harnesses: list[loader_harness.LoaderHarness]) -> None:
    """Serves exactly the READY ones among `harnesses` from now on.

    Rebuilt from the harness states rather than edited version by version,
    so a version that became READY on a load thread is served even if its
    predecessor's unload updates the map before the load thread does.
    """
    with self._cond:
      self._by_id = {
          h.id: h for h in harnesses if h.state == loader_harness.State.READY
      }
      self._latest = {}
      for id_, harness in self._by_id.items():
        current = self._latest.get(id_.name)
        if current is None or current.id.version < id_.version:
          self._latest[id_.name] = harness

  def wait_until_released(self, id: ServableId) -> None:
    """Blocks until every handle to `id` has been released."""
    with self._cond:
      self._awaited.add(id)
      try:
        self._cond.wait_for(lambda: self._refcounts.get(id, 0) == 0)
      finally:
        self._awaited.discard(id)
      self._refcounts.pop(id, None)

  def get_handle(
      self,
      request: manager_lib.ServableRequest) -> servable_handle.ServableHandle:
    with self._mu:
      if request.version is None:
        harness = self._latest.get(request.name)
      else:
        harness = self._by_id.get(ServableId(request.name, request.version))
      if harness is None:
        raise status.not_found(f"Servable not found for request: {request}")
      return self._new_handle_locked(harness)

  def get_all_handles(
      self) -> dict[ServableId, servable_handle.ServableHandle]:
    with self._cond:
      return {
          id_: self._new_handle_locked(h) for id_, h in self._by_id.items()
      }

  def list_ids(self) -> list[ServableId]:
    with self._cond:
      return sorted(self._by_id)

  def _new_handle_locked(
      self,
      harness: loader_harness.LoaderHarness) -> servable_handle.ServableHandle:
    id_ = harness.id
    self._refcounts[id_] = self._refcounts.get(id_, 0) + 1
    return servable_handle.ServableHandle(
        id_, harness.loader.servable(), lambda: self._release(id_))

  def _release(self, id: ServableId) -> None:
    with self._mu:
      count = self._refcounts.get(id, 0) - 1
      if count <= 0:
        self._refcounts.pop(id, None)
        if id in self._awaited:
          self._cond.notify_all()
      else:
        self._refcounts[id] = count


@dataclasses.dataclass
class _Managed:
  harness: loader_harness.LoaderHarness
  additional_state: Any


class BasicManager(manager_lib.Manager):
  """Manages versions on explicit request. See the module docstring."""

  @dataclasses.dataclass(frozen=True)
  class Options:
    """BasicManager options.

    Attributes:
      num_load_threads: load thread pool size; 0 loads in the calling thread.
      num_unload_threads: unload thread pool size; 0 unloads in the calling
        thread.
      max_num_load_retries: retries after a failed load (default 5, as
        --max_num_load_retries).
      load_retry_interval_micros: wait between load attempts (default 60 s, as
        --load_retry_interval_micros; <= 0: no wait).
      servable_event_bus: where ServableStates are published (None: nowhere).
      clock: waits between load retries.
    """

    num_load_threads: int = 0
    num_unload_threads: int = 0
    max_num_load_retries: int = loader_harness.DEFAULT_MAX_NUM_LOAD_RETRIES
    load_retry_interval_micros: int = (
        loader_harness.DEFAULT_LOAD_RETRY_INTERVAL_MICROS)
    servable_event_bus: event_bus_lib.EventBus | None = None
    clock: clock_lib.Clock = dataclasses.field(
        default_factory=clock_lib.RealClock)

  def __init__(self, options: "BasicManager.Options | None" = None) -> None:
    self._options = options or BasicManager.Options()
    self._harness_options = loader_harness.LoaderHarness.Options(
        max_num_load_retries=self._options.max_num_load_retries,
        load_retry_interval_micros=self._options.load_retry_interval_micros,
        clock=self._options.clock)
    self._mu = threading.RLock()
    # name -> version -> _Managed.
    self._managed: dict[str, dict[int, _Managed]] = {}  # guarded by self._mu
    self._stopped = False  # guarded by self._mu
    self._serving_map = _ServingMap()
    self._executor_mu = threading.Lock()
    self._load_executor = _create_executor(
        self._options.num_load_threads,
        "BasicManager_Load_ThreadPool")  # guarded by self._executor_mu
    self._unload_executor = _create_executor(self._options.num_unload_threads,
                                             "BasicManager_Unload_ThreadPool")

  # ------------------------------------------------------------ Manager API

  def list_available_servable_ids(self) -> list[ServableId]:
    return self._serving_map.list_ids()

  def get_servable_handle(
      self,
      request: manager_lib.ServableRequest) -> servable_handle.ServableHandle:
    return self._serving_map.get_handle(request)

  def get_available_servable_handles(
      self) -> dict[ServableId, servable_handle.ServableHandle]:
    return self._serving_map.get_all_handles()

  # -------------------------------------------------------- managing versions

  def manage_servable(self,
                      servable: servable_data.ServableData,
                      additional_state: Any = None) -> None:
    """Starts managing a version (state START, or END if it carries an error).

    Raises:
      ServingError: FAILED_PRECONDITION if the version is already managed.
    """
    with self._mu:
      versions = self._managed.setdefault(servable.id.name, {})
      if servable.id.version in versions:
        raise status.failed_precondition(
            f"This servable is already being managed: {servable.id}")
      loader: loader_lib.Loader | None = (
          servable.data if servable.is_ok() else None)
      harness = loader_harness.LoaderHarness(servable.id, loader,
                                             self._harness_options)
      versions[servable.id.version] = _Managed(harness, additional_state)
      if servable.is_ok():
        self._publish(harness.id, state_lib.ManagerState.START)
      else:
        harness.set_error(servable.error)
        logging.error("Servable %s cannot be loaded: %s", servable.id,
                      state_lib.status_string(servable.error))
        self._publish(harness.id, state_lib.ManagerState.END, servable.error)

  def stop_managing_servable(self, id: ServableId) -> None:
    """Forgets a version that is NEW, DISABLED or in ERROR.

    Raises:
      ServingError: FAILED_PRECONDITION if it is not managed, or is in
        another state.
    """
    with self._mu:
      managed = self._managed.get(id.name, {}).get(id.version)
      if managed is None:
        raise status.failed_precondition(
            f"This servable is not being managed: {id}")
      state = managed.harness.state
      if state not in (State.NEW, State.DISABLED, State.ERROR):
        raise status.failed_precondition(
            "This servable is not in a new or end state and we cannot stop "
            f"managing it: {id} {state.value}")
      del self._managed[id.name][id.version]
      if not self._managed[id.name]:
        del self._managed[id.name]
      if state == State.NEW:
        # Never loaded: close its START so the monitor does not show it live.
        self._publish(id, state_lib.ManagerState.END)

  def get_managed_servable_names(self) -> list[str]:
    with self._mu:
      return sorted(self._managed)

  def get_managed_servable_state_snapshots(
      self, servable_name: str) -> list[ServableStateSnapshot]:
    """Every managed version of a servable, lowest version first."""
    with self._mu:
      versions = self._managed.get(servable_name, {})
      return [
          ServableStateSnapshot(m.harness.id, m.harness.state,
                                m.additional_state, m.harness.error)
          for _, m in sorted(versions.items())
      ]

  def get_additional_servable_state(self, id: ServableId) -> Any:
    with self._mu:
      managed = self._managed.get(id.name, {}).get(id.version)
      return managed.additional_state if managed else None

  def cancel_load_servable_retry(self, id: ServableId) -> None:
    """Makes a failing load of `id` stop retrying (no-op if not managed)."""
    with self._mu:
      managed = self._managed.get(id.name, {}).get(id.version)
    if managed is not None:
      managed.harness.cancel_load_retry()

  # ------------------------------------------------------- loading/unloading

  def load_servable(self,
                    id: ServableId,
                    done_callback: DoneCallback | None = None) -> None:
    """Loads a NEW version on the load pool (or in this thread).

    `done_callback(error or None)` runs when the load finishes or is refused.
    """
    done = done_callback or (lambda unused_error: None)
    with self._mu:
      if self._stopped:
        done(status.failed_precondition("The manager is stopped"))
        return
      try:
        harness = self._get_healthy_harness_locked(id)
        harness.load_requested()
      except status.ServingError as e:
        done(e)
        return
    try:
      with self._executor_mu:
        self._load_executor.submit(self._execute_load, harness, done)
    except RuntimeError:  # The pool was shut down by a concurrent stop().
      error = status.cancelled(f"Load of {id} cancelled: the manager stopped")
      harness.set_error(error)
      self._publish(id, state_lib.ManagerState.END, error)
      done(error)

  def unload_servable(self,
                      id: ServableId,
                      done_callback: DoneCallback | None = None) -> None:
    """Unloads a READY version on the unload pool (or in this thread).

    The unload waits until every handle to the version has been released.
    """
    done = done_callback or (lambda unused_error: None)
    with self._mu:
      try:
        harness = self._get_healthy_harness_locked(id)
        harness.unload_requested()
      except status.ServingError as e:
        done(e)
        return
    try:
      self._unload_executor.submit(self._execute_unload, harness, done)
    except RuntimeError:  # The pool was shut down by a concurrent stop(),
      # which unloads every READY version itself.
      done(status.cancelled(f"Unload of {id} deferred: the manager stopped"))

  def set_num_load_threads(self, num_load_threads: int) -> None:
    """Resizes the load pool; waits for loads already running to finish."""
    with self._executor_mu:
      old = self._load_executor
      self._load_executor = _create_executor(num_load_threads,
                                             "BasicManager_Load_ThreadPool")
    old.shutdown(wait=True)

  def stop(self) -> None:
    """Cancels load retries, finishes pending work, unloads everything."""
    with self._mu:
      if self._stopped:
        return
      self._stopped = True
      harnesses = [
          m.harness for versions in self._managed.values()
          for m in versions.values()
      ]
    for harness in harnesses:
      harness.cancel_load_retry()
    with self._executor_mu:
      load_executor = self._load_executor
    load_executor.shutdown(wait=True)
    self._unload_executor.shutdown(wait=True)
    logging.info("Unload all remaining servables in the manager.")
    for harness in harnesses:
      if harness.state == State.READY:
        harness.unload_requested()
      if harness.state == State.UNLOAD_REQUESTED:
        self._execute_unload(harness, lambda unused_error: None)

  # ---------------------------------------------------------------- helpers

  def _get_healthy_harness_locked(
      self, id: ServableId) -> loader_harness.LoaderHarness:
    managed = self._managed.get(id.name, {}).get(id.version)
    if managed is None:
      raise status.not_found(
          f"This servable is not being managed by the manager: {id}")
    error = managed.harness.error
    if error is not None:
      raise error
    return managed.harness

  def _update_serving_map(self) -> None:
    with self._mu:
      self._serving_map.update([
          m.harness for versions in self._managed.values()
          for m in versions.values()
      ])

  def _execute_load(self, harness: loader_harness.LoaderHarness,
                    done: DoneCallback) -> None:
    try:
      harness.load_approved()
      self._publish(harness.id, state_lib.ManagerState.LOADING)
      harness.load()
    except status.ServingError as e:
      self._publish(harness.id, state_lib.ManagerState.END, e)
      done(e)
      return
    except Exception as e:  # pylint: disable=broad-except
      logging.exception("Unexpected failure loading %s", harness.id)
      error = status.from_exception(e)
      harness.set_error(error)
      self._publish(harness.id, state_lib.ManagerState.END, error)
      done(error)
      return
    # Serve first, then announce: whoever waits for AVAILABLE can get a handle.
    self._update_serving_map()
    logging.info("Successfully loaded servable version %s", harness.id)
    self._publish(harness.id, state_lib.ManagerState.AVAILABLE)
    done(None)

  def _execute_unload(self, harness: loader_harness.LoaderHarness,
                      done: DoneCallback) -> None:
    try:
      self._publish(harness.id, state_lib.ManagerState.UNLOADING)
      harness.start_quiescing()
      self._update_serving_map()  # No new handles to a QUIESCING version.
      self._serving_map.wait_until_released(harness.id)
      harness.done_quiescing()
      harness.unload()
    except status.ServingError as e:
      logging.error("Servable %s cannot be unloaded: %s", harness.id, e)
      done(e)
      return
    logging.info("Done unloading servable version %s", harness.id)
    self._publish(harness.id, state_lib.ManagerState.END)
    done(None)

  def _publish(self,
               id: ServableId,
               manager_state: state_lib.ManagerState,
               health: status.ServingError | None = None) -> None:
    bus = self._options.servable_event_bus
    if bus is not None:
      bus.publish(state_lib.ServableState(id, manager_state, health))
