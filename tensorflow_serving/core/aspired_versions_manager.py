"""AspiredVersionsManager: makes the loaded versions follow the sources.

The manager the server uses (as upstream's core/aspired_versions_manager.h).
It is the Target at the end of the source chain: sources tell it, per
servable name, which versions should be loaded ("aspired"), and a periodic
manager thread makes it so, one policy decision at a time:
  1. flush: forget versions that are no longer aspired and are finished
     (never loaded, unloaded, or failed);
  2. take the aspired-versions lists that arrived since the last round (only
     the newest list per name counts) and mark versions aspired or not; a
     version coming back while its previous incarnation is still being
     unloaded waits for the next round;
  3. ask the AspiredVersionPolicy for each servable's next action and start
     it (unloads first), on the load/unload pools of BasicManager.
A version that fails to load ends in END with its error and stays managed
while it is aspired (so the error stays visible and the load is not retried
beyond max_num_load_retries); with AvailabilityPreservingPolicy the previous
version keeps serving meanwhile. Not in upstream: if the failure was
transient (TRANSIENT_LOAD_ERROR_CODES: the storage was unreachable or slow,
or the files changed while they were copied), the next aspired-versions list
that still names the version (the source's next poll) replaces the failed
harness with the new Loader, so the version loads once storage recovers,
without a server restart. Any other failure (a corrupt model) stays in END
with its error until the version stops being aspired.

Threads: the aspired-versions callback is called by sources from any thread
and only queues; everything else happens on the manager thread (or in a test,
through core/test_util/manager_test_util.py when
manage_state_interval_micros <= 0).
"""

import dataclasses
import threading

from absl import logging

from tensorflow_serving.core import aspired_version_policy as policy_lib
from tensorflow_serving.core import availability_preserving_policy
from tensorflow_serving.core import basic_manager as basic_manager_lib
from tensorflow_serving.core import loader_harness
from tensorflow_serving.core import manager as manager_lib
from tensorflow_serving.core import servable_data
from tensorflow_serving.core import servable_handle
from tensorflow_serving.core import servable_id as servable_id_lib
from tensorflow_serving.core import source as source_lib
from tensorflow_serving.core import target as target_lib
from tensorflow_serving.util import clock as clock_lib
from tensorflow_serving.util import event_bus as event_bus_lib
from tensorflow_serving.util import status

ServableId = servable_id_lib.ServableId
State = loader_harness.State

# Load failures worth another try when the source aspires the version again:
# the canonical "retry later" codes (a store unreachable or slow, a copy torn
# by a concurrent change). A corrupt or incompatible model fails with others
# (INVALID_ARGUMENT, NOT_FOUND, DATA_LOSS, UNKNOWN ...) and is not retried.
TRANSIENT_LOAD_ERROR_CODES = frozenset([
    status.Code.UNAVAILABLE, status.Code.DEADLINE_EXCEEDED,
    status.Code.ABORTED
])


@dataclasses.dataclass
class _Aspired:
  """The manager's own per-version state: does a source still want it?"""

  is_aspired: bool


class AspiredVersionsManager(manager_lib.Manager, target_lib.Target):
  """Loads what sources aspire, unloads what they drop. See the module doc."""

  @dataclasses.dataclass(frozen=True)
  class Options:
    """AspiredVersionsManager options.

    Attributes:
      manage_state_interval_micros: period of the manager thread (default
        100 ms, as upstream). <= 0: no thread; tests drive the rounds.
      aspired_version_policy: decides loads and unloads (default:
        AvailabilityPreservingPolicy).
      num_load_threads: load pool size; 0 loads on the manager thread.
      num_unload_threads: unload pool size; 0 unloads on the manager thread.
      max_num_load_retries: retries after a failed load (default 5).
      load_retry_interval_micros: wait between load attempts (default 60 s).
      servable_event_bus: where ServableStates are published.
      clock: waits between load retries.
    """

    manage_state_interval_micros: int = 100_000
    aspired_version_policy: policy_lib.AspiredVersionPolicy = (
        dataclasses.field(default_factory=availability_preserving_policy
                          .AvailabilityPreservingPolicy))
    num_load_threads: int = 0
    num_unload_threads: int = 0
    max_num_load_retries: int = loader_harness.DEFAULT_MAX_NUM_LOAD_RETRIES
    load_retry_interval_micros: int = (
        loader_harness.DEFAULT_LOAD_RETRY_INTERVAL_MICROS)
    servable_event_bus: event_bus_lib.EventBus | None = None
    clock: clock_lib.Clock = dataclasses.field(
        default_factory=clock_lib.RealClock)

  def __init__(self,
               options: "AspiredVersionsManager.Options | None" = None) -> None:
    self._options = options or AspiredVersionsManager.Options()
    self._policy = self._options.aspired_version_policy
    self._basic_manager = basic_manager_lib.BasicManager(
        basic_manager_lib.BasicManager.Options(
            num_load_threads=self._options.num_load_threads,
            num_unload_threads=self._options.num_unload_threads,
            max_num_load_retries=self._options.max_num_load_retries,
            load_retry_interval_micros=self._options.load_retry_interval_micros,
            servable_event_bus=self._options.servable_event_bus,
            clock=self._options.clock))
    self._pending_mu = threading.Lock()
    # name -> newest aspired-versions list not yet processed.
    self._pending: dict[str, list[servable_data.ServableData]] = {
    }  # guarded by self._pending_mu
    # Serializes the read-modify-write rounds over the basic manager and the
    # aspired flags (the manager thread, or a test driving the rounds).
    self._rmw_mu = threading.RLock()
    self._stop_event = threading.Event()
    self._thread: threading.Thread | None = None
    if self._options.manage_state_interval_micros > 0:
      self._thread = threading.Thread(
          target=self._manage_state_loop,
          name="AspiredVersionsManager_ManageState_Thread",
          daemon=True)
      self._thread.start()

  # ------------------------------------------------------------ Manager API

  def list_available_servable_ids(self) -> list[ServableId]:
    return self._basic_manager.list_available_servable_ids()

  def get_servable_handle(
      self,
      request: manager_lib.ServableRequest) -> servable_handle.ServableHandle:
    return self._basic_manager.get_servable_handle(request)

  def get_available_servable_handles(
      self) -> dict[ServableId, servable_handle.ServableHandle]:
    return self._basic_manager.get_available_servable_handles()

  # ------------------------------------------------------------- Target API

  def get_aspired_versions_callback(self) -> source_lib.AspiredVersionsCallback:
    return self._enqueue_aspired_versions_request

  def _enqueue_aspired_versions_request(
      self, servable_name: str,
      versions: list[servable_data.ServableData]) -> None:
    for version in versions:
      if version.id.name != servable_name:
        logging.error(
            "Servable name: %s doesn't match name in servable version: %s",
            servable_name, version.id.name)
        return
    with self._pending_mu:
      self._pending[servable_name] = list(versions)

  # ---------------------------------------------------------------- control

  def set_num_load_threads(self, num_load_threads: int) -> None:
    """Resizes the load pool (ServerCore loads faster at startup)."""
    self._basic_manager.set_num_load_threads(num_load_threads)

  def stop(self) -> None:
    """Stops the manager thread and unloads every version."""
    self._stop_event.set()
    # Cut short any failing load that the manager thread is retrying.
    for name in self._basic_manager.get_managed_servable_names():
      for snapshot in self._basic_manager.get_managed_servable_state_snapshots(
          name):
        self._basic_manager.cancel_load_servable_retry(snapshot.id)
    if self._thread is not None:
      self._thread.join()
      self._thread = None
    self._basic_manager.stop()

  # ------------------------------------------------------ the manager round

  def _manage_state_loop(self) -> None:
    interval = self._options.manage_state_interval_micros / 1e6
    while not self._stop_event.is_set():
      try:
        self._manage_state()
      except Exception:  # pylint: disable=broad-except
        logging.exception("AspiredVersionsManager round failed")
      self._stop_event.wait(interval)

  def _manage_state(self) -> None:
    """One round: flush, take new aspired versions, act on the policy."""
    self._flush_servables()
    self._handle_pending_aspired_versions_requests()
    self._invoke_policy_and_execute_action()

  def _flush_servables(self) -> None:
    with self._rmw_mu:
      for name in self._basic_manager.get_managed_servable_names():
        for snapshot in (
            self._basic_manager.get_managed_servable_state_snapshots(name)):
          if (snapshot.state in (State.NEW, State.DISABLED, State.ERROR) and
              not snapshot.additional_state.is_aspired):
            self._basic_manager.stop_managing_servable(snapshot.id)

  def _handle_pending_aspired_versions_requests(self) -> None:
    with self._pending_mu:
      pending, self._pending = self._pending, {}
    with self._rmw_mu:
      for name, versions in pending.items():
        if self._contains_any_reaspired_versions(name, versions):
          # An old incarnation of a re-aspired version is still on its way
          # out; try again next round unless a newer list has arrived.
          with self._pending_mu:
            self._pending.setdefault(name, versions)
          continue
        self._process_aspired_versions_request(name, versions)

  def _contains_any_reaspired_versions(
      self, name: str, versions: list[servable_data.ServableData]) -> bool:
    unaspired = {
        s.id.version
        for s in self._basic_manager.get_managed_servable_state_snapshots(name)
        if not s.additional_state.is_aspired
    }
    return any(v.id.version in unaspired for v in versions)

  def _process_aspired_versions_request(
      self, name: str, versions: list[servable_data.ServableData]) -> None:
    next_aspired = {v.id.version for v in versions}
    currently_aspired = set()
    for snapshot in self._basic_manager.get_managed_servable_state_snapshots(
        name):
      if snapshot.additional_state.is_aspired:
        if (snapshot.id.version in next_aspired and
            snapshot.state == State.ERROR and snapshot.error is not None and
            snapshot.error.code in TRANSIENT_LOAD_ERROR_CODES):
          logging.info(
              "Retrying the load of %s, which failed for a transient "
              "reason: %s", snapshot.id, snapshot.error)
          self._basic_manager.stop_managing_servable(snapshot.id)
          continue  # Managed anew below, with the new Loader.
        currently_aspired.add(snapshot.id.version)
      if snapshot.id.version not in next_aspired:
        snapshot.additional_state.is_aspired = False
        self._basic_manager.cancel_load_servable_retry(snapshot.id)
    for version in versions:
      if version.id.version in currently_aspired:
        continue  # Already managed; the new Loader is simply dropped.
      try:
        self._basic_manager.manage_servable(version, _Aspired(True))
      except status.ServingError as e:
        logging.error("Cannot manage %s: %s", version.id, e)

  def _invoke_policy_and_execute_action(self) -> None:
    actions = []
    with self._rmw_mu:
      for name in self._basic_manager.get_managed_servable_names():
        snapshots = [
            policy_lib.AspiredServableStateSnapshot(
                s.id, s.state, s.additional_state.is_aspired) for s in
            self._basic_manager.get_managed_servable_state_snapshots(name)
        ]
        action = self._policy.get_next_action(snapshots)
        if action is not None:
          actions.append(action)
    # Unloads first: they free what the loads may need.
    actions.sort(key=lambda a: a.action != policy_lib.Action.UNLOAD)
    for action in actions:
      self._perform_action(action)

  def _perform_action(self, action: policy_lib.ServableAction) -> None:

    def done(error: status.ServingError | None) -> None:
      if error is not None:
        logging.error("Servable %s cannot be %sed: %s", action.id,
                      action.action.value, error)

    if action.action == policy_lib.Action.LOAD:
      self._basic_manager.load_servable(action.id, done)
    else:
      self._basic_manager.unload_servable(action.id, done)
