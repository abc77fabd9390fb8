"""Tests for S3FileSystem against moto's S3 server on a loopback port.

The emulator is real (moto's server, the S3 REST API over HTTP); so are the
failures: a missing bucket, missing credentials, an unknown profile, a
frozen server.
"""

import os
import time

from absl.testing import absltest

from tensorflow_serving.sources.storage_path import s3_file_system
from tensorflow_serving.sources.storage_path.test_util import object_store_emulators
from tensorflow_serving.util import status

_BUCKET = "models-bucket"


class S3FileSystemTest(absltest.TestCase):

  @classmethod
  def setUpClass(cls):
    super().setUpClass()
    cls.emulator = object_store_emulators.S3Emulator()
    cls.emulator.start()
    client = cls.emulator.client()
    client.create_bucket(Bucket=_BUCKET)
    for key, data in (("m/1/saved_model.pb", b"pb"),
                      ("m/1/variables/variables.index", b"index"),
                      ("m/2/", b""),  # A "directory" placeholder.
                      ("m/README", b"hi"),
                      ("big/blob", os.urandom(3 * 1024 * 1024 + 17))):
      client.put_object(Bucket=_BUCKET, Key=key, Body=data)
    client.put_object_acl(Bucket=_BUCKET, Key="m/README", ACL="public-read")

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
    for name in list(os.environ):
      if name.startswith(("AWS_", "S3_")):
        del os.environ[name]
    os.environ.update(self.emulator.env())

  def fs(self, timeout_seconds=10.0):
    return s3_file_system.S3FileSystem(
        s3_file_system.S3FileSystem.Options(timeout_seconds=timeout_seconds))

  def test_listing_reading_downloading(self):
    fs = self.fs()
    base = f"s3://{_BUCKET}/m"
    self.assertTrue(fs.exists(base))
    self.assertTrue(fs.exists(base + "/"))
    self.assertTrue(fs.exists(base + "/README"))
    self.assertTrue(fs.exists(f"s3://{_BUCKET}"))
    self.assertFalse(fs.exists(f"s3://{_BUCKET}/nothing"))
    self.assertFalse(fs.exists(f"s3://{_BUCKET}/m/1/saved"))  # Not a prefix.
    self.assertCountEqual(fs.list_children(base), ["1", "2", "README"])
    self.assertCountEqual(fs.list_children(base + "/1"),
                          ["saved_model.pb", "variables"])
    tree = fs.list_tree(base + "/1")
    self.assertEqual(sorted(tree), ["saved_model.pb", "variables/",
                                    "variables/variables.index"])
    self.assertEqual(tree["variables/variables.index"].size, 5)
    self.assertTrue(tree["variables/"].is_dir)
    self.assertTrue(tree["saved_model.pb"].etag)
    self.assertIsNotNone(tree["saved_model.pb"].mtime)
    self.assertEqual(fs.read_file(base + "/1/saved_model.pb"), b"pb")
    local = os.path.join(self.create_tempdir().full_path, "blob")
    fs.download_file(f"s3://{_BUCKET}/big/blob", local)
    expected = self.emulator.client().get_object(
        Bucket=_BUCKET, Key="big/blob")["Body"].read()
    with open(local, "rb") as f:
      self.assertEqual(f.read(), expected)
    self.assertEqual(fs.list_tree(f"s3://{_BUCKET}/nothing"), {})

  def test_missing_things_are_not_found(self):
    fs = self.fs()
    self.assertFalse(fs.exists("s3://no-such-bucket/m"))
    with self.assertRaises(status.ServingError) as cm:
      fs.list_children("s3://no-such-bucket/m")
    self.assertEqual(cm.exception.code, status.Code.NOT_FOUND)
    with self.assertRaises(status.ServingError) as cm:
      fs.read_file(f"s3://{_BUCKET}/m/missing")
    self.assertEqual(cm.exception.code, status.Code.NOT_FOUND)

  def test_tensorflow_io_variables(self):
    del os.environ["AWS_ENDPOINT_URL_S3"]
    os.environ["S3_ENDPOINT"] = f"127.0.0.1:{self.emulator.port}"
    os.environ["S3_USE_HTTPS"] = "0"
    os.environ["S3_VERIFY_SSL"] = "0"
    self.assertEqual(
        s3_file_system.endpoint_from_environment(),
        (f"http://127.0.0.1:{self.emulator.port}", False))
    self.assertCountEqual(self.fs().list_children(f"s3://{_BUCKET}/m"),
                          ["1", "2", "README"])

  def test_anonymous_access(self):
    del os.environ["AWS_ACCESS_KEY_ID"]
    del os.environ["AWS_SECRET_ACCESS_KEY"]
    os.environ["AWS_NO_SIGN_REQUEST"] = "true"
    self.assertEqual(self.fs().read_file(f"s3://{_BUCKET}/m/README"), b"hi")

  def test_missing_credentials_name_url_and_variables(self):
    del os.environ["AWS_ACCESS_KEY_ID"]
    del os.environ["AWS_SECRET_ACCESS_KEY"]
    with self.assertRaises(status.ServingError) as cm:
      self.fs().list_children(f"s3://{_BUCKET}/m")
    self.assertEqual(cm.exception.code, status.Code.UNAUTHENTICATED)
    self.assertIn(f"s3://{_BUCKET}/m", cm.exception.message)
    self.assertIn("AWS_ACCESS_KEY_ID", cm.exception.message)
    self.assertIn("AWS_SECRET_ACCESS_KEY", cm.exception.message)

  def test_unknown_profile(self):
    os.environ["AWS_PROFILE"] = "nobody"
    with self.assertRaises(status.ServingError) as cm:
      self.fs().list_children(f"s3://{_BUCKET}/m")
    self.assertEqual(cm.exception.code, status.Code.UNAUTHENTICATED)
    self.assertIn("AWS_PROFILE", cm.exception.message)
    self.assertIn(f"s3://{_BUCKET}/m", cm.exception.message)

  def test_frozen_server_times_out(self):
    fs = self.fs(timeout_seconds=0.5)
    fs.list_children(f"s3://{_BUCKET}/m")  # Connected once.
    self.emulator.pause()
    try:
      start = time.monotonic()
      with self.assertRaises(status.ServingError) as cm:
        fs.list_children(f"s3://{_BUCKET}/m")
      elapsed = time.monotonic() - start
    finally:
      self.emulator.resume()
    self.assertIn(cm.exception.code, (status.Code.DEADLINE_EXCEEDED,
                                      status.Code.UNAVAILABLE))
    # Three attempts of at most 0.5 s each, plus backoff.
    self.assertLess(elapsed, 10)
    self.assertCountEqual(fs.list_children(f"s3://{_BUCKET}/m"),
                          ["1", "2", "README"])


if __name__ == "__main__":
  absltest.main()
