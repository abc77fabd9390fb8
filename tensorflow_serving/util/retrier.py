"""retry(): run a failing operation again, a bounded number of times.

Upstream's util/retrier: the manager loads a servable through it, so a
transient failure (a file system hiccup) gets `max_num_retries` more chances,
`retry_interval_micros` apart, and the log says what happened with the same
lines upstream writes ("<description> failed: ...", "Retrying of
<description> retry: k", "... exhausted max_num_retries: n").
"""

import threading
from typing import Callable

from absl import logging

from tensorflow_serving.util import clock as clock_lib
from tensorflow_serving.util import status


def retry(description: str,
          max_num_retries: int,
          retry_interval_micros: int,
          retried_fn: Callable[[], None],
          should_retry: Callable[[status.ServingError], bool] = (
              lambda unused_error: True),
          clock: clock_lib.Clock | None = None,
          cancel: threading.Event | None = None) -> None:
  """Calls `retried_fn` until it returns, at most 1 + max_num_retries times.

  Args:
    description: names the operation in logs ("Loading servable: {...}").
    max_num_retries: retries after the first failure (0: a single attempt).
    retry_interval_micros: wait before each retry; negative or 0: no wait.
    retried_fn: the operation; it fails by raising.
    should_retry: asked after each failure; False stops retrying (cancelled).
    clock: waits between attempts (default: the real clock).
    cancel: when set, cuts a wait short (should_retry then decides).

  Raises:
    ServingError: the last failure (other exceptions become UNKNOWN).
  """
  clock = clock or clock_lib.RealClock()
  num_tries = 0
  last_error: status.ServingError | None = None
  cancelled = False
  while True:
    if num_tries > 0:
      clock.sleep_micros(retry_interval_micros, cancel)
      if not should_retry(last_error):
        cancelled = True
        break
      logging.info("Retrying of %s retry: %d", description, num_tries)
    try:
      retried_fn()
      last_error = None
    except Exception as e:  # pylint: disable=broad-except
      last_error = status.from_exception(e)
      logging.error("%s failed: %s: %s", description, last_error.code.name,
                    last_error.message)
    num_tries += 1
    if last_error is None or num_tries >= max_num_retries + 1:
      break
    if not should_retry(last_error):
      cancelled = True
      break
  if cancelled:
    logging.info("Retrying of %s was cancelled.", description)
  if last_error is not None and num_tries == max_num_retries + 1 and (
      max_num_retries > 0):
    logging.info("Retrying of %s exhausted max_num_retries: %d", description,
                 max_num_retries)
  if last_error is not None:
    raise last_error
