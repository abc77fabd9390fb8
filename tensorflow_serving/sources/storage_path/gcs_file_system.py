"""GcsFileSystem: gs:// base paths on Google Cloud Storage and its emulators.

TensorFlow reads gs:// itself, but only from Google's real endpoints: it
cannot be pointed at an emulator or a private endpoint. This FileSystem uses
google-cloud-storage instead, configured as Google's tools are:

  STORAGE_EMULATOR_HOST            an emulator or other endpoint
                                   ("http://localhost:9023"); anonymous
  GOOGLE_APPLICATION_CREDENTIALS   a service-account (or other) key file;
                                   without it, Application Default
                                   Credentials (gcloud's, workload identity,
                                   the metadata server)
  GOOGLE_CLOUD_PROJECT             the project (only billed requests need it)
  GS_NO_SIGN_REQUEST=true          anonymous access to a public bucket

Every request is bounded by Options.timeout_seconds (connect and read), and
google-cloud-storage's retries of 429/5xx and broken connections stop after
the same time. Errors become ServingErrors like S3FileSystem's: unreachable
UNAVAILABLE / DEADLINE_EXCEEDED, missing NOT_FOUND, no credentials
UNAUTHENTICATED and refused ones PERMISSION_DENIED, naming the URL and the
variables to set. download_file streams the object to disk pinned to the
generation that was listed (a replaced object fails, ABORTED) and checks its
CRC32C/MD5 when the server sends one.
"""

import dataclasses
import os
from typing import Any, Iterable

from absl import logging
import google.api_core.exceptions as api_exceptions
import google.auth
import google.auth.exceptions
from google.cloud import storage
from google.cloud.storage import retry as storage_retry

from tensorflow_serving.sources.storage_path import file_system as fs_lib
from tensorflow_serving.sources.storage_path import object_store_file_system as object_store
from tensorflow_serving.util import status

SCHEME = "gs://"

_CREDENTIALS_HINT = (
    "set GOOGLE_APPLICATION_CREDENTIALS to a service-account key file (or "
    "run where Application Default Credentials exist), STORAGE_EMULATOR_HOST "
    "for an emulator, or GS_NO_SIGN_REQUEST=true for a public bucket")


class GcsFileSystem(object_store.ObjectStoreFileSystem):
  """gs://bucket/object paths through google-cloud-storage."""

  @dataclasses.dataclass(frozen=True)
  class Options:
    """GcsFileSystem options.

    Attributes:
      timeout_seconds: connect and read timeout of each request, and the
        bound of its retries (--storage_timeout_seconds).
    """

    timeout_seconds: float = 30.0

  def __init__(self, options: "GcsFileSystem.Options | None" = None) -> None:
    super().__init__()
    self._options = options or GcsFileSystem.Options()
    self._retry = storage_retry.DEFAULT_RETRY.with_timeout(
        self._options.timeout_seconds)
    self._timeout = (self._options.timeout_seconds,
                     self._options.timeout_seconds)

  # ----------------------------------------------------------------- client

  def _create_client(self, url: str) -> Any:
    project = os.environ.get("GOOGLE_CLOUD_PROJECT") or None
    if os.environ.get("STORAGE_EMULATOR_HOST"):
      logging.info("GCS client for %s: emulator at %s", url,
                   os.environ["STORAGE_EMULATOR_HOST"])
      return storage.Client(project=project or "tensorflow-serving")
    if object_store.env_flag(os.environ.get("GS_NO_SIGN_REQUEST")):
      logging.info("GCS client for %s: anonymous", url)
      return storage.Client.create_anonymous_client()
    try:
      credentials, default_project = google.auth.default(
          scopes=["https://www.googleapis.com/auth/devstorage.read_only"])
    except google.auth.exceptions.GoogleAuthError as e:
      raise status.ServingError(
          status.Code.UNAUTHENTICATED,
          f"No Google Cloud credentials to read {url} ({e}): "
          f"{_CREDENTIALS_HINT}") from e
    logging.info("GCS client for %s: Application Default Credentials", url)
    return storage.Client(
        project=project or default_project or "tensorflow-serving",
        credentials=credentials)

  # ----------------------------------------------------------------- errors

  def _error(self, url: str, error: Exception) -> status.ServingError:
    """Maps a google-cloud-storage failure to a ServingError."""
    if isinstance(error, status.ServingError):
      return error
    if isinstance(error, api_exceptions.NotFound):
      return status.not_found(f"{url} not found: {error.message}")
    if isinstance(error, api_exceptions.PreconditionFailed):
      return status.aborted(f"{url} changed while it was read: "
                            f"{error.message}")
    if isinstance(error, (api_exceptions.Unauthorized,
                          google.auth.exceptions.GoogleAuthError)):
      return status.ServingError(
          status.Code.UNAUTHENTICATED,
          f"Credentials for {url} refused ({error}): {_CREDENTIALS_HINT}")
    if isinstance(error, api_exceptions.Forbidden):
      return status.ServingError(
          status.Code.PERMISSION_DENIED,
          f"Access to {url} denied ({error.message}); check the "
          f"credentials: {_CREDENTIALS_HINT}")
    if isinstance(error, api_exceptions.RetryError):
      return status.unavailable(
          f"GCS unreachable for {url} within "
          f"{self._options.timeout_seconds:g} s: {error.cause or error}")
    if isinstance(error, api_exceptions.GoogleAPICallError):
      code = getattr(error, "code", None) or 0
      if code >= 500 or code == 429:
        return status.unavailable(f"GCS failed for {url}: {error.message}")
      return status.unknown(f"GCS failed for {url}: {error.message}")
    name = type(error).__name__
    module = type(error).__module__
    if "Timeout" in name:
      return status.deadline_exceeded(
          f"GCS did not answer for {url} within "
          f"{self._options.timeout_seconds:g} s: {error}")
    if module.startswith(("requests", "urllib3")) or isinstance(
        error, (ConnectionError, TimeoutError)):
      return status.unavailable(f"GCS unreachable for {url}: {error}")
    if "DataCorruption" in name:
      return status.aborted(f"Download of {url} was corrupted: {error}")
    if isinstance(error, OSError):
      return status.unknown(f"Cannot write the copy of {url}: {error}")
    return status.unknown(f"GCS failed for {url}: {name}: {error}")

  def _list(self, client, bucket: str, prefix: str, **kwargs):
    return client.list_blobs(bucket, prefix=prefix, timeout=self._timeout,
                             retry=self._retry, **kwargs)

  # ------------------------------------------------------------ the probes

  def _bucket_exists(self, client: Any, bucket: str) -> bool:
    client.get_bucket(bucket, timeout=self._timeout, retry=self._retry)
    return True  # A missing bucket raised NotFound.

  def _object_exists(self, client: Any, bucket: str, key: str) -> bool:
    blob = client.bucket(bucket).get_blob(key, timeout=self._timeout,
                                          retry=self._retry)
    return blob is not None

  def _prefix_exists(self, client: Any, bucket: str, prefix: str) -> bool:
    return any(True for _ in self._list(client, bucket, prefix, max_results=1))

  def _list_objects(self, client: Any, bucket: str,
                    prefix: str) -> Iterable[tuple[str, fs_lib.FileStat]]:
    for blob in self._list(client, bucket, prefix):
      updated = blob.updated.timestamp() if blob.updated else None
      yield blob.name, fs_lib.FileStat(blob.size or 0, updated,
                                        str(blob.generation or blob.etag or ""))

  # ----------------------------------------------------------- FileSystem

  def list_children(self, path: str) -> list[str]:
    bucket, key = object_store.split_url(path)
    prefix = object_store.dir_prefix(key)

    def listing(client) -> list[str]:
      blobs = self._list(client, bucket, prefix, delimiter="/")
      children = [b.name[len(prefix):] for b in blobs
                  if b.name[len(prefix):]]
      children += [p[len(prefix):].rstrip("/") for p in blobs.prefixes]
      return children

    return self._call(path, listing)

  def read_file(self, path: str) -> bytes:
    bucket, key = object_store.split_url(path)
    return self._call(
        path, lambda client: client.bucket(bucket).blob(key).download_as_bytes(
            timeout=self._timeout, retry=self._retry))

  def download_file(self, path: str, local_path: str, etag: str = "") -> None:
    """Streams the object to local_path (`etag`: the listed generation)."""
    bucket, key = object_store.split_url(path)
    kwargs: dict[str, Any] = {}
    if etag.isdigit():
      kwargs["if_generation_match"] = int(etag)

    def download(client) -> None:
      client.bucket(bucket).blob(key).download_to_filename(
          local_path, timeout=self._timeout, retry=self._retry, **kwargs)

    self._call(path, download)
