"""Clock: the one place the server asks for the time or waits.

Timestamps (event times in the servable state monitor), waits between load
retries, and the batch scheduler's deadlines and timed waits all go through a
Clock, so that tests can swap in util/test_util/fake_clock.FakeClock and move
time by hand instead of sleeping, as upstream's tests do with a fake-clock
Env.

Two time bases, because they answer different questions: now_micros() is
wall time (what a timestamp shows), monotonic_micros() never jumps (what a
deadline is measured in).
"""

import abc
import threading
import time
from typing import Optional


class Clock(abc.ABC):
  """Tells the time and waits. Implementations are thread-safe."""

  @abc.abstractmethod
  def now_micros(self) -> int:
    """Returns the current wall time in microseconds since the epoch."""

  @abc.abstractmethod
  def monotonic_micros(self) -> int:
    """Returns a monotonic time in microseconds (for deadlines)."""

  @abc.abstractmethod
  def sleep_micros(self, micros: int,
                   cancel: Optional[threading.Event] = None) -> None:
    """Waits `micros` (nothing if <= 0); returns early once `cancel` is set."""

  @abc.abstractmethod
  def wait(self, cv: threading.Condition,
           timeout_micros: Optional[int]) -> None:
    """Waits on `cv` (held by the caller) for a notify or `timeout_micros`.

    None means no timeout. Like Condition.wait, it may return early; callers
    re-check their predicate.
    """


class RealClock(Clock):
  """The system's clocks."""

  def now_micros(self) -> int:
    return time.time_ns() // 1000

  def monotonic_micros(self) -> int:
    return time.monotonic_ns() // 1000

  def sleep_micros(self, micros: int,
                   cancel: Optional[threading.Event] = None) -> None:
    if micros <= 0:
      return
    if cancel is None:
      time.sleep(micros / 1e6)
    else:
      cancel.wait(micros / 1e6)

  def wait(self, cv: threading.Condition,
           timeout_micros: Optional[int]) -> None:
    cv.wait(None if timeout_micros is None else timeout_micros / 1e6)
