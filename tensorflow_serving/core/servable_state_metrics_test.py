"""Tests for core/servable_state_metrics.py, on a real bus with a fake clock."""

from absl.testing import absltest

from tensorflow_serving.core import servable_id
from tensorflow_serving.core import servable_state
from tensorflow_serving.core import servable_state_metrics
from tensorflow_serving.util import event_bus
from tensorflow_serving.util import metrics
from tensorflow_serving.util import status
from tensorflow_serving.util.test_util import fake_clock

ServableId = servable_id.ServableId
ServableState = servable_state.ServableState
ManagerState = servable_state.ManagerState


def _series(metric, name: str) -> dict[str, float]:
  """version -> value of `metric` for model `name`."""
  return {labels[1]: cell.value() for labels, cell in metric.cells()
          if labels[0] == name}


class ServableStateMetricsTest(absltest.TestCase):

  def setUp(self):
    super().setUp()
    self.clock = fake_clock.FakeClock(start_micros=5000)
    self.bus = event_bus.EventBus(event_bus.EventBus.Options(clock=self.clock))
    self.recorder = servable_state_metrics.ServableStateMetrics(self.bus)
    self.addCleanup(self.recorder.close)

  def publish(self, name, version, state, health=None):
    self.bus.publish(ServableState(ServableId(name, version), state, health))

  def states(self, name):
    return _series(metrics.MODEL_VERSION_STATE, name)

  def test_state_numbers_are_get_model_status_numbers(self):
    self.assertEqual(
        [servable_state_metrics.STATE_NUMBERS[s] for s in ManagerState],
        [10, 20, 30, 40, 50])

  def test_lifecycle_and_load_latency(self):
    self.publish("sm_life", 1, ManagerState.START)
    self.assertEqual(self.states("sm_life"), {"1": 10})
    self.clock.advance(100)
    self.publish("sm_life", 1, ManagerState.LOADING)
    self.assertEqual(self.states("sm_life"), {"1": 20})
    self.clock.advance(2500)
    self.publish("sm_life", 1, ManagerState.AVAILABLE)
    self.assertEqual(self.states("sm_life"), {"1": 30})
    self.assertEqual(
        _series(metrics.MODEL_VERSION_LOAD_LATENCY, "sm_life"), {"1": 2500})
    self.publish("sm_life", 1, ManagerState.UNLOADING)
    self.assertEqual(self.states("sm_life"), {"1": 40})
    # A clean unload ends both series.
    self.publish("sm_life", 1, ManagerState.END)
    self.assertEqual(self.states("sm_life"), {})
    self.assertEqual(_series(metrics.MODEL_VERSION_LOAD_LATENCY, "sm_life"),
                     {})

  def test_failed_version_stays_at_end_until_retried(self):
    self.publish("sm_fail", 2, ManagerState.START)
    self.publish("sm_fail", 2, ManagerState.LOADING)
    self.publish("sm_fail", 2, ManagerState.END,
                 status.unavailable("storage down"))
    self.assertEqual(self.states("sm_fail"), {"2": 50})
    self.assertEqual(_series(metrics.MODEL_VERSION_LOAD_LATENCY, "sm_fail"),
                     {})
    # Managed anew by a later poll: the retry's own load time is measured.
    self.publish("sm_fail", 2, ManagerState.START)
    self.clock.advance(7)
    self.publish("sm_fail", 2, ManagerState.LOADING)
    self.clock.advance(40)
    self.publish("sm_fail", 2, ManagerState.AVAILABLE)
    self.assertEqual(self.states("sm_fail"), {"2": 30})
    self.assertEqual(_series(metrics.MODEL_VERSION_LOAD_LATENCY, "sm_fail"),
                     {"2": 40})

  def test_versions_are_kept_apart(self):
    self.publish("sm_two", 1, ManagerState.AVAILABLE)
    self.publish("sm_two", 2, ManagerState.LOADING)
    self.assertEqual(self.states("sm_two"), {"1": 30, "2": 20})

  def test_close_stops_recording(self):
    self.recorder.close()
    self.publish("sm_closed", 1, ManagerState.START)
    self.assertEqual(self.states("sm_closed"), {})


if __name__ == "__main__":
  absltest.main()
