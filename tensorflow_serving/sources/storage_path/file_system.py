"""FileSystem: the few file operations the storage-path source needs.

Upstream reads version directories through TensorFlow's Env, so every file
system TensorFlow supports (local, gs://, s3://, hdfs://, ...) works.
GFileFileSystem does the same through tf.io.gfile, imported only when first
used; LocalFileSystem uses the os module and lets tests and TensorFlow-free
deployments (the hashmap servable) run without importing TensorFlow. Object
stores have their own implementations (s3_file_system, gcs_file_system), and
file_system_registry picks one by the path's scheme.
Errors are ServingErrors.

Beyond upstream's listing and reading, a FileSystem can describe a whole
version directory (list_tree: every file with its size and a change token),
which the upload-complete guard compares across polls and the model cache
checks a download against, and can copy one file to local disk
(download_file), streamed, so a multi-GB file never sits in memory.
"""

import abc
import dataclasses
import os
import shutil
from typing import Any

from tensorflow_serving.util import status


@dataclasses.dataclass(frozen=True)
class FileStat:
  """What list_tree() reports about one entry of a directory tree.

  Attributes:
    size: bytes (0 for a directory).
    mtime: last modification, seconds since the epoch (None if unknown).
    etag: a token that changes whenever the content does (an object store's
      ETag or generation; "" where the file system has none).
    is_dir: a directory (local file systems, or an object store's
      "dir/" placeholder or a prefix implied by deeper keys).
  """

  size: int
  mtime: float | None = None
  etag: str = ""
  is_dir: bool = False


def join(base: str, child: str) -> str:
  """base + "/" + child, for local paths and URLs alike."""
  return base.rstrip("/") + "/" + child


class FileSystem(abc.ABC):
  """Existence checks, directory listings and whole-file reads."""

  @abc.abstractmethod
  def exists(self, path: str) -> bool:
    """Whether `path` exists (file or directory)."""

  @abc.abstractmethod
  def list_children(self, path: str) -> list[str]:
    """Names of the entries directly under directory `path`.

    Raises:
      ServingError: if the directory cannot be listed.
    """

  @abc.abstractmethod
  def read_file(self, path: str) -> bytes:
    """The contents of file `path`.

    Raises:
      ServingError: NOT_FOUND if it does not exist; another code otherwise.
    """

  @abc.abstractmethod
  def list_tree(self, path: str) -> dict[str, FileStat]:
    """Every file and directory under `path`, by path relative to it.

    Directories are keyed with a trailing "/" ("variables/"); files without
    one ("variables/variables.index"). An empty dict for an empty or missing
    directory.

    Raises:
      ServingError: if the tree cannot be listed.
    """

  @abc.abstractmethod
  def download_file(self, path: str, local_path: str, etag: str = "") -> None:
    """Copies file `path` to `local_path` (created or replaced), streamed.

    `etag` (from list_tree) pins the copy to that content where the store
    can: a file replaced since fails with ABORTED.

    Raises:
      ServingError: NOT_FOUND if it vanished; another code otherwise.
    """


def _os_error(path: str, error: OSError) -> status.ServingError:
  reason = error.strerror or str(error)
  if isinstance(error, FileNotFoundError):
    return status.not_found(f"{path}; {reason}")
  if isinstance(error, PermissionError):
    return status.ServingError(status.Code.PERMISSION_DENIED,
                               f"{path}; {reason}")
  return status.unknown(f"{path}; {reason}")


class LocalFileSystem(FileSystem):
  """The local file system, through the os module."""

  def exists(self, path: str) -> bool:
    return os.path.exists(path)

  def list_children(self, path: str) -> list[str]:
    try:
      return os.listdir(path)
    except OSError as e:
      raise _os_error(path, e) from e

  def read_file(self, path: str) -> bytes:
    try:
      with open(path, "rb") as f:
        return f.read()
    except OSError as e:
      raise _os_error(path, e) from e

  def list_tree(self, path: str) -> dict[str, FileStat]:
    tree = {}
    errors = []
    for root, dirs, files in os.walk(path, onerror=errors.append):
      rel_root = os.path.relpath(root, path)
      prefix = "" if rel_root == "." else rel_root.replace(os.sep, "/") + "/"
      for name in dirs + files:
        full = os.path.join(root, name)
        try:
          st = os.stat(full)
        except FileNotFoundError:
          continue  # Removed while we walked: the next listing tells.
        except OSError as e:
          raise _os_error(full, e) from e
        is_dir = os.path.isdir(full)
        key = prefix + name + ("/" if is_dir else "")
        tree[key] = FileStat(0 if is_dir else st.st_size, st.st_mtime,
                             str(st.st_mtime_ns), is_dir)
    for error in errors:
      if not isinstance(error, FileNotFoundError):
        raise _os_error(path, error)
    return tree

  def download_file(self, path: str, local_path: str, etag: str = "") -> None:
    del etag  # A local copy is checked against the listing by its caller.
    try:
      shutil.copyfile(path, local_path)
    except OSError as e:
      raise _os_error(path, e) from e


class GFileFileSystem(FileSystem):
  """Every file system TensorFlow supports, through tf.io.gfile."""

  def __init__(self) -> None:
    self._gfile: Any = None

  def _io(self) -> Any:
    if self._gfile is None:
      import tensorflow as tf  # pylint: disable=g-import-not-at-top
      self._gfile = tf.io.gfile
    return self._gfile

  def _error(self, path: str, error: Exception) -> status.ServingError:
    import tensorflow as tf  # pylint: disable=g-import-not-at-top
    if isinstance(error, tf.errors.OpError):
      return status.ServingError(status.Code(error.error_code),
                                 f"{path}; {error.message}")
    return status.unknown(f"{path}; {error}")

  def exists(self, path: str) -> bool:
    try:
      return bool(self._io().exists(path))
    except Exception as e:  # pylint: disable=broad-except
      raise self._error(path, e) from e

  def list_children(self, path: str) -> list[str]:
    try:
      return list(self._io().listdir(path))
    except Exception as e:  # pylint: disable=broad-except
      raise self._error(path, e) from e

  def read_file(self, path: str) -> bytes:
    try:
      with self._io().GFile(path, "rb") as f:
        return f.read()
    except Exception as e:  # pylint: disable=broad-except
      raise self._error(path, e) from e

  def list_tree(self, path: str) -> dict[str, FileStat]:
    gfile = self._io()
    tree = {}
    try:
      if not gfile.isdir(path):
        return tree
      for root, dirs, files in gfile.walk(path):
        rel_root = root[len(path.rstrip("/")):].strip("/")
        prefix = rel_root + "/" if rel_root else ""
        for name in dirs:
          name = name.rstrip("/")
          st = gfile.stat(join(root, name))
          tree[prefix + name + "/"] = FileStat(0, st.mtime_nsec / 1e9,
                                               str(st.mtime_nsec), True)
        for name in files:
          st = gfile.stat(join(root, name))
          tree[prefix + name] = FileStat(st.length, st.mtime_nsec / 1e9,
                                         str(st.mtime_nsec))
    except Exception as e:  # pylint: disable=broad-except
      raise self._error(path, e) from e
    return tree

  def download_file(self, path: str, local_path: str, etag: str = "") -> None:
    del etag  # tf.io.gfile cannot pin a read to a version.
    try:
      self._io().copy(path, local_path, overwrite=True)
    except Exception as e:  # pylint: disable=broad-except
      raise self._error(path, e) from e
