"""Tests for core/aspired_versions_manager.py.

Most tests drive the manager's rounds by hand (no thread, fake clock), so they
are deterministic and instant. The last ones run the real manager thread
with many request threads, bounded by event waits with timeouts.
"""

import threading

from absl.testing import absltest

from tensorflow_serving.core import aspired_versions_manager as avm_lib
from tensorflow_serving.core import manager
from tensorflow_serving.core import resource_preserving_policy
from tensorflow_serving.core import servable_data
from tensorflow_serving.core import servable_id
from tensorflow_serving.core import servable_state
from tensorflow_serving.core import servable_state_monitor
from tensorflow_serving.core.test_util import fake_loader
from tensorflow_serving.core.test_util import manager_test_util
from tensorflow_serving.util import event_bus
from tensorflow_serving.util import status
from tensorflow_serving.util.test_util import fake_clock

ServableId = servable_id.ServableId
ServableData = servable_data.ServableData
ServableRequest = manager.ServableRequest
ManagerState = servable_state.ManagerState

WAIT = 10  # Seconds; only reached if something is broken.


class AspiredVersionsManagerTest(absltest.TestCase):

  def setUp(self):
    super().setUp()
    self.clock = fake_clock.FakeClock()
    self.bus = event_bus.EventBus(event_bus.EventBus.Options(clock=self.clock))
    self.monitor = servable_state_monitor.ServableStateMonitor(self.bus)
    self.loaders = {}

  def make_manager(self, **kwargs):
    options = dict(
        manage_state_interval_micros=0,
        servable_event_bus=self.bus,
        clock=self.clock,
        max_num_load_retries=5,
        load_retry_interval_micros=60_000_000)
    options.update(kwargs)
    manager_ = avm_lib.AspiredVersionsManager(
        avm_lib.AspiredVersionsManager.Options(**options))
    self.addCleanup(manager_.stop)
    self.access = manager_test_util.AspiredVersionsManagerTestAccess(manager_)
    self.callback = manager_.get_aspired_versions_callback()
    return manager_

  def aspire(self, name, *versions, **loader_kwargs):
    """Aspires versions; a version given as -v is corrupt (always fails)."""
    data = []
    for v in versions:
      id_ = ServableId(name, abs(v))
      loader = self.loaders.get(id_)
      if loader is None or loader.unload_calls:
        loader = fake_loader.FakeLoader(
            id_, fail_times=-1 if v < 0 else 0, **loader_kwargs)
        self.loaders[id_] = loader
      data.append(ServableData.ok(id_, loader))
    self.callback(name, data)

  def state(self, name, version):
    state = self.monitor.get_state(ServableId(name, version))
    return state.manager_state if state else None

  def latest_version(self, name):
    with self.manager.get_servable_handle(ServableRequest.latest(name)) as h:
      return h.id.version

  def test_loads_aspired_version(self):
    self.manager = self.make_manager()
    self.aspire("m", 1)
    self.access.run_manage_state()
    self.assertEqual(self.state("m", 1), ManagerState.AVAILABLE)
    self.assertEqual(self.latest_version("m"), 1)
    self.assertEqual(self.manager.list_available_servable_ids(),
                     [ServableId("m", 1)])

  def test_nothing_happens_before_a_round(self):
    self.manager = self.make_manager()
    self.aspire("m", 1)
    self.assertIsNone(self.state("m", 1))

  def test_only_newest_pending_list_counts(self):
    self.manager = self.make_manager()
    self.aspire("m", 1)
    self.aspire("m", 2)
    self.access.run_manage_state()
    self.assertIsNone(self.state("m", 1))
    self.assertEqual(self.state("m", 2), ManagerState.AVAILABLE)

  def test_rolls_versions_preserving_availability(self):
    self.manager = self.make_manager()
    self.aspire("m", 1)
    self.access.run_manage_state()
    self.aspire("m", 2)
    self.access.handle_pending_aspired_versions_requests()
    self.access.invoke_policy_and_execute_action()  # Loads 2; 1 still serves.
    self.assertEqual(self.state("m", 1), ManagerState.AVAILABLE)
    self.assertEqual(self.state("m", 2), ManagerState.AVAILABLE)
    self.assertEqual(self.latest_version("m"), 2)
    self.access.invoke_policy_and_execute_action()  # Unloads 1.
    self.assertEqual(self.state("m", 1), ManagerState.END)
    self.assertEqual(self.loaders[ServableId("m", 1)].unload_calls, 1)
    self.access.flush_servables()
    self.assertEqual(
        [s.id.version for s in self.manager._basic_manager
         .get_managed_servable_state_snapshots("m")], [2])

  def test_resource_preserving_policy_unloads_first(self):
    self.manager = self.make_manager(
        aspired_version_policy=resource_preserving_policy
        .ResourcePreservingPolicy())
    self.aspire("m", 1)
    self.access.run_manage_state()
    self.aspire("m", 2)
    self.access.run_manage_state()
    self.assertEqual(self.state("m", 1), ManagerState.END)
    self.assertEqual(self.state("m", 2), ManagerState.START)
    self.access.run_manage_state()
    self.assertEqual(self.state("m", 2), ManagerState.AVAILABLE)

  def test_corrupt_version_retried_then_error_and_old_keeps_serving(self):
    self.manager = self.make_manager(
        max_num_load_retries=3, load_retry_interval_micros=250)
    self.aspire("m", 1)
    self.access.run_manage_state()
    self.aspire("m", -2)
    with self.assertLogs(level="INFO") as logs:
      self.access.run_manage_state(rounds=3)
    corrupt = self.loaders[ServableId("m", 2)]
    self.assertEqual(corrupt.load_calls, 4)  # 1 + max_num_load_retries.
    self.assertEqual(self.clock.sleeps, [250, 250, 250])
    state = self.monitor.get_state(ServableId("m", 2))
    self.assertEqual(state.manager_state, ManagerState.END)
    self.assertEqual(state.health.code, status.Code.DATA_LOSS)
    self.assertEqual(state.health.message, "corrupt version 2")
    self.assertEqual(self.state("m", 1), ManagerState.AVAILABLE)
    self.assertEqual(self.latest_version("m"), 1)
    text = "\n".join(logs.output)
    self.assertIn("Loading servable: {name: m version: 2} failed: DATA_LOSS",
                  text)
    self.assertIn("Retrying of Loading servable: {name: m version: 2} retry: 3",
                  text)
    # The source keeps aspiring it: no further attempts, the error stays.
    self.aspire("m", -2)
    self.access.run_manage_state(rounds=2)
    self.assertEqual(corrupt.load_calls, 4)
    self.assertEqual(self.state("m", 2), ManagerState.END)
    # A fixed version 3 replaces both.
    self.aspire("m", 3)
    self.access.run_manage_state(rounds=3)
    self.assertEqual(self.latest_version("m"), 3)
    self.assertEqual(self.state("m", 1), ManagerState.END)

  def test_transient_failure_retried_when_aspired_again(self):
    # A store that is down: every attempt of the first Loader fails with
    # UNAVAILABLE; the source's next poll brings a new Loader that works.
    self.manager = self.make_manager(
        max_num_load_retries=1, load_retry_interval_micros=250)
    self.aspire("m", 1)
    self.access.run_manage_state()
    down = fake_loader.FakeLoader(
        ServableId("m", 2), fail_times=-1,
        error=status.unavailable("S3 unreachable for s3://b/m/2"))
    self.callback("m", [ServableData.ok(ServableId("m", 2), down)])
    self.access.run_manage_state(rounds=2)
    self.assertEqual(down.load_calls, 2)
    state = self.monitor.get_state(ServableId("m", 2))
    self.assertEqual(state.manager_state, ManagerState.END)
    self.assertEqual(state.health.code, status.Code.UNAVAILABLE)
    self.assertEqual(self.latest_version("m"), 1)
    up = fake_loader.FakeLoader(ServableId("m", 2))
    with self.assertLogs(level="INFO") as logs:
      self.callback("m", [ServableData.ok(ServableId("m", 2), up)])
      self.access.run_manage_state(rounds=3)
    self.assertIn("Retrying the load of {name: m version: 2}, which failed "
                  "for a transient reason", "\n".join(logs.output))
    self.assertEqual(up.load_calls, 1)
    self.assertEqual(self.latest_version("m"), 2)
    self.assertEqual(self.state("m", 2), ManagerState.AVAILABLE)

  def test_error_from_source_reported(self):
    self.manager = self.make_manager()
    self.callback("m", [
        ServableData.failed(ServableId("m", 1), status.not_found("no path"))
    ])
    self.access.run_manage_state()
    state = self.monitor.get_state(ServableId("m", 1))
    self.assertEqual(state.manager_state, ManagerState.END)
    self.assertEqual(state.health.message, "no path")

  def test_unaspire_all_unloads(self):
    self.manager = self.make_manager()
    self.aspire("m", 1, 2)
    self.access.run_manage_state(rounds=2)
    self.assertEqual(
        len(self.manager.list_available_servable_ids()), 2)
    self.callback("m", [])
    self.access.run_manage_state(rounds=3)
    self.assertEqual(self.manager.list_available_servable_ids(), [])
    self.assertEqual(self.state("m", 1), ManagerState.END)
    self.assertEqual(self.state("m", 2), ManagerState.END)

  def test_unaspired_before_loading_is_dropped(self):
    self.manager = self.make_manager()
    self.aspire("m", 1)
    self.access.handle_pending_aspired_versions_requests()
    self.callback("m", [])
    self.access.handle_pending_aspired_versions_requests()
    self.access.flush_servables()
    self.assertEqual(self.state("m", 1), ManagerState.END)
    self.assertEqual(self.loaders[ServableId("m", 1)].load_calls, 0)

  def test_reaspired_version_waits_for_old_incarnation(self):
    self.manager = self.make_manager()
    self.aspire("m", 1, 2)
    self.access.run_manage_state(rounds=2)
    self.aspire("m", 2)  # Drop 1...
    self.access.handle_pending_aspired_versions_requests()
    self.aspire("m", 1, 2)  # ...and bring it back before it is unloaded.
    self.access.handle_pending_aspired_versions_requests()  # Deferred.
    self.access.run_manage_state(rounds=3)  # Unload, flush, re-manage, load.
    self.assertEqual(self.state("m", 1), ManagerState.AVAILABLE)
    self.assertEqual(
        sorted(i.version for i in self.manager.list_available_servable_ids()),
        [1, 2])

  def test_two_servables_independent(self):
    self.manager = self.make_manager()
    self.aspire("good", 1)
    self.aspire("bad", -1)
    self.access.run_manage_state()
    self.assertEqual(self.state("good", 1), ManagerState.AVAILABLE)
    self.assertEqual(self.state("bad", 1), ManagerState.END)
    self.assertEqual(self.latest_version("good"), 1)

  def test_mismatched_name_is_rejected(self):
    self.manager = self.make_manager()
    self.callback("m", [
        ServableData.ok(ServableId("other", 1),
                        fake_loader.FakeLoader(ServableId("other", 1)))
    ])
    self.access.run_manage_state()
    self.assertIsNone(self.state("other", 1))

  def test_unaspiring_cancels_load_retries(self):
    self.manager = self.make_manager(num_load_threads=1)
    gate = threading.Event()
    self.aspire("m", -1, load_gate=gate)
    self.access.run_manage_state()  # Load starts on the pool, waits on gate.
    self.callback("m", [])
    self.access.handle_pending_aspired_versions_requests()
    gate.set()
    reached, _ = self.monitor.wait_until_servables_reach_state(
        [ServableRequest.specific("m", 1)], ManagerState.AVAILABLE,
        timeout_seconds=WAIT)
    self.assertFalse(reached)
    self.assertEqual(self.loaders[ServableId("m", 1)].load_calls, 1)

  def test_stop_unloads_all(self):
    self.manager = self.make_manager()
    self.aspire("m", 1)
    self.access.run_manage_state()
    self.manager.stop()
    self.assertEqual(self.state("m", 1), ManagerState.END)
    self.assertEqual(self.loaders[ServableId("m", 1)].unload_calls, 1)


class ManagerThreadTest(absltest.TestCase):
  """Runs the real periodic manager thread."""

  def setUp(self):
    super().setUp()
    self.bus = event_bus.EventBus()
    self.monitor = servable_state_monitor.ServableStateMonitor(self.bus)

  def make_manager(self, **kwargs):
    manager_ = avm_lib.AspiredVersionsManager(
        avm_lib.AspiredVersionsManager.Options(
            manage_state_interval_micros=1000,
            servable_event_bus=self.bus,
            **kwargs))
    self.addCleanup(manager_.stop)
    return manager_

  def aspire_and_wait(self, manager_, version):
    id_ = ServableId("m", version)
    manager_.get_aspired_versions_callback()(
        "m", [ServableData.ok(id_, fake_loader.FakeLoader(id_))])
    reached, _ = self.monitor.wait_until_servables_reach_state(
        [ServableRequest.specific("m", version)], ManagerState.AVAILABLE,
        timeout_seconds=WAIT)
    self.assertTrue(reached)

  def test_manager_thread_loads(self):
    manager_ = self.make_manager()
    self.aspire_and_wait(manager_, 1)
    with manager_.get_servable_handle(ServableRequest.latest("m")) as handle:
      self.assertTrue(handle.servable.loaded)

  def test_eight_threads_while_versions_roll(self):
    for unload_threads in (0, 2):
      with self.subTest(num_unload_threads=unload_threads):
        self.bus = event_bus.EventBus()
        self.monitor = servable_state_monitor.ServableStateMonitor(self.bus)
        self._run_rolling(self.make_manager(num_unload_threads=unload_threads,
                                            num_load_threads=1))

  def _run_rolling(self, manager_):
    self.aspire_and_wait(manager_, 1)
    stop = threading.Event()
    failures = []
    seen = [set() for _ in range(8)]
    counts = [0] * 8

    def worker(i):
      last = 0
      while not stop.is_set() and counts[i] < 200_000:
        try:
          with manager_.get_servable_handle(
              ServableRequest.latest("m")) as handle:
            servable = handle.servable
            if not servable.loaded:
              failures.append(f"got unloaded {servable.id}")
            version = handle.id.version
            if version < last:
              failures.append(f"went back from {last} to {version}")
            last = version
            seen[i].add(version)
            if not servable.loaded:
              failures.append(f"{servable.id} unloaded while held")
        except status.ServingError as e:
          failures.append(str(e))
        counts[i] += 1

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(8)]
    for t in threads:
      t.start()
    try:
      for version in (2, 3):
        self.aspire_and_wait(manager_, version)
        reached, _ = self.monitor.wait_until_servables_reach_state(
            [ServableRequest.specific("m", version - 1)], ManagerState.END,
            timeout_seconds=WAIT)
        self.assertTrue(reached)
    finally:
      stop.set()
      for t in threads:
        t.join()
    self.assertEqual(failures, [])
    self.assertTrue(all(c > 0 for c in counts))
    self.assertEqual(manager_.list_available_servable_ids(),
                     [ServableId("m", 3)])


if __name__ == "__main__":
  absltest.main()
