"""Tests for S3FileSystem against moto's S3 server on a loopback port.

The emulator is real (moto's server, the S3 REST API over HTTP); so are the
failures: a missing bucket, missing credentials, an unknown profile, a
frozen server. The tests every object store shares are in
object_store_file_system_test_base.
"""

import os

from absl.testing import absltest

from tensorflow_serving.sources.storage_path import s3_file_system
from tensorflow_serving.sources.storage_path.test_util import object_store_emulators
from tensorflow_serving.sources.storage_path.test_util import object_store_file_system_test_base as base
from tensorflow_serving.util import status


class S3FileSystemTest(base.ObjectStoreFileSystemTest):

  SCHEME = "s3://"

  @classmethod
  def start_emulator(cls):
    emulator = object_store_emulators.S3Emulator()
    emulator.start()
    return emulator

  @classmethod
  def seed(cls, objects):
    client = cls.emulator.client()
    client.create_bucket(Bucket=base.BUCKET)
    for key, data in objects + (("m/2/", b""),):  # A "directory" placeholder.
      client.put_object(Bucket=base.BUCKET, Key=key, Body=data)
    client.put_object_acl(Bucket=base.BUCKET, Key="m/README",
                          ACL="public-read")

  def clear_environment(self):
    for name in list(os.environ):
      if name.startswith(("AWS_", "S3_")):
        del os.environ[name]

  def fs(self, timeout_seconds=10.0):
    return s3_file_system.S3FileSystem(
        s3_file_system.S3FileSystem.Options(timeout_seconds=timeout_seconds))

  def test_listing_reading_downloading(self):
    fs = self.fs()
    base_url = self.url("m")
    self.assertTrue(fs.exists(base_url))
    self.assertTrue(fs.exists(base_url + "/"))
    self.assertTrue(fs.exists(base_url + "/README"))
    self.assertTrue(fs.exists(self.url()))
    self.assertFalse(fs.exists(self.url("m/1/saved")))  # Not a prefix.
    self.assertCountEqual(fs.list_children(base_url), ["1", "2", "README"])
    self.assertCountEqual(fs.list_children(base_url + "/1"),
                          ["saved_model.pb", "variables"])
    tree = fs.list_tree(base_url + "/1")
    self.assertEqual(sorted(tree), ["saved_model.pb", "variables/",
                                    "variables/variables.index"])
    self.assertEqual(tree["variables/variables.index"].size, 5)
    self.assertTrue(tree["variables/"].is_dir)
    self.assertTrue(tree["saved_model.pb"].etag)
    self.assertIsNotNone(tree["saved_model.pb"].mtime)
    self.assertEqual(fs.read_file(base_url + "/1/saved_model.pb"), b"pb")
    local = os.path.join(self.create_tempdir().full_path, "blob")
    fs.download_file(self.url("big/blob"), local)
    expected = self.emulator.client().get_object(
        Bucket=base.BUCKET, Key="big/blob")["Body"].read()
    with open(local, "rb") as f:
      self.assertEqual(f.read(), expected)

  def test_tensorflow_io_variables(self):
    del os.environ["AWS_ENDPOINT_URL_S3"]
    os.environ["S3_ENDPOINT"] = f"127.0.0.1:{self.emulator.port}"
    os.environ["S3_USE_HTTPS"] = "0"
    os.environ["S3_VERIFY_SSL"] = "0"
    self.assertEqual(
        s3_file_system.endpoint_from_environment(),
        (f"http://127.0.0.1:{self.emulator.port}", False))
    self.assertCountEqual(self.fs().list_children(self.url("m")),
                          ["1", "2", "README"])

  def test_anonymous_access(self):
    del os.environ["AWS_ACCESS_KEY_ID"]
    del os.environ["AWS_SECRET_ACCESS_KEY"]
    os.environ["AWS_NO_SIGN_REQUEST"] = "true"
    self.assertEqual(self.fs().read_file(self.url("m/README")), b"hi")

  def test_missing_credentials_name_url_and_variables(self):
    del os.environ["AWS_ACCESS_KEY_ID"]
    del os.environ["AWS_SECRET_ACCESS_KEY"]
    with self.assertRaises(status.ServingError) as cm:
      self.fs().list_children(self.url("m"))
    self.assertEqual(cm.exception.code, status.Code.UNAUTHENTICATED)
    self.assertIn(self.url("m"), cm.exception.message)
    self.assertIn("AWS_ACCESS_KEY_ID", cm.exception.message)
    self.assertIn("AWS_SECRET_ACCESS_KEY", cm.exception.message)

  def test_unknown_profile(self):
    os.environ["AWS_PROFILE"] = "nobody"
    with self.assertRaises(status.ServingError) as cm:
      self.fs().list_children(self.url("m"))
    self.assertEqual(cm.exception.code, status.Code.UNAUTHENTICATED)
    self.assertIn("AWS_PROFILE", cm.exception.message)
    self.assertIn(self.url("m"), cm.exception.message)

  def test_frozen_server_times_out(self):
    # Three attempts of at most 0.5 s each, plus backoff.
    self.assert_fails_fast_then_recovers(
        self.fs(timeout_seconds=0.5), self.frozen_emulator,
        ["1", "2", "README"])


if __name__ == "__main__":
  absltest.main()
