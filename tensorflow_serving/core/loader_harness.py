"""LoaderHarness: one managed version's Loader plus its lifecycle state.

The manager wraps every Loader it manages in a harness, which enforces the
legal order of operations (as upstream's core/loader_harness.h):

  NEW -> LOAD_REQUESTED -> LOAD_APPROVED -> LOADING -> READY
      -> UNLOAD_REQUESTED -> QUIESCING -> QUIESCED -> UNLOADING -> DISABLED
  any state -> ERROR (a failed load, or an error from the source)

load() retries a failing Loader.load() up to max_num_load_retries more times,
load_retry_interval_micros apart, unless the retries are cancelled (the
version stopped being aspired, or the manager is stopping). The harness never
publishes events or touches the serving map: the manager does, around these
calls. All methods are thread-safe.
"""

# pylint: disable=redefined-builtin  (`id` as upstream names it)

import dataclasses
import enum
import threading

from absl import logging

from tensorflow_serving.core import loader as loader_lib
from tensorflow_serving.core import servable_id as servable_id_lib
from tensorflow_serving.util import clock as clock_lib
from tensorflow_serving.util import retrier
from tensorflow_serving.util import status


class State(enum.Enum):
  """Harness states; see the module docstring for the order."""

  NEW = "new"
  LOAD_REQUESTED = "load-requested"
  LOAD_APPROVED = "load-approved"
  LOADING = "loading"
  READY = "ready"
  UNLOAD_REQUESTED = "unload-requested"
  QUIESCING = "quiescing"
  QUIESCED = "quiesced"
  UNLOADING = "unloading"
  DISABLED = "disabled"
  ERROR = "error"


# States a harness never leaves; the manager may stop managing it then.
END_STATES = frozenset([State.DISABLED, State.ERROR])

# The load-retry defaults of every layer that has the options (the harness,
# the managers, ServerCore, the server's flags): written once, here.
DEFAULT_MAX_NUM_LOAD_RETRIES = 5
DEFAULT_LOAD_RETRY_INTERVAL_MICROS = 60_000_000  # One minute.


class LoaderHarness:
  """Drives one Loader through its lifecycle. See the module docstring."""

  @dataclasses.dataclass(frozen=True)
  class Options:
    """LoaderHarness options.

    Attributes:
      max_num_load_retries: retries after a failed load (0: one attempt).
      load_retry_interval_micros: wait between attempts (<= 0: none).
      clock: does the waiting (a fake clock in tests).
    """

    max_num_load_retries: int = DEFAULT_MAX_NUM_LOAD_RETRIES
    load_retry_interval_micros: int = DEFAULT_LOAD_RETRY_INTERVAL_MICROS
    clock: clock_lib.Clock = dataclasses.field(
        default_factory=clock_lib.RealClock)

  def __init__(self,
               id: servable_id_lib.ServableId,
               loader: loader_lib.Loader | None,
               options: "LoaderHarness.Options | None" = None) -> None:
    self._id = id
    self._loader = loader
    self._options = options or LoaderHarness.Options()
    self._mu = threading.Lock()
    self._state = State.NEW  # guarded by self._mu
    self._error: status.ServingError | None = None  # guarded by self._mu
    # Set to stop retrying a failing load; also cuts a retry wait short.
    self._cancel_load_retry = threading.Event()

  @property
  def id(self) -> servable_id_lib.ServableId:
    return self._id

  @property
  def loader(self) -> loader_lib.Loader | None:
    return self._loader

  @property
  def state(self) -> State:
    with self._mu:
      return self._state

  @property
  def error(self) -> status.ServingError | None:
    """The error that put the harness in ERROR, else None."""
    with self._mu:
      return self._error

  def _transition(self, expected: State, new: State) -> None:
    """Moves expected -> new; any other current state is a manager bug.

    Raises:
      ServingError: INTERNAL "Illegal request to transition from state <now>
        to <new>", upstream's text (whose release builds also put the
        harness in ERROR; here the harness keeps its state, so the manager
        can still unload it).
    """
    with self._mu:
      if self._state != expected:
        raise status.internal(
            "Illegal request to transition from state "
            f"{self._state.value} to {new.value}")
      self._state = new

  def load_requested(self) -> None:
    with self._mu:
      if self._state != State.NEW:
        raise status.failed_precondition("Duplicate load request")
      self._state = State.LOAD_REQUESTED

  def load_approved(self) -> None:
    self._transition(State.LOAD_REQUESTED, State.LOAD_APPROVED)

  def load(self) -> None:
    """Loads with retries (blocking); READY on success, ERROR and raises else.

    Raises:
      ServingError: the last load failure, or CANCELLED if the retries were
        cancelled before the first attempt.
    """
    self._transition(State.LOAD_APPROVED, State.LOADING)
    try:
      if self._cancel_load_retry.is_set():
        logging.info("Load cancelled for servable: %s", self._id)
        raise status.cancelled("Load cancelled before we could try to load.")
      retrier.retry(
          f"Loading servable: {self._id}",
          self._options.max_num_load_retries,
          self._options.load_retry_interval_micros,
          self._loader.load,
          should_retry=(
              lambda unused_error: not self._cancel_load_retry.is_set()),
          clock=self._options.clock,
          cancel=self._cancel_load_retry)
    except status.ServingError as e:
      with self._mu:
        self._state = State.ERROR
        self._error = e
      raise
    with self._mu:
      self._state = State.READY

  def unload_requested(self) -> None:
    with self._mu:
      if self._state != State.READY:
        raise status.failed_precondition(
            "Servable not loaded, or unload already requested/ongoing")
      self._state = State.UNLOAD_REQUESTED

  def start_quiescing(self) -> None:
    self._transition(State.UNLOAD_REQUESTED, State.QUIESCING)

  def done_quiescing(self) -> None:
    self._transition(State.QUIESCING, State.QUIESCED)

  def unload(self) -> None:
    """Calls Loader.unload(); DISABLED afterwards (unload never fails)."""
    self._transition(State.QUIESCED, State.UNLOADING)
    try:
      self._loader.unload()
    except Exception:  # pylint: disable=broad-except
      logging.exception("Loader.unload raised for %s", self._id)
    with self._mu:
      self._state = State.DISABLED

  def set_error(self, error: status.ServingError) -> None:
    """Puts the harness in ERROR (e.g. the source could not make a Loader)."""
    with self._mu:
      self._state = State.ERROR
      self._error = error

  def cancel_load_retry(self) -> None:
    """Stops retrying a failing load (the current attempt still finishes)."""
    self._cancel_load_retry.set()

  def is_load_retry_cancelled(self) -> bool:
    return self._cancel_load_retry.is_set()
