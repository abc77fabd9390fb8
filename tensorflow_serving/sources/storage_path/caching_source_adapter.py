"""CachingSourceAdapter: object-store versions loaded from a local copy.

A SourceAdapter[str, Loader] stage wrapped around a platform's adapter
(not in upstream). ServerCore wraps every platform's adapter in one, so the
chain for an s3:// or gs:// base path is

  source -> router -> CachingSourceAdapter(platform adapter) -> manager

and nothing else changes: the platform's adapter (the TensorFlow one, say)
keeps turning local directories into Loaders and never sees a URL. A local
path goes straight to the platform's adapter. A remote one becomes a
CachingLoader whose load() copies the version into the ModelCache and then
builds and loads the platform's Loader on the copy (warmup files included,
since they are part of the copy); unload() unloads it and deletes the copy.
Because the download is part of load(), the manager's retries
(--max_num_load_retries, --load_retry_interval_micros) and the retry of
transient failures on later polls apply to it.
"""

from typing import Any, Callable

from tensorflow_serving.core import loader as loader_lib
from tensorflow_serving.core import servable_id as servable_id_lib
from tensorflow_serving.core import source_adapter
from tensorflow_serving.sources.storage_path import file_system_registry
from tensorflow_serving.sources.storage_path import model_cache as model_cache_lib


class CachingLoader(loader_lib.Loader):
  """Downloads, then loads the wrapped platform's Loader on the copy."""

  def __init__(self, servable_id: servable_id_lib.ServableId,
               remote_path: str, cache: model_cache_lib.ModelCache,
               make_loader: Callable[[str], loader_lib.Loader]) -> None:
    self._id = servable_id
    self._remote_path = remote_path
    self._cache = cache
    self._make_loader = make_loader
    # Set by a successful load(), cleared by unload(); the manager calls
    # load() and unload() one at a time.
    self._local_path: str | None = None
    self._inner: loader_lib.Loader | None = None

  def estimate_resources(self) -> int:
    # The copy does not exist before load(); 0 as for an unknown size.
    return 0

  def load(self) -> None:
    local_path = self._cache.download(self._id, self._remote_path)
    try:
      inner = self._make_loader(local_path)
      inner.load()
    except BaseException:
      self._cache.remove(local_path)
      raise
    self._local_path, self._inner = local_path, inner

  def unload(self) -> None:
    inner, self._inner = self._inner, None
    local_path, self._local_path = self._local_path, None
    try:
      if inner is not None:
        inner.unload()
    finally:
      if local_path is not None:
        self._cache.remove(local_path)

  def servable(self) -> Any:
    return self._inner.servable() if self._inner is not None else None


class CachingSourceAdapter(source_adapter.SourceAdapter[str,
                                                        loader_lib.Loader]):
  """Routes remote version paths through the ModelCache. See the module doc."""

  def __init__(self,
               inner: source_adapter.SourceAdapter[str, loader_lib.Loader],
               cache: model_cache_lib.ModelCache,
               needs_local_copy: Callable[[str], bool] = (
                   file_system_registry.needs_local_copy)) -> None:
    super().__init__()
    self._inner = inner
    self._cache = cache
    self._needs_local_copy = needs_local_copy

  @property
  def inner(self) -> source_adapter.SourceAdapter[str, loader_lib.Loader]:
    return self._inner

  def convert(self, servable_id: servable_id_lib.ServableId,
              data: str) -> loader_lib.Loader:
    if not self._needs_local_copy(data):
      return self._inner.convert(servable_id, data)
    return CachingLoader(
        servable_id, data, self._cache,
        lambda local_path: self._inner.convert(servable_id, local_path))
