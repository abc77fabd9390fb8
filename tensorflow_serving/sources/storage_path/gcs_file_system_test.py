"""Tests for GcsFileSystem against gcp-storage-emulator on a loopback port.

The emulator is real (the GCS JSON API over HTTP), and so are the failures:
a missing bucket, a stopped emulator, an unreadable credentials file.
"""

import os
import time

from absl.testing import absltest

from tensorflow_serving.sources.storage_path import gcs_file_system
from tensorflow_serving.sources.storage_path.test_util import object_store_emulators
from tensorflow_serving.util import status

_BUCKET = "models-bucket"


class GcsFileSystemTest(absltest.TestCase):

  @classmethod
  def setUpClass(cls):
    super().setUpClass()
    cls.emulator = object_store_emulators.GcsEmulator()
    cls.emulator.start()
    bucket = cls.emulator.client().create_bucket(_BUCKET)
    for key, data in (("m/1/saved_model.pb", b"pb"),
                      ("m/1/variables/variables.index", b"index"),
                      ("m/README", b"hi"),
                      ("big/blob", os.urandom(3 * 1024 * 1024 + 17))):
      bucket.blob(key).upload_from_string(data)

  @classmethod
  def tearDownClass(cls):
    cls.emulator.stop()
    super().tearDownClass()

  def setUp(self):
    super().setUp()
    saved = dict(os.environ)

    def restore():
      os.environ.clear()
      os.environ.update(saved)

    self.addCleanup(restore)
    for name in ("GOOGLE_APPLICATION_CREDENTIALS", "STORAGE_EMULATOR_HOST",
                 "GS_NO_SIGN_REQUEST"):
      os.environ.pop(name, None)
    os.environ.update(self.emulator.env())

  def fs(self, timeout_seconds=10.0):
    return gcs_file_system.GcsFileSystem(
        gcs_file_system.GcsFileSystem.Options(timeout_seconds=timeout_seconds))

  def test_listing_reading_downloading(self):
    fs = self.fs()
    base = f"gs://{_BUCKET}/m"
    self.assertTrue(fs.exists(base))
    self.assertTrue(fs.exists(base + "/README"))
    self.assertTrue(fs.exists(f"gs://{_BUCKET}"))
    self.assertFalse(fs.exists(f"gs://{_BUCKET}/nothing"))
    self.assertCountEqual(fs.list_children(base), ["1", "README"])
    tree = fs.list_tree(base + "/1")
    self.assertEqual(sorted(tree), ["saved_model.pb", "variables/",
                                    "variables/variables.index"])
    self.assertEqual(tree["variables/variables.index"].size, 5)
    self.assertTrue(tree["saved_model.pb"].etag)
    self.assertEqual(fs.read_file(base + "/1/saved_model.pb"), b"pb")
    local = os.path.join(self.create_tempdir().full_path, "blob")
    stat = fs.list_tree(f"gs://{_BUCKET}/big")["blob"]
    fs.download_file(f"gs://{_BUCKET}/big/blob", local, stat.etag)
    expected = self.emulator.client().bucket(_BUCKET).blob(
        "big/blob").download_as_bytes()
    with open(local, "rb") as f:
      self.assertEqual(f.read(), expected)

  def test_replaced_object_gets_a_new_change_token(self):
    # What the model cache relies on to see a version change under a copy.
    fs = self.fs()
    bucket = self.emulator.client().bucket(_BUCKET)
    bucket.blob("m2/file").upload_from_string(b"old")
    before = fs.list_tree(f"gs://{_BUCKET}/m2")["file"]
    bucket.blob("m2/file").upload_from_string(b"new")
    after = fs.list_tree(f"gs://{_BUCKET}/m2")["file"]
    self.assertEqual(before.size, after.size)
    self.assertNotEqual(before.etag, after.etag)

  def test_missing_things_are_not_found(self):
    fs = self.fs()
    self.assertFalse(fs.exists("gs://no-such-bucket/m"))
    with self.assertRaises(status.ServingError) as cm:
      fs.list_children("gs://no-such-bucket/m")
    self.assertEqual(cm.exception.code, status.Code.NOT_FOUND)
    with self.assertRaises(status.ServingError) as cm:
      fs.read_file(f"gs://{_BUCKET}/m/missing")
    self.assertEqual(cm.exception.code, status.Code.NOT_FOUND)

  def test_bad_credentials_file_names_url_and_variable(self):
    del os.environ["STORAGE_EMULATOR_HOST"]
    os.environ["GOOGLE_APPLICATION_CREDENTIALS"] = "/nonexistent/key.json"
    with self.assertRaises(status.ServingError) as cm:
      self.fs().list_children(f"gs://{_BUCKET}/m")
    self.assertEqual(cm.exception.code, status.Code.UNAUTHENTICATED)
    self.assertIn(f"gs://{_BUCKET}/m", cm.exception.message)
    self.assertIn("GOOGLE_APPLICATION_CREDENTIALS", cm.exception.message)

  def test_stopped_emulator_is_unavailable_then_recovers(self):
    fs = self.fs(timeout_seconds=1)
    self.assertCountEqual(fs.list_children(f"gs://{_BUCKET}/m"),
                          ["1", "README"])
    self.emulator.stop()
    try:
      start = time.monotonic()
      with self.assertRaises(status.ServingError) as cm:
        fs.list_children(f"gs://{_BUCKET}/m")
      elapsed = time.monotonic() - start
    finally:
      self.emulator.start()
    self.assertIn(cm.exception.code, (status.Code.UNAVAILABLE,
                                      status.Code.DEADLINE_EXCEEDED))
    self.assertLess(elapsed, 10)
    # Objects are on the emulator's disk: all there after the restart.
    self.assertCountEqual(fs.list_children(f"gs://{_BUCKET}/m"),
                          ["1", "README"])


if __name__ == "__main__":
  absltest.main()
