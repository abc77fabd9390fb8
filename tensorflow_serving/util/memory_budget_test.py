"""Tests for MemoryBudget: charges, waiting, refusals, order, growth."""

import threading

from absl.testing import absltest

from tensorflow_serving.util import memory_budget
from tensorflow_serving.util import status

_WAIT = 10.0
MB = 1 << 20


class MemoryBudgetTest(absltest.TestCase):

  def setUp(self):
    super().setUp()
    self.budget = memory_budget.MemoryBudget(10 * MB, min_charge_bytes=MB)

  def test_small_requests_are_not_charged(self):
    reservation = self.budget.acquire(MB - 1, timeout=0)
    self.assertEqual(self.budget.in_use, 0)
    reservation.release()
    self.assertIsNotNone(self.budget.try_acquire(MB - 1))

  def test_acquire_and_release(self):
    with self.budget.acquire(4 * MB, timeout=0) as first:
      self.assertEqual(first.nbytes, 4 * MB)
      second = self.budget.acquire(6 * MB, timeout=0)
      self.assertEqual(self.budget.in_use, 10 * MB)
      second.release()
      second.release()  # Idempotent.
      self.assertEqual(self.budget.in_use, 4 * MB)
    self.assertEqual(self.budget.in_use, 0)

  def test_full_budget_refuses_with_resource_exhausted(self):
    held = self.budget.acquire(8 * MB, timeout=0)
    cell = memory_budget.REFUSED_COUNT.get_cell("TEST")
    before = cell.value()
    with self.assertRaises(status.ServingError) as ctx:
      self.budget.acquire(3 * MB, timeout=0.01, entrypoint="TEST")
    self.assertEqual(ctx.exception.code, status.Code.RESOURCE_EXHAUSTED)
    self.assertEqual(
        ctx.exception.message,
        f"The server is short of memory for decoding requests: {8 * MB} of "
        f"the {10 * MB} bytes of --request_memory_budget_bytes are in use by "
        f"other requests, and this request needs {3 * MB} more; none were "
        "freed within 0.01 s. Retry later, or send smaller requests.")
    self.assertEqual(cell.value(), before + 1)
    self.assertIsNone(self.budget.try_acquire(3 * MB))
    self.assertEqual(self.budget.in_use, 8 * MB)  # Nothing was allocated.
    held.release()
    self.assertIsNotNone(self.budget.try_acquire(3 * MB))

  def test_a_request_larger_than_the_budget_runs_alone(self):
    held = self.budget.acquire(2 * MB, timeout=0)
    with self.assertRaises(status.ServingError):
      self.budget.acquire(100 * MB, timeout=0)
    held.release()
    big = self.budget.acquire(100 * MB, timeout=0)
    self.assertEqual(big.nbytes, 10 * MB)
    self.assertIsNone(self.budget.try_acquire(MB))
    big.release()

  def test_a_waiter_gets_in_when_room_is_freed(self):
    held = self.budget.acquire(9 * MB, timeout=0)
    got = []
    waiting = threading.Thread(
        target=lambda: got.append(self.budget.acquire(5 * MB, timeout=_WAIT)))
    waiting.start()
    held.release()
    waiting.join(_WAIT)
    self.assertLen(got, 1)
    self.assertEqual(self.budget.in_use, 5 * MB)

  def test_first_come_first_served(self):
    held = self.budget.acquire(6 * MB, timeout=0)
    got = []
    big = threading.Thread(
        target=lambda: got.append(self.budget.acquire(8 * MB, timeout=_WAIT)))
    big.start()
    deadline = threading.Event()
    while not self.budget._waiters:  # pylint: disable=protected-access
      deadline.wait(0.001)
    # A small request that would fit waits behind the big one.
    self.assertIsNone(self.budget.try_acquire(2 * MB))
    held.release()
    big.join(_WAIT)
    self.assertLen(got, 1)
    self.assertEqual(self.budget.in_use, 8 * MB)

  def test_a_waiter_that_gives_up_lets_the_next_in(self):
    held = self.budget.acquire(6 * MB, timeout=0)
    with self.assertRaises(status.ServingError):
      self.budget.acquire(8 * MB, timeout=0.01)
    self.assertIsNotNone(self.budget.try_acquire(4 * MB))
    held.release()

  def test_grow(self):
    reservation = self.budget.acquire(2 * MB, timeout=0)
    reservation.grow(3 * MB, timeout=0)
    self.assertEqual(reservation.nbytes, 5 * MB)
    other = self.budget.acquire(4 * MB, timeout=0)
    self.assertFalse(reservation.try_grow(2 * MB))
    with self.assertRaises(status.ServingError):
      reservation.grow(2 * MB, timeout=0)
    self.assertEqual(reservation.nbytes, 5 * MB)
    self.assertTrue(reservation.try_grow(MB))
    other.release()
    # Never more than the capacity in all.
    reservation.grow(50 * MB, timeout=0)
    self.assertEqual(reservation.nbytes, 10 * MB)
    reservation.release()
    self.assertEqual(self.budget.in_use, 0)

  def test_wait_deadline(self):
    self.assertEqual(memory_budget.wait_deadline(0.5, None), 0.5)
    self.assertEqual(memory_budget.wait_deadline(0.5, 0.0), 0.0)


if __name__ == "__main__":
  absltest.main()
