"""FakeClock: a Clock whose time only moves when a test says so."""

import threading
from typing import Optional

from tensorflow_serving.util import clock


class FakeClock(clock.Clock):
  """Time stands still until advance() or sleep_micros() moves it.

  Wall and monotonic time are the same counter. sleep_micros() never blocks:
  it advances the time by the requested amount and records it, so code that
  sleeps between retries runs instantly and a test can assert how long it
  would have waited. Timed waits (wait()) never time out by themselves: they
  end when the condition is notified or when the time moves, which wakes
  every waiter so that it can re-check its deadline; a test can thus drive
  batch timeouts deterministically.
  """

  def __init__(self, start_micros: int = 0) -> None:
    self._mu = threading.Lock()
    self._now = start_micros  # guarded by self._mu
    self._sleeps: list[int] = []  # guarded by self._mu
    self._waiters: set[threading.Condition] = set()  # guarded by self._mu

  def now_micros(self) -> int:
    with self._mu:
      return self._now

  def monotonic_micros(self) -> int:
    return self.now_micros()

  def sleep_micros(self, micros: int,
                   cancel: Optional[threading.Event] = None) -> None:
    with self._mu:
      self._sleeps.append(micros)
    if micros > 0:
      self.advance(micros)

  def advance(self, micros: int) -> None:
    """Moves the time forward by `micros` and wakes every timed waiter."""
    with self._mu:
      self._now += micros
      waiters = list(self._waiters)
    for cv in waiters:
      with cv:
        cv.notify_all()

  def wait(self, cv: threading.Condition,
           timeout_micros: Optional[int]) -> None:
    if timeout_micros is None:
      cv.wait()
      return
    with self._mu:
      self._waiters.add(cv)
    try:
      cv.wait()
    finally:
      with self._mu:
        self._waiters.discard(cv)

  @property
  def sleeps(self) -> list[int]:
    """Every sleep_micros() argument so far, in order."""
    with self._mu:
      return list(self._sleeps)
