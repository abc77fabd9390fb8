"""S3FileSystem: s3:// base paths on Amazon S3 and S3-compatible stores.

Upstream reads s3:// through TensorFlow's file system plugins, which have
been broken since TensorFlow 2.7 (tensorflow/serving#1963, #2062) and do
not load with TensorFlow 2.21. This FileSystem talks to S3 with boto3
instead, configured the way AWS users already configure their tools:

  AWS_ENDPOINT_URL_S3 / AWS_ENDPOINT_URL  another endpoint (MinIO, Ceph, an
                                          emulator); path-style addressing
  AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN, AWS_PROFILE,
  AWS_SHARED_CREDENTIALS_FILE, AWS_CONFIG_FILE, instance and web-identity
                                          credentials: boto3's usual chain
  AWS_REGION / AWS_DEFAULT_REGION         the region (default us-east-1)
  AWS_NO_SIGN_REQUEST=true                anonymous access to a public bucket
  AWS_CA_BUNDLE                           a CA bundle for the endpoint

and, because upstream users have them in their manifests, tensorflow-io's
S3_ENDPOINT (host[:port] or a URL), S3_USE_HTTPS (0: http) and
S3_VERIFY_SSL (0: do not verify), used when no AWS_ENDPOINT_URL* is set.

Every request is bounded by Options.timeout_seconds (connect and read) and
retried by botocore's "standard" mode (3 attempts) on throttling and 5xx.
Errors become ServingErrors: an unreachable or failing store UNAVAILABLE or
DEADLINE_EXCEEDED (transient: the load is retried later), a missing bucket or
key NOT_FOUND, missing credentials UNAUTHENTICATED and refused ones
PERMISSION_DENIED, each naming the URL and the variables to set. A file is
downloaded by s3transfer: streamed to disk, large objects in parallel ranged
parts pinned to one ETag (IfMatch), so memory stays flat.
"""

import dataclasses
import os
from typing import Any, Iterable

from absl import logging
import boto3
import botocore.config
import botocore.exceptions
import boto3.s3.transfer

from tensorflow_serving.sources.storage_path import file_system as fs_lib
from tensorflow_serving.sources.storage_path import object_store_file_system as object_store
from tensorflow_serving.util import status

SCHEME = "s3://"

_CREDENTIALS_HINT = (
    "set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (and AWS_SESSION_TOKEN "
    "for temporary credentials) or AWS_PROFILE, or AWS_NO_SIGN_REQUEST=true "
    "for a public bucket")
_NOT_FOUND_CODES = frozenset(["NoSuchBucket", "NoSuchKey", "404", "NotFound"])
_DENIED_CODES = frozenset([
    "AccessDenied", "InvalidAccessKeyId", "SignatureDoesNotMatch", "403",
    "ExpiredToken", "InvalidToken", "AllAccessDisabled", "AccountProblem"
])
_CHANGED_CODES = frozenset(["PreconditionFailed", "412"])


def endpoint_from_environment(
    environ: Any = os.environ) -> tuple[str | None, bool | str | None]:
  """The endpoint URL and `verify` argument boto3 should use.

  AWS_ENDPOINT_URL_S3 and AWS_ENDPOINT_URL are boto3's own (it reads them
  itself, so they are returned as None here); tensorflow-io's S3_ENDPOINT,
  S3_USE_HTTPS and S3_VERIFY_SSL are translated.
  """
  verify: bool | str | None = None
  if environ.get("S3_VERIFY_SSL", "").strip() == "0":
    verify = False
  if environ.get("AWS_ENDPOINT_URL_S3") or environ.get("AWS_ENDPOINT_URL"):
    return None, verify
  endpoint = environ.get("S3_ENDPOINT", "").strip()
  if not endpoint:
    return None, verify
  if "://" not in endpoint:
    https = environ.get("S3_USE_HTTPS", "1").strip() != "0"
    endpoint = ("https://" if https else "http://") + endpoint
  return endpoint, verify


class S3FileSystem(object_store.ObjectStoreFileSystem):
  """s3://bucket/key paths through boto3. See the module docstring."""

  @dataclasses.dataclass(frozen=True)
  class Options:
    """S3FileSystem options.

    Attributes:
      timeout_seconds: connect and read timeout of each request
        (--storage_timeout_seconds).
      max_concurrency: parallel ranged GETs per large object.
    """

    timeout_seconds: float = 30.0
    max_concurrency: int = 4

  def __init__(self, options: "S3FileSystem.Options | None" = None) -> None:
    super().__init__()
    self._options = options or S3FileSystem.Options()

  # ----------------------------------------------------------------- client

  def _create_client(self, url: str) -> Any:
    endpoint, verify = endpoint_from_environment()
    custom_endpoint = bool(
        endpoint or os.environ.get("AWS_ENDPOINT_URL_S3") or
        os.environ.get("AWS_ENDPOINT_URL"))
    config_args: dict[str, Any] = dict(
        connect_timeout=self._options.timeout_seconds,
        read_timeout=self._options.timeout_seconds,
        retries={"max_attempts": 3, "mode": "standard"},
        max_pool_connections=32)
    if custom_endpoint:
      # MinIO, Ceph and emulators answer on one host name.
      config_args["s3"] = {"addressing_style": "path"}
    if object_store.env_flag(os.environ.get("AWS_NO_SIGN_REQUEST")):
      config_args["signature_version"] = botocore.UNSIGNED
    region = (os.environ.get("AWS_REGION") or
              os.environ.get("AWS_DEFAULT_REGION") or None)
    try:
      session = boto3.session.Session()
      region = region or session.region_name or "us-east-1"
      kwargs: dict[str, Any] = dict(
          region_name=region, config=botocore.config.Config(**config_args))
      if endpoint:
        kwargs["endpoint_url"] = endpoint
      if verify is not None:
        kwargs["verify"] = verify
      client = session.client("s3", **kwargs)
    except botocore.exceptions.ProfileNotFound as e:
      raise status.ServingError(
          status.Code.UNAUTHENTICATED,
          f"Cannot read {url}: {e}; set AWS_PROFILE to a profile of "
          "AWS_SHARED_CREDENTIALS_FILE / AWS_CONFIG_FILE, or unset it") from e
    except botocore.exceptions.BotoCoreError as e:
      raise status.invalid_argument(
          f"Cannot read {url}: the S3 client cannot be configured: {e}") from e
    logging.info("S3 client for %s: endpoint %s, region %s", url,
                 client.meta.endpoint_url, region)
    return client

  # ----------------------------------------------------------------- errors

  def _error(self, url: str, error: Exception) -> status.ServingError:
    """Maps a boto3/botocore/s3transfer failure to a ServingError."""
    if isinstance(error, status.ServingError):
      return error
    if isinstance(error, (botocore.exceptions.NoCredentialsError,
                          botocore.exceptions.PartialCredentialsError)):
      return status.ServingError(
          status.Code.UNAUTHENTICATED,
          f"No AWS credentials to read {url}: {_CREDENTIALS_HINT}")
    if isinstance(error, botocore.exceptions.ClientError):
      info = error.response.get("Error", {})
      code = str(info.get("Code", ""))
      http = str(error.response.get("ResponseMetadata", {}).get(
          "HTTPStatusCode", ""))
      message = info.get("Message") or code
      if code in _NOT_FOUND_CODES or http == "404":
        return status.not_found(f"{url} not found: {message}")
      if code in _DENIED_CODES or http == "403":
        return status.ServingError(
            status.Code.PERMISSION_DENIED,
            f"Access to {url} denied ({code}: {message}); check the "
            f"credentials: {_CREDENTIALS_HINT}")
      if code in _CHANGED_CODES or http == "412":
        return status.aborted(f"{url} changed while it was read: {message}")
      if http.startswith("5") or code in ("SlowDown", "RequestTimeout",
                                          "ServiceUnavailable", "Throttling"):
        return status.unavailable(f"S3 failed for {url}: {code}: {message}")
      return status.unknown(f"S3 failed for {url}: {code}: {message}")
    if isinstance(error, (botocore.exceptions.ConnectTimeoutError,
                          botocore.exceptions.ReadTimeoutError)):
      return status.deadline_exceeded(
          f"S3 did not answer for {url} within "
          f"{self._options.timeout_seconds:g} s: {error}")
    if isinstance(error, (botocore.exceptions.EndpointConnectionError,
                          botocore.exceptions.ConnectionError,
                          botocore.exceptions.HTTPClientError,
                          botocore.exceptions.IncompleteReadError,
                          boto3.exceptions.RetriesExceededError,
                          ConnectionError, TimeoutError)):
      return status.unavailable(f"S3 unreachable for {url}: {error}")
    if isinstance(error, OSError):
      return status.unknown(f"Cannot write the copy of {url}: {error}")
    return status.unknown(f"S3 failed for {url}: {type(error).__name__}: "
                          f"{error}")

  # ------------------------------------------------------------ the probes

  def _bucket_exists(self, client: Any, bucket: str) -> bool:
    client.head_bucket(Bucket=bucket)
    return True  # A missing bucket raised a 404 ClientError.

  def _object_exists(self, client: Any, bucket: str, key: str) -> bool:
    try:
      client.head_object(Bucket=bucket, Key=key)
      return True
    except botocore.exceptions.ClientError as e:
      if self._error(key, e).code != status.Code.NOT_FOUND:
        raise  # _call maps it, naming the whole URL.
      return False

  def _prefix_exists(self, client: Any, bucket: str, prefix: str) -> bool:
    page = client.list_objects_v2(Bucket=bucket, Prefix=prefix, MaxKeys=1)
    return page.get("KeyCount", 0) > 0

  def _list_objects(self, client: Any, bucket: str,
                    prefix: str) -> Iterable[tuple[str, fs_lib.FileStat]]:
    paginator = client.get_paginator("list_objects_v2")
    for page in paginator.paginate(Bucket=bucket, Prefix=prefix):
      for obj in page.get("Contents", []):
        yield obj["Key"], fs_lib.FileStat(obj["Size"],
                                          obj["LastModified"].timestamp(),
                                          obj.get("ETag", "").strip('"'))

  # ----------------------------------------------------------- FileSystem

  def list_children(self, path: str) -> list[str]:
    bucket, key = object_store.split_url(path)
    prefix = object_store.dir_prefix(key)

    def listing(client) -> list[str]:
      children = []
      paginator = client.get_paginator("list_objects_v2")
      for page in paginator.paginate(Bucket=bucket, Prefix=prefix,
                                     Delimiter="/"):
        for common in page.get("CommonPrefixes", []):
          children.append(common["Prefix"][len(prefix):].rstrip("/"))
        for obj in page.get("Contents", []):
          name = obj["Key"][len(prefix):]
          if name:
            children.append(name)
      return children

    return self._call(path, listing)

  def read_file(self, path: str) -> bytes:
    bucket, key = object_store.split_url(path)
    return self._call(
        path, lambda client: client.get_object(Bucket=bucket, Key=key)["Body"]
        .read())

  def download_file(self, path: str, local_path: str, etag: str = "") -> None:
    # s3transfer pins a multipart download's parts to the ETag it saw; the
    # model cache compares the whole version with its listing afterwards.
    del etag
    bucket, key = object_store.split_url(path)
    config = boto3.s3.transfer.TransferConfig(
        multipart_threshold=64 * 1024 * 1024,
        multipart_chunksize=16 * 1024 * 1024,
        max_concurrency=self._options.max_concurrency,
        use_threads=self._options.max_concurrency > 1)
    self._call(
        path, lambda client: client.download_file(
            bucket, key, local_path, Config=config))
