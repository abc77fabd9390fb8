"""SourceAdapter: a Target of one payload type that re-emits another.

The chain from a file system to the manager is Source[str] -> SourceAdapter[str,
Loader] -> manager: the adapter turns each aspired version's storage path into
a Loader. Subclasses implement only convert(); this base class handles the
plumbing:
  * A version that arrives with an error is passed through unchanged.
  * convert() raising ServingError makes that one version
    ServableData.failed(id, error); the other versions are unaffected (any
    other exception is reported as UNKNOWN).
  * Aspired versions that arrive before the adapter itself is connected are
    kept (the latest list per servable name) and forwarded on connection, so
    the order of wiring does not matter.
convert() runs in the caller's thread (the source's polling thread) and must
not load anything: it only builds a Loader, which the manager loads later.
"""

import abc
import threading
from typing import Generic, TypeVar

from absl import logging

from tensorflow_serving.core import servable_data
from tensorflow_serving.core import servable_id as servable_id_lib
from tensorflow_serving.core import source as source_lib
from tensorflow_serving.core import target as target_lib
from tensorflow_serving.util import status

InT = TypeVar("InT")
OutT = TypeVar("OutT")


class SourceAdapter(source_lib.Source[OutT], target_lib.Target[InT],
                    Generic[InT, OutT]):
  """Converts aspired versions from InT to OutT. See the module docstring."""

  def __init__(self) -> None:
    # Held while forwarding, so lists reach the target in arrival order.
    self._mu = threading.Lock()
    self._outgoing: source_lib.AspiredVersionsCallback | None = (
        None)  # guarded by self._mu
    self._pending: dict[str, list[servable_data.ServableData]] = {
    }  # guarded by self._mu

  @abc.abstractmethod
  def convert(self, servable_id: servable_id_lib.ServableId, data: InT) -> OutT:
    """Converts one version's payload; raises ServingError on failure."""

  def adapt(
      self, servable_name: str, versions: list[servable_data.ServableData]
  ) -> list[servable_data.ServableData]:
    """Converts a whole aspired-versions list (failures become failed())."""
    adapted = []
    for version in versions:
      if not version.is_ok():
        adapted.append(version)
        continue
      try:
        adapted.append(
            servable_data.ServableData.ok(version.id,
                                          self.convert(version.id,
                                                       version.data)))
      except status.ServingError as e:
        adapted.append(servable_data.ServableData.failed(version.id, e))
      except Exception as e:  # pylint: disable=broad-except
        logging.exception("%s.convert raised for %s", type(self).__name__,
                          version.id)
        adapted.append(
            servable_data.ServableData.failed(version.id,
                                              status.from_exception(e)))
    return adapted

  def set_aspired_versions_callback(
      self, callback: source_lib.AspiredVersionsCallback) -> None:
    with self._mu:
      if self._outgoing is not None:
        logging.error("set_aspired_versions_callback called twice; ignored")
        return
      self._outgoing = callback
      pending, self._pending = self._pending, {}
      for name, versions in pending.items():
        callback(name, versions)

  def get_aspired_versions_callback(self) -> source_lib.AspiredVersionsCallback:
    return self._set_aspired_versions

  def _set_aspired_versions(
      self, servable_name: str,
      versions: list[servable_data.ServableData]) -> None:
    adapted = self.adapt(servable_name, versions)
    with self._mu:
      if self._outgoing is None:
        self._pending[servable_name] = adapted
        return
      self._outgoing(servable_name, adapted)


class ErrorInjectingSourceAdapter(SourceAdapter[InT, OutT]):
  """Turns every version it receives into the same error.

  ServerCore routes models whose platform has no adapter here, so they show
  up as failed versions instead of silently never loading.
  """

  def __init__(self, error: status.ServingError) -> None:
    super().__init__()
    self._error = error

  def convert(self, servable_id: servable_id_lib.ServableId, data: InT) -> OutT:
    raise self._error
