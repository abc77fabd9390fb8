"""VersionReadiness: the upload-complete guard (not in upstream).

Upstream aspires a version directory as soon as its name appears, so a model
being copied into the base path is loaded half-written: the load fails, or a
SavedModel is served with missing variables (tensorflow/serving#1086, #631).
FileSystemStoragePathSource asks this guard instead, and a version directory
counts only once it is complete:

  * With a ready marker (--version_ready_marker=NAME): once the file NAME
    exists in it. Writers that can create a last file get an exact signal.
  * Otherwise, by its contents: it holds files; if it looks like a SavedModel
    (saved_model.pb/.pbtxt or variables/), then saved_model.pb (or .pbtxt)
    and variables/ exist, and variables/ is either empty (a model without
    variables) or holds variables.index and every data shard its names
    announce (variables.data-0000k-of-0000N, k < N); and its listing (every
    file's path, size and change token: mtime or ETag/generation) was the
    same at two polls in a row, so nothing was still being written during
    one poll interval. On a local file system a directory whose every entry
    is older than one poll interval is stable at first sight, so a server
    that starts on finished models does not wait a poll; object-store
    timestamps come from another clock, and there the two polls are always
    needed. Without periodic polling (poll once) the listing check is off.

A version that passed stays complete for as long as it is listed (rewriting
a served version's files does not unload it). A version seen incomplete is
simply not aspired: it never enters an error state, the versions serving
keep serving, and it is aspired at the first poll that finds it complete.
Each wait is logged once per version, and so is its end.
"""

import dataclasses
import re
import threading
import time
from typing import Callable

from absl import logging

from tensorflow_serving.sources.storage_path import file_system as fs_lib

_SHARD_RE = re.compile(r"variables/variables\.data-(\d+)-of-(\d+)")
_SAVED_MODEL_FILES = ("saved_model.pb", "saved_model.pbtxt")

# (size, change token) per path: what must stay equal across two polls.
Snapshot = dict[str, tuple[int, str]]


def incomplete_reason(tree: dict[str, fs_lib.FileStat],
                      ready_marker: str = "") -> str | None:
  """Why a version directory with this listing is not complete (None: it is).

  Only the contents count here; stability across polls is checked by
  VersionReadiness.
  """
  if ready_marker:
    stat = tree.get(ready_marker)
    if stat is None or stat.is_dir:
      return f"no ready marker {ready_marker} yet"
    return None
  files = [k for k, v in tree.items() if not v.is_dir]
  if not files:
    return "it holds no files yet"
  has_saved_model = any(name in tree for name in _SAVED_MODEL_FILES)
  variables = [k for k in tree if k.startswith("variables/")]
  if not has_saved_model and "variables/" not in tree and not variables:
    return None  # Not a SavedModel: listing stability is the only check.
  if not has_saved_model:
    return "no saved_model.pb yet"
  if "variables/" not in tree and not variables:
    return "no variables/ directory yet"
  contents = [k for k in variables if k != "variables/"]
  if not contents:
    return None  # A SavedModel without variables.
  if "variables/variables.index" not in tree:
    return "no variables/variables.index yet"
  shards: dict[int, set[int]] = {}
  for name in contents:
    match = _SHARD_RE.fullmatch(name)
    if match:
      shards.setdefault(int(match.group(2)), set()).add(int(match.group(1)))
  if not shards:
    return "no variables data shard yet"
  for count, present in shards.items():
    missing = set(range(count)) - present
    if missing:
      return (f"variables data shard {min(missing)} of {count} is missing")
  return None


def snapshot_of(tree: dict[str, fs_lib.FileStat]) -> Snapshot:
  return {k: (v.size, v.etag) for k, v in tree.items()}


class VersionReadiness:
  """Tells which version directories are complete. See the module doc.

  Thread-safe; FileSystemStoragePathSource calls it from its polling thread.
  """

  @dataclasses.dataclass(frozen=True)
  class Options:
    """VersionReadiness options.

    Attributes:
      ready_marker: the marker file name (--version_ready_marker); empty:
        judge by contents and listing stability.
      stability_seconds: the poll interval. A listing must be unchanged
        across it; <= 0 (no periodic polling): the stability check is off.
        None: FileSystemStoragePathSource fills in its poll interval.
      trust_mtime: whether entries older than stability_seconds (by the
        local clock) make a listing stable at first sight, by path. None:
        everywhere but on object stores (FileSystemStoragePathSource).
      clock: seconds since the epoch (a fake in tests).
    """

    ready_marker: str = ""
    stability_seconds: float | None = None
    trust_mtime: Callable[[str], bool] | None = None
    clock: Callable[[], float] = time.time

  def __init__(self, file_system: fs_lib.FileSystem,
               options: "VersionReadiness.Options | None" = None) -> None:
    self._fs = file_system
    self._options = options or VersionReadiness.Options()
    self._mu = threading.Lock()
    # Version paths found complete; they stay so while listed.
    self._complete: set[str] = set()  # guarded by self._mu
    # Version path -> its listing at the last poll, while incomplete.
    self._last: dict[str, Snapshot] = {}  # guarded by self._mu
    # Version paths whose wait was logged.
    self._waiting: set[str] = set()  # guarded by self._mu

  def forget_except(self, listed_paths: set[str], under: str) -> None:
    """Drops what is remembered of versions under `under` no longer listed.

    A version directory deleted and created again is checked anew.
    """
    prefix = under.rstrip("/") + "/"
    with self._mu:
      for paths in (self._complete, self._waiting):
        for path in [p for p in paths
                     if p.startswith(prefix) and p not in listed_paths]:
          paths.discard(path)
      for path in [p for p in self._last
                   if p.startswith(prefix) and p not in listed_paths]:
        del self._last[path]

  def is_complete(self, servable_name: str, version: int, path: str) -> bool:
    """Whether the version at `path` may be aspired now.

    Raises:
      ServingError: the directory cannot be listed (a storage fault).
    """
    with self._mu:
      if path in self._complete:
        return True
    tree = self._fs.list_tree(path)
    opts = self._options
    reason = incomplete_reason(tree, opts.ready_marker)
    if reason is None and not opts.ready_marker and (
        (opts.stability_seconds or 0) > 0):
      reason = self._unstable_reason(path, tree)
    with self._mu:
      if reason is None:
        self._complete.add(path)
        self._last.pop(path, None)
        if path in self._waiting:
          logging.info(
              "Version %d of servable %s at %s is complete; aspiring it",
              version, servable_name, path)
        return True
      if path not in self._waiting:
        self._waiting.add(path)
        logging.info(
            "Version %d of servable %s at %s is not complete (%s); waiting "
            "for its upload to finish before aspiring it", version,
            servable_name, path, reason)
      return False

  def _unstable_reason(self, path: str,
                       tree: dict[str, fs_lib.FileStat]) -> str | None:
    opts = self._options
    snapshot = snapshot_of(tree)
    with self._mu:
      previous = self._last.get(path)
      self._last[path] = snapshot
    if previous == snapshot:
      return None
    if previous is None:
      if opts.trust_mtime is None or opts.trust_mtime(path):
        mtimes = [s.mtime for s in tree.values()]
        if all(m is not None for m in mtimes) and (
            opts.clock() - max(mtimes) >= opts.stability_seconds):
          return None
      return "its files are new; checking that they stay unchanged for a poll"
    return "its files changed since the last poll"
