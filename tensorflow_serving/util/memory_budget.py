"""MemoryBudget: one bound on the bytes all requests are decoding at once.

A per-request size limit (gRPC's max_receive_message_length, REST's body
limit) bounds one request; nothing bounded what many requests decode at the
same time: eight 1 GiB bodies arriving together need 8 GiB (and more once
parsed), which takes a server down (tensorflow/serving#4136 shows upstream
falling over to 50-100 gzip bombs). The budget is that total, shared by
every transport: a request reserves what it is about to inflate or decode
(its gRPC message, its inflated and parsed REST body) before allocating it,
and gives it back when it is answered. When the budget is full a new large
request waits a little for room (first come, first served) and is refused
with RESOURCE_EXHAUSTED if none comes; it is never allocated meanwhile.

  * Requests smaller than `min_charge_bytes` are not charged: they cost no
    lock, and the number that can run at once (worker threads) bounds them.
  * A request larger than the whole budget is charged the whole budget: it
    runs when it has the budget to itself (its per-request limit, not the
    budget, says whether it may run at all).
  * A reservation can grow (a body inflated chunk by chunk charges each
    chunk before inflating it) and is released once (release() is
    idempotent; a Reservation is also a context manager).

Thread-safe. acquire() and Reservation.grow() block for up to their
timeout; try_acquire() and Reservation.try_grow() never block (for an event
loop).
"""

import collections
import threading
import time
from typing import Optional

from tensorflow_serving.util import metrics
from tensorflow_serving.util import status

# Requests smaller than this are not charged (see the module doc).
DEFAULT_MIN_CHARGE_BYTES = 1 << 20

REFUSED_COUNT = metrics.REGISTRY.register(metrics.Counter(
    "/tensorflow/serving/memory_budget_refused_count",
    "Requests refused (RESOURCE_EXHAUSTED) because the memory budget for "
    "decoding requests stayed full.", ("entrypoint",)))


class Reservation:
  """Bytes held in a MemoryBudget by one request, until release()."""

  __slots__ = ("_budget", "nbytes")

  def __init__(self, budget: Optional["MemoryBudget"], nbytes: int) -> None:
    self._budget = budget
    self.nbytes = nbytes

  def grow(self, more: int, timeout: float, entrypoint: str = "") -> None:
    """Adds `more` bytes, waiting up to `timeout` seconds for room.

    Raises:
      ServingError: RESOURCE_EXHAUSTED if no room came in time (the
        reservation keeps what it had).
    """
    budget = self._budget
    if budget is None or more <= 0:
      self.nbytes += max(0, more)
      return
    budget._take(self, more, timeout, entrypoint)  # pylint: disable=protected-access

  def try_grow(self, more: int) -> bool:
    """Adds `more` bytes if there is room now; False (and nothing) if not."""
    budget = self._budget
    if budget is None or more <= 0:
      self.nbytes += max(0, more)
      return True
    return budget._take_now(self, more)  # pylint: disable=protected-access

  def release(self) -> None:
    """Gives the bytes back (once; later calls do nothing)."""
    budget, self._budget = self._budget, None
    if budget is not None:
      budget._give_back(self.nbytes)  # pylint: disable=protected-access

  def __enter__(self) -> "Reservation":
    return self

  def __exit__(self, *unused_exc) -> None:
    self.release()


class _Waiter:
  __slots__ = ("nbytes", "granted", "event")

  def __init__(self, nbytes: int) -> None:
    self.nbytes = nbytes
    self.granted = False
    self.event = threading.Event()


class MemoryBudget:
  """The bytes requests may be decoding at once. See the module doc."""

  def __init__(self, capacity_bytes: int,
               min_charge_bytes: int = DEFAULT_MIN_CHARGE_BYTES) -> None:
    if capacity_bytes <= 0:
      raise ValueError(f"capacity_bytes must be positive: {capacity_bytes}")
    self.capacity = capacity_bytes
    self.min_charge_bytes = min_charge_bytes
    self._mu = threading.Lock()
    self._in_use = 0  # guarded by self._mu
    self._waiters: collections.deque[_Waiter] = collections.deque()  # guarded by self._mu

  @property
  def in_use(self) -> int:
    """Bytes reserved now."""
    with self._mu:
      return self._in_use

  def acquire(self, nbytes: int, timeout: float,
              entrypoint: str = "") -> Reservation:
    """Reserves nbytes (at most the capacity), waiting up to `timeout`.

    Args:
      nbytes: what the request is about to allocate.
      timeout: how long to wait for room, in seconds.
      entrypoint: metrics.GRPC or metrics.REST, for the refusal count.

    Raises:
      ServingError: RESOURCE_EXHAUSTED when no room came within `timeout`.
    """
    if nbytes < self.min_charge_bytes:
      return Reservation(None, nbytes)
    reservation = Reservation(self, 0)
    self._take(reservation, nbytes, timeout, entrypoint)
    return reservation

  def try_acquire(self, nbytes: int) -> Optional[Reservation]:
    """Reserves nbytes if there is room now (never waits); else None."""
    if nbytes < self.min_charge_bytes:
      return Reservation(None, nbytes)
    reservation = Reservation(self, 0)
    return reservation if self._take_now(reservation, nbytes) else None

  def _charge(self, reservation: Reservation, nbytes: int) -> int:
    """What `nbytes` more costs: never more than the capacity in all."""
    return max(0, min(nbytes, self.capacity - reservation.nbytes))

  def _take_now(self, reservation: Reservation, nbytes: int) -> bool:
    charge = self._charge(reservation, nbytes)
    with self._mu:
      if self._waiters or self._in_use + charge > self.capacity:
        return False
      self._in_use += charge
    reservation.nbytes += charge
    return True

  def _take(self, reservation: Reservation, nbytes: int, timeout: float,
            entrypoint: str) -> None:
    charge = self._charge(reservation, nbytes)
    with self._mu:
      if not self._waiters and self._in_use + charge <= self.capacity:
        self._in_use += charge
        reservation.nbytes += charge
        return
      waiter = _Waiter(charge)
      self._waiters.append(waiter)
    waiter.event.wait(max(0.0, timeout))
    with self._mu:
      if not waiter.granted:
        self._waiters.remove(waiter)
        # Its leaving may let the ones behind it in.
        self._grant_waiters_locked()
        in_use = self._in_use
    if waiter.granted:
      reservation.nbytes += charge
      return
    REFUSED_COUNT.get_cell(entrypoint).increment_by(1)
    raise status.resource_exhausted(
        f"The server is short of memory for decoding requests: {in_use} of "
        f"the {self.capacity} bytes of --request_memory_budget_bytes are in "
        f"use by other requests, and this request needs {nbytes} more; "
        f"none were freed within {timeout:g} s. Retry later, or send "
        "smaller requests.")

  def _give_back(self, nbytes: int) -> None:
    with self._mu:
      self._in_use -= nbytes
      self._grant_waiters_locked()

  def _grant_waiters_locked(self) -> None:
    """Lets waiters in, first come first served, while they fit."""
    while self._waiters:
      waiter = self._waiters[0]
      if self._in_use + waiter.nbytes > self.capacity:
        return
      self._waiters.popleft()
      self._in_use += waiter.nbytes
      waiter.granted = True
      waiter.event.set()


def wait_deadline(timeout: float, deadline: Optional[float]) -> float:
  """How long a request may wait for the budget: `timeout`, or less if its
  deadline (time.monotonic() seconds) comes first."""
  if deadline is None:
    return timeout
  return max(0.0, min(timeout, deadline - time.monotonic()))
