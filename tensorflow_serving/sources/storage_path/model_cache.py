"""ModelCache: local copies of versions that live on an object store.

TensorFlow loads SavedModels from local disk only (its s3:// plugin is gone
and its gs:// cannot reach emulators), so a version found on s3:// or gs://
is copied here first (not in upstream). download() runs on a load thread, as
part of the version's load, so the manager's load retries and the transient
retry on later polls apply to downloads too; remove() runs when the version
unloads (or its load fails).

A copy is made in steps that make a torn copy impossible to load:
  1. list the version (every file with its size and ETag/generation);
  2. download every file into a staging directory, streamed to disk, at most
     Options.download_threads files at a time (a large S3 object is itself
     fetched in parallel ranged parts): memory stays flat, whatever the size;
  3. check each copied file's size against the listing, and list the
     version again: if anything changed meanwhile, the copy is discarded and
     the load fails with ABORTED (transient: it is retried);
  4. rename the staging directory to <process dir>/<model>/<version>.

Layout: Options.cache_dir (--model_cache_dir; default <temp dir>/
tensorflow_serving_model_cache) holds one directory per server process,
pid<PID>-<random>, removed by close(). Directories of processes that no
longer run are removed when a new process creates its own, so a crashed
server's copies do not pile up on a shared cache volume.
"""

import concurrent.futures
import dataclasses
import errno
import os
import shutil
import tempfile
import threading
import time

from absl import logging

from tensorflow_serving.core import servable_id as servable_id_lib
from tensorflow_serving.sources.storage_path import file_system as fs_lib
from tensorflow_serving.util import status

DEFAULT_CACHE_DIR_NAME = "tensorflow_serving_model_cache"
_PROCESS_DIR_PREFIX = "pid"


def default_cache_dir() -> str:
  """<the temp dir>/tensorflow_serving_model_cache."""
  return os.path.join(tempfile.gettempdir(), DEFAULT_CACHE_DIR_NAME)


def _pid_alive(pid: int) -> bool:
  try:
    os.kill(pid, 0)
  except ProcessLookupError:
    return False
  except PermissionError:
    return True
  return True


def _local_error(what: str, error: OSError) -> status.ServingError:
  if error.errno in (errno.ENOSPC, errno.EDQUOT):
    return status.resource_exhausted(f"{what}: {error}")
  return status.unknown(f"{what}: {error}")


class ModelCache:
  """Copies object-store versions to local disk. See the module docstring.

  Thread-safe: loads of different versions download concurrently.
  """

  @dataclasses.dataclass(frozen=True)
  class Options:
    """ModelCache options.

    Attributes:
      cache_dir: where copies go (--model_cache_dir); "" = default_cache_dir().
      download_threads: files downloaded at once per version
        (--storage_download_threads).
    """

    cache_dir: str = ""
    download_threads: int = 8

  def __init__(self, file_system: fs_lib.FileSystem,
               options: "ModelCache.Options | None" = None) -> None:
    self._fs = file_system
    self._options = options or ModelCache.Options()
    self._mu = threading.Lock()
    self._process_dir: str | None = None  # guarded by self._mu
    self._closed = False  # guarded by self._mu

  @property
  def cache_dir(self) -> str:
    return self._options.cache_dir or default_cache_dir()

  def _get_process_dir(self) -> str:
    with self._mu:
      if self._closed:
        raise status.cancelled("The model cache is closed")
      if self._process_dir is None:
        root = self.cache_dir
        try:
          os.makedirs(root, exist_ok=True)
          self._remove_stale_process_dirs(root)
          self._process_dir = tempfile.mkdtemp(
              prefix=f"{_PROCESS_DIR_PREFIX}{os.getpid()}-", dir=root)
        except OSError as e:
          raise _local_error(
              f"Cannot create the model cache under {root} (set "
              "--model_cache_dir to a writable directory)", e) from e
        logging.info("Model cache: copies of object-store models go to %s",
                     self._process_dir)
      return self._process_dir

  @staticmethod
  def _remove_stale_process_dirs(root: str) -> None:
    for name in os.listdir(root):
      if not name.startswith(_PROCESS_DIR_PREFIX):
        continue
      pid_text = name[len(_PROCESS_DIR_PREFIX):].split("-", 1)[0]
      if not pid_text.isdigit():
        continue
      pid = int(pid_text)
      # Our own pid in an old name: a previous process that had it (PIDs
      # repeat in containers) left it behind.
      if pid == os.getpid() or not _pid_alive(pid):
        logging.info("Model cache: removing %s, left by a server that no "
                     "longer runs", os.path.join(root, name))
        shutil.rmtree(os.path.join(root, name), ignore_errors=True)

  def download(self, servable_id: servable_id_lib.ServableId,
               remote_path: str) -> str:
    """Copies the version at remote_path; returns the local directory.

    Raises:
      ServingError: the store's error (UNAVAILABLE, DEADLINE_EXCEEDED,
        PERMISSION_DENIED ...); ABORTED if the version changed or vanished
        during the copy; RESOURCE_EXHAUSTED if the local disk is full.
    """
    process_dir = self._get_process_dir()
    start = time.monotonic()
    listing = self._fs.list_tree(remote_path)
    files = {k: v for k, v in listing.items() if not v.is_dir}
    if not files:
      raise status.aborted(
          f"{remote_path} holds no files any more (removed since it was "
          "listed?)")
    model_dir = os.path.join(process_dir, servable_id.name)
    try:
      os.makedirs(model_dir, exist_ok=True)
      staging = tempfile.mkdtemp(prefix=f"{servable_id.version}.partial-",
                                 dir=model_dir)
    except OSError as e:
      raise _local_error(f"Cannot write to the model cache {model_dir}",
                         e) from e
    try:
      self._copy_files(remote_path, files, listing, staging)
      again = self._fs.list_tree(remote_path)
      again_files = {k: (v.size, v.etag) for k, v in again.items()
                     if not v.is_dir}
      if again_files != {k: (v.size, v.etag) for k, v in files.items()}:
        raise status.aborted(
            f"{remote_path} changed while it was downloaded; the copy is "
            "discarded and the load will be retried")
      final = os.path.join(model_dir, str(servable_id.version))
      if os.path.exists(final):  # From an earlier attempt.
        shutil.rmtree(final, ignore_errors=True)
      os.rename(staging, final)
    except OSError as e:
      shutil.rmtree(staging, ignore_errors=True)
      raise _local_error(f"Cannot write the copy of {remote_path}", e) from e
    except BaseException:
      shutil.rmtree(staging, ignore_errors=True)
      raise
    size = sum(v.size for v in files.values())
    seconds = time.monotonic() - start
    logging.info(
        "Downloaded %s (%d files, %.1f MB) to %s in %.2f s (%.1f MB/s)",
        remote_path, len(files), size / 1e6, final, seconds,
        size / 1e6 / max(seconds, 1e-6))
    return final

  def _copy_files(self, remote_path: str, files: dict[str, fs_lib.FileStat],
                  listing: dict[str, fs_lib.FileStat], staging: str) -> None:
    for rel, stat in listing.items():
      if stat.is_dir:
        os.makedirs(os.path.join(staging, rel), exist_ok=True)
    for rel in files:
      os.makedirs(os.path.dirname(os.path.join(staging, rel)), exist_ok=True)

    def copy_one(rel: str) -> None:
      local = os.path.join(staging, rel)
      try:
        self._fs.download_file(fs_lib.join(remote_path, rel), local,
                               files[rel].etag)
      except status.ServingError as e:
        if e.code == status.Code.NOT_FOUND:
          raise status.aborted(
              f"{fs_lib.join(remote_path, rel)} vanished while the version "
              "was downloaded") from e
        raise
      got = os.path.getsize(local)
      if got != files[rel].size:
        raise status.aborted(
            f"Torn download of {fs_lib.join(remote_path, rel)}: {got} bytes "
            f"instead of {files[rel].size}")

    threads = max(1, self._options.download_threads)
    with concurrent.futures.ThreadPoolExecutor(
        max_workers=threads, thread_name_prefix="ModelCache_Download") as pool:
      futures = [pool.submit(copy_one, rel) for rel in sorted(files)]
      try:
        for future in concurrent.futures.as_completed(futures):
          future.result()
      except BaseException:
        for future in futures:
          future.cancel()
        raise

  def remove(self, local_path: str) -> None:
    """Deletes a copy (never raises: a leftover is logged, not fatal)."""
    def report(unused_fn, path, exc_info):
      logging.warning("Model cache: cannot remove %s: %s", path, exc_info[1])

    if os.path.exists(local_path):
      shutil.rmtree(local_path, onerror=report)
      logging.info("Model cache: removed %s", local_path)

  def close(self) -> None:
    """Removes this process's directory (after every model unloaded)."""
    with self._mu:
      self._closed = True
      process_dir, self._process_dir = self._process_dir, None
    if process_dir is not None:
      self.remove(process_dir)
