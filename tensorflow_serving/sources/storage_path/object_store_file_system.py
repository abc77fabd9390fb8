"""ObjectStoreFileSystem: what S3FileSystem and GcsFileSystem have in common.

An object store has buckets of keys, not directories: "bucket/m/1/x" is one
key, and "m/1/" is a directory only because keys start with it (or because a
tool left an empty "m/1/" placeholder object). This base class turns that
into the FileSystem contract once, so that each backend only says how to
reach its store:

  _create_client   the client library's client, made on first use (so that
                   a server with no object-store paths never configures one)
  _error           the library's exception -> a ServingError naming the URL
  _bucket_exists, _object_exists, _prefix_exists
                   the three probes exists() needs
  _list_objects    every key under a prefix with its FileStat (list_tree)

list_children, read_file and download_file stay with the backends: their
listings, reads and streamed, version-pinned downloads differ in substance.
Every call on the client goes through _call, which maps its errors.
"""

import abc
import threading
from typing import Any, Callable, Iterable, TypeVar

from tensorflow_serving.sources.storage_path import file_system as fs_lib
from tensorflow_serving.util import status

_T = TypeVar("_T")


def env_flag(value: str | None) -> bool:
  """Whether an environment variable such as AWS_NO_SIGN_REQUEST is on."""
  return (value or "").strip().lower() in ("1", "true", "yes", "on")


def split_url(path: str) -> tuple[str, str]:
  """"s3://bucket/a/b" or "gs://bucket/a/b" -> ("bucket", "a/b")."""
  _, _, rest = path.partition("://")
  bucket, _, key = rest.partition("/")
  return bucket, key


def dir_prefix(key: str) -> str:
  """The prefix of every key below "directory" `key` ("a/b" -> "a/b/")."""
  key = key.strip("/")
  return key + "/" if key else ""


class ObjectStoreFileSystem(fs_lib.FileSystem):
  """A FileSystem over bucket/key URLs, with one lazily created client.

  Thread-safe: the client is created once under a lock, and the client
  libraries (boto3 clients, google-cloud-storage clients) may be shared
  between threads.
  """

  def __init__(self) -> None:
    self._mu = threading.Lock()
    self._client: Any = None  # guarded by self._mu; created on first use

  # ------------------------------------------------------------- backends

  @abc.abstractmethod
  def _create_client(self, url: str) -> Any:
    """The store's client, configured from the environment.

    Raises:
      ServingError: UNAUTHENTICATED or INVALID_ARGUMENT, naming `url` (the
        first path read) and the variables to set.
    """

  @abc.abstractmethod
  def _error(self, url: str, error: Exception) -> status.ServingError:
    """Maps a failure of the client library on `url` to a ServingError."""

  @abc.abstractmethod
  def _bucket_exists(self, client: Any, bucket: str) -> bool:
    """Whether `bucket` exists (a missing one may raise NOT_FOUND instead)."""

  @abc.abstractmethod
  def _object_exists(self, client: Any, bucket: str, key: str) -> bool:
    """Whether an object with exactly this key exists."""

  @abc.abstractmethod
  def _prefix_exists(self, client: Any, bucket: str, prefix: str) -> bool:
    """Whether any key starts with `prefix` (a "directory")."""

  @abc.abstractmethod
  def _list_objects(self, client: Any, bucket: str,
                    prefix: str) -> Iterable[tuple[str, fs_lib.FileStat]]:
    """Every key under `prefix` (recursively) with its size and change token."""

  # ---------------------------------------------------------------- client

  def _get_client(self, url: str) -> Any:
    with self._mu:
      if self._client is None:
        self._client = self._create_client(url)
      return self._client

  def _call(self, url: str, fn: Callable[[Any], _T]) -> _T:
    """fn(client), with any failure turned into a ServingError on `url`."""
    try:
      return fn(self._get_client(url))
    except Exception as e:  # pylint: disable=broad-except
      raise self._error(url, e) from e

  # ----------------------------------------------------------- FileSystem

  def exists(self, path: str) -> bool:
    bucket, key = split_url(path)

    def check(client: Any) -> bool:
      if not key.strip("/"):
        return self._bucket_exists(client, bucket)
      if not key.endswith("/") and self._object_exists(client, bucket, key):
        return True
      return self._prefix_exists(client, bucket, dir_prefix(key))

    try:
      return self._call(path, check)
    except status.ServingError as e:
      if e.code == status.Code.NOT_FOUND:  # No such bucket (yet).
        return False
      raise

  def list_tree(self, path: str) -> dict[str, fs_lib.FileStat]:
    bucket, key = split_url(path)
    prefix = dir_prefix(key)

    def listing(client: Any) -> dict[str, fs_lib.FileStat]:
      tree: dict[str, fs_lib.FileStat] = {}
      for name, stat in self._list_objects(client, bucket, prefix):
        rel = name[len(prefix):]
        if not rel:
          continue
        # Deeper keys imply their directories; a placeholder "d/" is one.
        parts = rel.split("/")
        for i in range(1, len(parts)):
          tree.setdefault("/".join(parts[:i]) + "/",
                          fs_lib.FileStat(0, is_dir=True))
        if not rel.endswith("/"):
          tree[rel] = stat
      return tree

    try:
      return self._call(path, listing)
    except status.ServingError as e:
      if e.code == status.Code.NOT_FOUND:
        return {}
      raise
