"""ObjectStoreFileSystemTest: what every object-store FileSystem test shares.

S3FileSystem and GcsFileSystem keep one contract (the FileSystem's, on
bucket/key URLs): missing buckets and keys are NOT_FOUND and an unreachable
store fails within the timeout with UNAVAILABLE or DEADLINE_EXCEEDED, after
which the same FileSystem reads again. This base class starts the backend's
emulator once per test class, seeds a bucket, gives every test an
environment of its own that points at the emulator, and holds those shared
tests; each backend's test subclasses it and adds what is its own
(credentials, endpoints, version tokens).

Import the module, not the class, so that the test loader does not collect
the abstract base itself.
"""

import contextlib
import os
import time
from typing import Callable, ContextManager
from unittest import mock

from absl.testing import absltest

from tensorflow_serving.sources.storage_path import file_system
from tensorflow_serving.util import status

BUCKET = "models-bucket"

# Seeded into BUCKET before the first test: a version directory, a file
# beside it, and an object large enough for multipart/streamed downloads.
OBJECTS = (("m/1/saved_model.pb", b"pb"),
           ("m/1/variables/variables.index", b"index"),
           ("m/README", b"hi"),
           ("big/blob", os.urandom(3 * 1024 * 1024 + 17)))


class ObjectStoreFileSystemTest(absltest.TestCase):
  """Subclasses set SCHEME and implement the hooks below."""

  SCHEME = ""  # "s3://", "gs://"

  # ------------------------------------------------------------------ hooks

  @classmethod
  def start_emulator(cls):
    """Starts and returns the backend's emulator (object_store_emulators)."""
    raise NotImplementedError

  @classmethod
  def seed(cls, objects: tuple[tuple[str, bytes], ...]) -> None:
    """Creates BUCKET on cls.emulator and uploads `objects` (key, data)."""
    raise NotImplementedError

  def clear_environment(self) -> None:
    """Removes the backend's variables the test process may have inherited."""
    raise NotImplementedError

  def fs(self, timeout_seconds: float = 10.0) -> file_system.FileSystem:
    """The FileSystem under test."""
    raise NotImplementedError

  # ---------------------------------------------------------------- fixture

  @classmethod
  def setUpClass(cls):
    super().setUpClass()
    cls.emulator = cls.start_emulator()
    cls.seed(OBJECTS)

  @classmethod
  def tearDownClass(cls):
    cls.emulator.stop()
    super().tearDownClass()

  def setUp(self):
    super().setUp()
    self.enter_context(mock.patch.dict(os.environ))
    self.clear_environment()
    os.environ.update(self.emulator.env())

  def url(self, key: str = "", bucket: str = BUCKET) -> str:
    return f"{self.SCHEME}{bucket}/{key}" if key else f"{self.SCHEME}{bucket}"

  # --------------------------------------------------------- shared checks

  def assert_fails_fast_then_recovers(
      self, fs: file_system.FileSystem,
      outage: Callable[[], ContextManager[None]], children: list[str]) -> None:
    """Lists m/ during `outage` (fails in < 10 s) and after it (`children`)."""
    self.assertCountEqual(fs.list_children(self.url("m")), children)
    with outage():
      start = time.monotonic()
      with self.assertRaises(status.ServingError) as cm:
        fs.list_children(self.url("m"))
      elapsed = time.monotonic() - start
    self.assertIn(cm.exception.code, (status.Code.UNAVAILABLE,
                                      status.Code.DEADLINE_EXCEEDED))
    # The client's attempts are bounded by the timeout, plus backoff.
    self.assertLess(elapsed, 10)
    self.assertCountEqual(fs.list_children(self.url("m")), children)

  @contextlib.contextmanager
  def stopped_emulator(self):
    """Connections are refused (the emulator keeps its objects on disk)."""
    self.emulator.stop()
    try:
      yield
    finally:
      self.emulator.start()

  @contextlib.contextmanager
  def frozen_emulator(self):
    """Connections are accepted but never answered."""
    self.emulator.pause()
    try:
      yield
    finally:
      self.emulator.resume()

  # ----------------------------------------------------------- shared tests

  def test_missing_things_are_not_found(self):
    fs = self.fs()
    self.assertFalse(fs.exists(self.url("m", bucket="no-such-bucket")))
    self.assertFalse(fs.exists(self.url("nothing")))
    with self.assertRaises(status.ServingError) as cm:
      fs.list_children(self.url("m", bucket="no-such-bucket"))
    self.assertEqual(cm.exception.code, status.Code.NOT_FOUND)
    with self.assertRaises(status.ServingError) as cm:
      fs.read_file(self.url("m/missing"))
    self.assertEqual(cm.exception.code, status.Code.NOT_FOUND)
    self.assertEqual(fs.list_tree(self.url("nothing")), {})
