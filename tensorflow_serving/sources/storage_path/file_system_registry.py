"""SchemeFileSystem: one FileSystem per URL scheme, as TensorFlow's Env does.

s3:// goes to S3FileSystem (boto3) and gs:// to GcsFileSystem
(google-cloud-storage), each created on first use so that a server with
local models never imports either library; every other path (local ones,
hdfs://, ...) goes through tf.io.gfile (GFileFileSystem), as before.

Object-store paths are "remote": TensorFlow cannot open them, so a version
found there is copied to a local cache before it is loaded
(needs_local_copy(), model_cache).
"""

import dataclasses
import threading

from tensorflow_serving.sources.storage_path import file_system as fs_lib

_REMOTE_SCHEMES = ("s3://", "gs://")


def needs_local_copy(path: str) -> bool:
  """Whether `path` is on an object store that TensorFlow cannot read."""
  return path.startswith(_REMOTE_SCHEMES)


class SchemeFileSystem(fs_lib.FileSystem):
  """Dispatches each call by the path's scheme. See the module docstring."""

  @dataclasses.dataclass(frozen=True)
  class Options:
    """Options of the object-store file systems.

    Attributes:
      timeout_seconds: connect and read timeout of each object-store request
        (--storage_timeout_seconds).
      max_concurrency_per_file: parallel ranged GETs of one large S3 object.
      local: the file system of every other path (None: tf.io.gfile).
    """

    timeout_seconds: float = 30.0
    max_concurrency_per_file: int = 4
    local: fs_lib.FileSystem | None = None

  def __init__(self,
               options: "SchemeFileSystem.Options | None" = None) -> None:
    self._options = options or SchemeFileSystem.Options()
    self._mu = threading.Lock()
    self._by_scheme: dict[str, fs_lib.FileSystem] = {}  # guarded by self._mu

  def file_system_for(self, path: str) -> fs_lib.FileSystem:
    """The FileSystem that handles `path`."""
    if path.startswith("s3://"):
      scheme = "s3"
    elif path.startswith("gs://"):
      scheme = "gs"
    else:
      scheme = ""
    with self._mu:
      fs = self._by_scheme.get(scheme)
      if fs is None:
        fs = self._create(scheme)
        self._by_scheme[scheme] = fs
      return fs

  def _create(self, scheme: str) -> fs_lib.FileSystem:
    # pylint: disable=g-import-not-at-top
    opts = self._options
    if scheme == "s3":
      from tensorflow_serving.sources.storage_path import s3_file_system
      return s3_file_system.S3FileSystem(
          s3_file_system.S3FileSystem.Options(
              timeout_seconds=opts.timeout_seconds,
              max_concurrency=opts.max_concurrency_per_file))
    if scheme == "gs":
      from tensorflow_serving.sources.storage_path import gcs_file_system
      return gcs_file_system.GcsFileSystem(
          gcs_file_system.GcsFileSystem.Options(
              timeout_seconds=opts.timeout_seconds))
    return opts.local or fs_lib.GFileFileSystem()

  def exists(self, path: str) -> bool:
    return self.file_system_for(path).exists(path)

  def list_children(self, path: str) -> list[str]:
    return self.file_system_for(path).list_children(path)

  def read_file(self, path: str) -> bytes:
    return self.file_system_for(path).read_file(path)

  def list_tree(self, path: str) -> dict[str, fs_lib.FileStat]:
    return self.file_system_for(path).list_tree(path)

  def download_file(self, path: str, local_path: str, etag: str = "") -> None:
    self.file_system_for(path).download_file(path, local_path, etag)
