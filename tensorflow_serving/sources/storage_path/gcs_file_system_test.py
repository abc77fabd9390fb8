"""Tests for GcsFileSystem against gcp-storage-emulator on a loopback port.

The emulator is real (the GCS JSON API over HTTP), and so are the failures:
a missing bucket, a stopped emulator, an unreadable credentials file. The
tests every object store shares are in object_store_file_system_test_base.
"""

import os

from absl.testing import absltest

from tensorflow_serving.sources.storage_path import gcs_file_system
from tensorflow_serving.sources.storage_path.test_util import object_store_emulators
from tensorflow_serving.sources.storage_path.test_util import object_store_file_system_test_base as base
from tensorflow_serving.util import status


class GcsFileSystemTest(base.ObjectStoreFileSystemTest):

  SCHEME = "gs://"

  @classmethod
  def start_emulator(cls):
    emulator = object_store_emulators.GcsEmulator()
    emulator.start()
    return emulator

  @classmethod
  def seed(cls, objects):
    bucket = cls.emulator.client().create_bucket(base.BUCKET)
    for key, data in objects:
      bucket.blob(key).upload_from_string(data)

  def clear_environment(self):
    for name in ("GOOGLE_APPLICATION_CREDENTIALS", "STORAGE_EMULATOR_HOST",
                 "GS_NO_SIGN_REQUEST"):
      os.environ.pop(name, None)

  def fs(self, timeout_seconds=10.0):
    return gcs_file_system.GcsFileSystem(
        gcs_file_system.GcsFileSystem.Options(timeout_seconds=timeout_seconds))

  def test_listing_reading_downloading(self):
    fs = self.fs()
    base_url = self.url("m")
    self.assertTrue(fs.exists(base_url))
    self.assertTrue(fs.exists(base_url + "/README"))
    self.assertTrue(fs.exists(self.url()))
    self.assertCountEqual(fs.list_children(base_url), ["1", "README"])
    tree = fs.list_tree(base_url + "/1")
    self.assertEqual(sorted(tree), ["saved_model.pb", "variables/",
                                    "variables/variables.index"])
    self.assertEqual(tree["variables/variables.index"].size, 5)
    self.assertTrue(tree["saved_model.pb"].etag)
    self.assertEqual(fs.read_file(base_url + "/1/saved_model.pb"), b"pb")
    local = os.path.join(self.create_tempdir().full_path, "blob")
    stat = fs.list_tree(self.url("big"))["blob"]
    fs.download_file(self.url("big/blob"), local, stat.etag)
    expected = self.emulator.client().bucket(base.BUCKET).blob(
        "big/blob").download_as_bytes()
    with open(local, "rb") as f:
      self.assertEqual(f.read(), expected)

  def test_replaced_object_gets_a_new_change_token(self):
    # What the model cache relies on to see a version change under a copy.
    fs = self.fs()
    bucket = self.emulator.client().bucket(base.BUCKET)
    bucket.blob("m2/file").upload_from_string(b"old")
    before = fs.list_tree(self.url("m2"))["file"]
    bucket.blob("m2/file").upload_from_string(b"new")
    after = fs.list_tree(self.url("m2"))["file"]
    self.assertEqual(before.size, after.size)
    self.assertNotEqual(before.etag, after.etag)

  def test_bad_credentials_file_names_url_and_variable(self):
    del os.environ["STORAGE_EMULATOR_HOST"]
    os.environ["GOOGLE_APPLICATION_CREDENTIALS"] = "/nonexistent/key.json"
    with self.assertRaises(status.ServingError) as cm:
      self.fs().list_children(self.url("m"))
    self.assertEqual(cm.exception.code, status.Code.UNAUTHENTICATED)
    self.assertIn(self.url("m"), cm.exception.message)
    self.assertIn("GOOGLE_APPLICATION_CREDENTIALS", cm.exception.message)

  def test_stopped_emulator_is_unavailable_then_recovers(self):
    # Objects are on the emulator's disk: all there after the restart.
    self.assert_fails_fast_then_recovers(
        self.fs(timeout_seconds=1), self.stopped_emulator, ["1", "README"])


if __name__ == "__main__":
  absltest.main()
