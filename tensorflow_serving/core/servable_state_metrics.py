"""ServableStateMetrics: each version's lifecycle as metrics (not in upstream).

Upstream exports no per-version figure: an operator learns that a version
failed, or how long it took to load, only from GetModelStatus or the logs.
This subscriber turns the servable event bus (the same events the
ServableStateMonitor keeps for GetModelStatus) into two gauges of
util/metrics, per model and version:

  * model_version_state: the ModelVersionStatus.State number of the latest
    state (10 START, 20 LOADING, 30 AVAILABLE, 40 UNLOADING, 50 END);
  * model_version_load_latency: microseconds from the version's first
    LOADING to AVAILABLE (retries included), by the event bus's clock.

A version that ends cleanly (unloaded, no error) drops both series, so that
a model that rolls a new version each day does not pile up series; one that
ends with an error stays at 50 until it is managed again (a later poll may
retry it) or the process ends, so an alert on "== 50" sees every failure.

Threading: the bus delivers one event at a time (its lock is held), so the
callback's state needs no lock of its own; it never calls back into the bus.
"""

from tensorflow_serving.apis import get_model_status_pb2
from tensorflow_serving.core import servable_id as servable_id_lib
from tensorflow_serving.core import servable_state
from tensorflow_serving.util import event_bus as event_bus_lib
from tensorflow_serving.util import metrics
from tensorflow_serving.util import status

ManagerState = servable_state.ManagerState
_State = get_model_status_pb2.ModelVersionStatus.State

# ManagerState -> the number GetModelStatus reports for it.
STATE_NUMBERS = {
    ManagerState.START: _State.START,
    ManagerState.LOADING: _State.LOADING,
    ManagerState.AVAILABLE: _State.AVAILABLE,
    ManagerState.UNLOADING: _State.UNLOADING,
    ManagerState.END: _State.END,
}


class ServableStateMetrics:
  """Records every ServableState published on a bus. See the module doc."""

  def __init__(self, bus: event_bus_lib.EventBus) -> None:
    # When each version's current load began (bus clock micros); touched
    # only by the bus's delivery, one event at a time.
    self._loading_since: dict[servable_id_lib.ServableId, int] = {}
    self._subscription = bus.subscribe(self._handle_event)

  def close(self) -> None:
    """Stops listening; the series recorded so far stay."""
    self._subscription.cancel()

  def _handle_event(self, event_and_time: event_bus_lib.EventAndTime) -> None:
    state: servable_state.ServableState = event_and_time.event
    sid, manager_state = state.id, state.manager_state
    now = event_and_time.event_time_micros
    if manager_state == ManagerState.LOADING:
      self._loading_since.setdefault(sid, now)
    elif manager_state == ManagerState.AVAILABLE:
      since = self._loading_since.pop(sid, None)
      if since is not None:
        metrics.record_version_load_latency(sid.name, sid.version,
                                            now - since)
    elif manager_state in (ManagerState.START, ManagerState.END):
      self._loading_since.pop(sid, None)
    failed = state.health is not None and state.health.code != status.Code.OK
    if manager_state == ManagerState.END and not failed:
      metrics.remove_version(sid.name, sid.version)
      return
    metrics.record_version_state(sid.name, sid.version,
                                 STATE_NUMBERS[manager_state])
