"""Tests for core/loader_harness.py (fake clock: retries do not wait)."""

from absl.testing import absltest

from tensorflow_serving.core import loader_harness
from tensorflow_serving.core import servable_id
from tensorflow_serving.core.test_util import fake_loader
from tensorflow_serving.util import status
from tensorflow_serving.util.test_util import fake_clock

ID = servable_id.ServableId("m", 1)
State = loader_harness.State


class LoaderHarnessTest(absltest.TestCase):

  def make(self, loader, retries=2, interval=500):
    self.clock = fake_clock.FakeClock()
    return loader_harness.LoaderHarness(
        ID, loader,
        loader_harness.LoaderHarness.Options(
            max_num_load_retries=retries,
            load_retry_interval_micros=interval,
            clock=self.clock))

  def test_full_lifecycle(self):
    loader = fake_loader.FakeLoader(ID)
    harness = self.make(loader)
    self.assertEqual(harness.state, State.NEW)
    harness.load_requested()
    harness.load_approved()
    harness.load()
    self.assertEqual(harness.state, State.READY)
    self.assertTrue(loader.servable().loaded)
    harness.unload_requested()
    harness.start_quiescing()
    harness.done_quiescing()
    harness.unload()
    self.assertEqual(harness.state, State.DISABLED)
    self.assertEqual(loader.unload_calls, 1)

  def test_illegal_transition(self):
    harness = self.make(fake_loader.FakeLoader(ID))
    with self.assertRaises(status.ServingError) as cm:
      harness.load()
    # Upstream's texts and codes (core/loader_harness.cc).
    self.assertEqual(cm.exception.code, status.Code.INTERNAL)
    self.assertEqual(cm.exception.message,
                     "Illegal request to transition from state new to loading")
    harness.load_requested()
    with self.assertRaises(status.ServingError) as cm:
      harness.load_requested()
    self.assertEqual(cm.exception.code, status.Code.FAILED_PRECONDITION)
    self.assertEqual(cm.exception.message, "Duplicate load request")
    with self.assertRaises(status.ServingError) as cm:
      harness.unload_requested()
    self.assertEqual(cm.exception.code, status.Code.FAILED_PRECONDITION)
    self.assertEqual(
        cm.exception.message,
        "Servable not loaded, or unload already requested/ongoing")

  def test_retries_then_succeeds(self):
    loader = fake_loader.FakeLoader(ID, fail_times=2)
    harness = self.make(loader)
    harness.load_requested()
    harness.load_approved()
    harness.load()
    self.assertEqual(loader.load_calls, 3)
    self.assertEqual(self.clock.sleeps, [500, 500])
    self.assertEqual(harness.state, State.READY)

  def test_exhausts_retries_into_error(self):
    loader = fake_loader.FakeLoader(ID, fail_times=-1)
    harness = self.make(loader, retries=3)
    harness.load_requested()
    harness.load_approved()
    with self.assertRaises(status.ServingError):
      harness.load()
    self.assertEqual(loader.load_calls, 4)
    self.assertEqual(harness.state, State.ERROR)
    self.assertEqual(harness.error.code, status.Code.DATA_LOSS)

  def test_cancelled_before_load(self):
    loader = fake_loader.FakeLoader(ID)
    harness = self.make(loader)
    harness.load_requested()
    harness.load_approved()
    harness.cancel_load_retry()
    with self.assertRaises(status.ServingError) as cm:
      harness.load()
    self.assertEqual(cm.exception.code, status.Code.CANCELLED)
    self.assertEqual(loader.load_calls, 0)
    self.assertEqual(harness.state, State.ERROR)

  def test_set_error(self):
    harness = self.make(None)
    harness.set_error(status.not_found("no loader"))
    self.assertEqual(harness.state, State.ERROR)
    self.assertEqual(harness.error.message, "no loader")


if __name__ == "__main__":
  absltest.main()
