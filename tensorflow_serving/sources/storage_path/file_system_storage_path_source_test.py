"""Tests for FileSystemStoragePathSource on real temp directories.

The upload-complete guard and storage-fault tests also run against real
object-store emulators (moto's S3 server, gcp-storage-emulator) started on
loopback ports by the test.
"""

import os
import threading
import time

from absl.testing import absltest
from google.protobuf import text_format

from tensorflow_serving.config import file_system_storage_path_source_pb2
from tensorflow_serving.sources.storage_path import file_system
from tensorflow_serving.sources.storage_path import file_system_registry
from tensorflow_serving.sources.storage_path import file_system_storage_path_source as fs_source
from tensorflow_serving.sources.storage_path import version_readiness
from tensorflow_serving.sources.storage_path.test_util import object_store_emulators
from tensorflow_serving.util import status

Config = file_system_storage_path_source_pb2.FileSystemStoragePathSourceConfig


class Recorder:
  """Collects what the source emits; can wait for a matching emission."""

  def __init__(self):
    self.cond = threading.Condition()
    self.calls = []

  def __call__(self, name, versions):
    with self.cond:
      self.calls.append((name, versions))
      self.cond.notify_all()

  def last(self, name):
    """{version: path} of the last emission for `name` (None if none)."""
    with self.cond:
      return self.last_locked(name)

  def wait_for(self, name, predicate, timeout=10):
    with self.cond:
      return self.cond.wait_for(
          lambda: self.last_locked(name) is not None and predicate(
              self.last_locked(name)), timeout)

  def last_locked(self, name):
    for n, versions in reversed(self.calls):
      if n == name:
        return {v.id.version: v.data for v in versions}
    return None


class FileSystemStoragePathSourceTest(absltest.TestCase):

  def setUp(self):
    super().setUp()
    self.base = self.create_tempdir().full_path
    self.recorder = Recorder()

  def mkdirs(self, *names, base=None):
    for name in names:
      os.makedirs(os.path.join(base or self.base, name), exist_ok=True)

  def config(self, policy="", poll=-1, base=None, name="m", extra=""):
    return text_format.Parse(
        f"""
        servables {{
          servable_name: "{name}"
          base_path: "{base or self.base}"
          servable_version_policy {{ {policy} }}
        }}
        file_system_poll_wait_seconds: {poll}
        {extra}
        """, Config())

  def make_source(self, config, poll_wait_seconds=None, readiness=None,
                  fs=None):
    source = fs_source.FileSystemStoragePathSource.create(
        config,
        fs_source.FileSystemStoragePathSource.Options(
            file_system=fs or file_system.LocalFileSystem(),
            poll_wait_seconds=poll_wait_seconds,
            version_readiness=readiness))
    self.addCleanup(source.stop)
    source.set_aspired_versions_callback(self.recorder)
    return source

  def test_latest_is_default_and_ignores_non_numbers(self):
    self.mkdirs("1", "3", "00000012", "foo", "2.5", "-4", "tmp7")
    source = self.make_source(self.config())
    source.poll_file_system_and_invoke_callback()
    self.assertEqual(self.recorder.last("m"),
                     {12: os.path.join(self.base, "00000012")})

  def test_latest_n(self):
    self.mkdirs("1", "2", "3")
    source = self.make_source(self.config("latest { num_versions: 2 }"))
    source.poll_file_system_and_invoke_callback()
    self.assertEqual(sorted(self.recorder.last("m")), [2, 3])

  def test_all(self):
    self.mkdirs("1", "2", "5")
    source = self.make_source(self.config("all {}"))
    source.poll_file_system_and_invoke_callback()
    self.assertEqual(sorted(self.recorder.last("m")), [1, 2, 5])

  def test_specific_warns_about_missing(self):
    self.mkdirs("1", "2", "3")
    source = self.make_source(self.config("specific { versions: [1, 3, 9] }"))
    with self.assertLogs(level="WARNING") as logs:
      source.poll_file_system_and_invoke_callback()
    self.assertEqual(sorted(self.recorder.last("m")), [1, 3])
    self.assertIn("Version 9 of servable m, which was requested to be served "
                  "as a 'specific' version", "\n".join(logs.output))

  def test_duplicate_versions_warn(self):
    self.mkdirs("1", "01")
    source = self.make_source(self.config())
    with self.assertLogs(level="WARNING") as logs:
      source.poll_file_system_and_invoke_callback()
    self.assertEqual(list(self.recorder.last("m")), [1])
    self.assertIn("Duplicate version directories detected",
                  "\n".join(logs.output))

  def test_missing_base_path_logs_and_later_appears(self):
    base = os.path.join(self.base, "later")
    source = self.make_source(self.config(base=base))
    with self.assertLogs(level="ERROR") as logs:
      source.poll_file_system_and_invoke_callback()
    self.assertEqual(self.recorder.calls, [])  # Nothing emitted, no unload.
    self.assertIn(
        "FileSystemStoragePathSource encountered a filesystem access error: "
        f"Could not find base path {base} for servable m", "\n".join(
            logs.output))
    self.mkdirs("7", base=base)
    source.poll_file_system_and_invoke_callback()
    self.assertEqual(list(self.recorder.last("m")), [7])

  def test_no_versions_logs_and_emits_empty(self):
    self.mkdirs("not_a_version")
    source = self.make_source(self.config())
    with self.assertLogs(level="WARNING") as logs:
      source.poll_file_system_and_invoke_callback()
    self.assertEqual(self.recorder.last("m"), {})
    self.assertIn(
        f"No versions of servable m found under base path {self.base}. Did you "
        "forget to name your leaf directory as a number (eg. '/1/')?",
        "\n".join(logs.output))

  def test_deleted_version_is_no_longer_aspired(self):
    self.mkdirs("1", "2")
    source = self.make_source(self.config("all {}"))
    source.poll_file_system_and_invoke_callback()
    os.rmdir(os.path.join(self.base, "2"))
    source.poll_file_system_and_invoke_callback()
    self.assertEqual(list(self.recorder.last("m")), [1])

  def test_versions_always_present_refuses_to_unload_all(self):
    self.mkdirs("1")
    source = self.make_source(
        self.config(extra="servable_versions_always_present: true"))
    source.poll_file_system_and_invoke_callback()
    os.rmdir(os.path.join(self.base, "1"))
    with self.assertLogs(level="ERROR") as logs:
      source.poll_file_system_and_invoke_callback()
    self.assertEqual(list(self.recorder.last("m")), [1])
    self.assertIn("Refusing to unload all versions for Servable: m",
                  "\n".join(logs.output))

  def test_fail_if_zero_versions(self):
    with self.assertRaises(status.ServingError) as cm:
      fs_source.FileSystemStoragePathSource.create(
          self.config(extra="fail_if_zero_versions_at_startup: true"),
          fs_source.FileSystemStoragePathSource.Options(
              file_system=file_system.LocalFileSystem()))
    self.assertEqual(cm.exception.code, status.Code.NOT_FOUND)

  def test_one_broken_servable_does_not_block_others(self):
    self.mkdirs("4")
    config = self.config()
    missing = config.servables.add()
    missing.servable_name = "missing"
    missing.base_path = os.path.join(self.base, "nope")
    source = self.make_source(config)
    source.poll_file_system_and_invoke_callback()
    self.assertEqual(list(self.recorder.last("m")), [4])
    self.assertIsNone(self.recorder.last("missing"))

  def test_update_config_unaspires_removed_and_polls_new(self):
    other = self.create_tempdir().full_path
    self.mkdirs("1")
    self.mkdirs("2", base=other)
    source = self.make_source(self.config())
    source.poll_file_system_and_invoke_callback()
    source.update_config(self.config(base=other, name="n"))
    self.assertEqual(self.recorder.last("m"), {})
    self.assertEqual(list(self.recorder.last("n")), [2])
    self.assertEqual([s.servable_name for s in source.config.servables], ["n"])

  def test_polling_thread_picks_up_new_versions(self):
    self.mkdirs("1")
    self.make_source(self.config(poll=1), poll_wait_seconds=0.01)
    self.assertTrue(self.recorder.wait_for("m", lambda v: list(v) == [1]))
    self.mkdirs("2")
    self.assertTrue(self.recorder.wait_for("m", lambda v: list(v) == [2]))

  def test_poll_once(self):
    self.mkdirs("1")
    source = self.make_source(self.config(poll=0))
    self.assertTrue(self.recorder.wait_for("m", lambda v: list(v) == [1]))
    source.stop()
    self.assertLen(self.recorder.calls, 1)

  def test_changing_poll_interval_is_refused(self):
    source = self.make_source(self.config(poll=1), poll_wait_seconds=10)
    with self.assertRaises(status.ServingError) as cm:
      source.update_config(self.config(poll=2))
    self.assertEqual(cm.exception.message,
                     "Changing file_system_poll_wait_seconds is not supported")


  # --------------------------------------------- upload-complete guard, faults

  def write(self, rel, data=b"x", base=None):
    path = os.path.join(base or self.base, rel)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as f:
      f.write(data)

  def write_saved_model_files(self, version, base=None):
    self.write(f"{version}/saved_model.pb", base=base)
    self.write(f"{version}/variables/variables.index", base=base)
    self.write(f"{version}/variables/variables.data-00000-of-00001", base=base)

  def age(self, version, seconds=100):
    """Makes a version's files look written `seconds` ago."""
    old = time.time() - seconds
    top = os.path.join(self.base, version)
    for root, dirs, files in os.walk(top):
      for name in dirs + files:
        os.utime(os.path.join(root, name), (old, old))
    os.utime(top, (old, old))

  def test_guard_copy_in_progress_never_displaces_serving_version(self):
    self.write_saved_model_files(1)
    self.age("1")  # Finished long ago: complete at first sight.
    # A copy of version 2 in progress: saved_model.pb only, for many polls.
    self.write("2/saved_model.pb")
    source = self.make_source(
        self.config(),
        readiness=version_readiness.VersionReadiness.Options(
            stability_seconds=10))
    for _ in range(4):
      source.poll_file_system_and_invoke_callback()
      self.assertEqual(list(self.recorder.last("m")), [1])
    self.write("2/variables/variables.index")
    self.write("2/variables/variables.data-00000-of-00001")
    source.poll_file_system_and_invoke_callback()  # New files: not yet.
    self.assertEqual(list(self.recorder.last("m")), [1])
    source.poll_file_system_and_invoke_callback()  # Unchanged for a poll.
    self.assertEqual(list(self.recorder.last("m")), [2])

  def test_guard_marker(self):
    self.write_saved_model_files(1)
    source = self.make_source(
        self.config(),
        readiness=version_readiness.VersionReadiness.Options(
            ready_marker="READY"))
    source.poll_file_system_and_invoke_callback()
    source.poll_file_system_and_invoke_callback()
    self.assertEqual(self.recorder.last("m"), {})
    self.write("1/READY", b"")
    source.poll_file_system_and_invoke_callback()
    self.assertEqual(list(self.recorder.last("m")), [1])

  def test_outage_logged_once_and_recovery_once(self):
    self.write_saved_model_files(1)
    source = self.make_source(self.config())
    source.poll_file_system_and_invoke_callback()
    moved = self.base + ".away"
    os.rename(self.base, moved)
    self.addCleanup(lambda: os.path.exists(moved) and os.rename(
        moved, self.base))
    with self.assertLogs(level="INFO") as logs:
      for _ in range(3):
        source.poll_file_system_and_invoke_callback()
    errors = [l for l in logs.output if "filesystem access error" in l]
    self.assertLen(errors, 1)
    self.assertEqual(list(self.recorder.last("m")), [1])  # Nothing unaspired.
    os.rename(moved, self.base)
    with self.assertLogs(level="INFO") as logs:
      source.poll_file_system_and_invoke_callback()
      source.poll_file_system_and_invoke_callback()
    recovered = [l for l in logs.output if "can be listed again" in l]
    self.assertLen(recovered, 1)
    self.assertEqual(list(self.recorder.last("m")), [1])


class ObjectStoreSourceTest(absltest.TestCase):
  """The source over real S3 and GCS emulators (bucket listings by prefix)."""

  @classmethod
  def setUpClass(cls):
    super().setUpClass()
    cls.s3 = object_store_emulators.S3Emulator()
    cls.gcs = object_store_emulators.GcsEmulator()
    cls.s3.start()
    cls.gcs.start()
    cls._saved_env = dict(os.environ)
    os.environ.update(cls.s3.env())
    os.environ.update(cls.gcs.env())

  @classmethod
  def tearDownClass(cls):
    os.environ.clear()
    os.environ.update(cls._saved_env)
    cls.s3.stop()
    cls.gcs.stop()
    super().tearDownClass()

  def stores(self):
    """(name, base URL, put(key, data)) for a fresh bucket in each store."""
    s3_client = self.s3.client()
    gcs_client = self.gcs.client()
    bucket = f"bucket-{self.id().rsplit('.', 1)[-1]}".replace("_", "-")[:60]
    gcs_bucket = None

    def s3_put(key, data):
      s3_client.put_object(Bucket=bucket, Key=key, Body=data)

    def gcs_put(key, data):
      gcs_bucket.blob(key).upload_from_string(data)

    s3_client.create_bucket(Bucket=bucket)
    gcs_bucket = gcs_client.create_bucket(bucket)
    return [("s3", f"s3://{bucket}/models/m", s3_put),
            ("gcs", f"gs://{bucket}/models/m", gcs_put)]

  def test_versions_policies_and_guard(self):
    for name, base, put in self.stores():
      with self.subTest(name):
        recorder = Recorder()
        config = text_format.Parse(
            f"""servables {{ servable_name: "m" base_path: "{base}"
                             servable_version_policy {{ all {{}} }} }}
                file_system_poll_wait_seconds: 1""", Config())
        source = fs_source.FileSystemStoragePathSource.create(
            config,
            fs_source.FileSystemStoragePathSource.Options(
                file_system=file_system_registry.SchemeFileSystem(),
                poll_wait_seconds=-1,
                version_readiness=version_readiness.VersionReadiness.Options(
                    stability_seconds=1)))
        self.addCleanup(source.stop)
        source.set_aspired_versions_callback(recorder)
        for key in ("1/saved_model.pb", "1/variables/variables.index",
                    "1/variables/variables.data-00000-of-00001", "x/notes",
                    "00000007/saved_model.pb"):
          put("models/m/" + key, b"x")
        source.poll_file_system_and_invoke_callback()
        # Object-store timestamps are not trusted: a second, equal listing.
        self.assertEqual(recorder.last("m"), {})
        source.poll_file_system_and_invoke_callback()
        self.assertEqual(recorder.last("m"), {1: base + "/1"})
        put("models/m/00000007/variables/variables.index", b"x")
        put("models/m/00000007/variables/variables.data-00000-of-00001", b"x")
        source.poll_file_system_and_invoke_callback()
        source.poll_file_system_and_invoke_callback()
        self.assertEqual(recorder.last("m"), {1: base + "/1",
                                              7: base + "/00000007"})

  def test_bucket_created_later_is_polled_until_it_exists(self):
    for name, base in (("s3", "s3://later-s3/models/m"),
                       ("gcs", "gs://later-gcs/models/m")):
      with self.subTest(name):
        recorder = Recorder()
        config = text_format.Parse(
            f'servables {{ servable_name: "m" base_path: "{base}" }}',
            Config())
        source = fs_source.FileSystemStoragePathSource.create(
            config,
            fs_source.FileSystemStoragePathSource.Options(
                file_system=file_system_registry.SchemeFileSystem(),
                poll_wait_seconds=-1))
        self.addCleanup(source.stop)
        source.set_aspired_versions_callback(recorder)
        with self.assertLogs(level="ERROR") as logs:
          source.poll_file_system_and_invoke_callback()
        self.assertIn(f"Could not find base path {base}",
                      "\n".join(logs.output))
        self.assertIsNone(recorder.last("m"))
        if name == "s3":
          client = self.s3.client()
          client.create_bucket(Bucket="later-s3")
          client.put_object(Bucket="later-s3", Key="models/m/3/hashmap.csv",
                            Body=b"a,1")
        else:
          bucket = self.gcs.client().create_bucket("later-gcs")
          bucket.blob("models/m/3/hashmap.csv").upload_from_string("a,1")
        source.poll_file_system_and_invoke_callback()
        self.assertEqual(recorder.last("m"), {3: base + "/3"})

  def test_store_down_keeps_versions_and_logs_once(self):
    stores = self.stores()
    name, base, put = stores[1]  # GCS: it keeps its objects over a restart.
    put("models/m/1/hashmap.csv", b"a,1")
    recorder = Recorder()
    config = text_format.Parse(
        f'servables {{ servable_name: "m" base_path: "{base}" }}', Config())
    fs = file_system_registry.SchemeFileSystem(
        file_system_registry.SchemeFileSystem.Options(timeout_seconds=1))
    source = fs_source.FileSystemStoragePathSource.create(
        config, fs_source.FileSystemStoragePathSource.Options(
            file_system=fs, poll_wait_seconds=-1))
    self.addCleanup(source.stop)
    source.set_aspired_versions_callback(recorder)
    source.poll_file_system_and_invoke_callback()
    self.assertEqual(recorder.last("m"), {1: base + "/1"})
    calls = len(recorder.calls)
    self.gcs.stop()
    try:
      with self.assertLogs(level="INFO") as logs:
        start = time.monotonic()
        source.poll_file_system_and_invoke_callback()
        source.poll_file_system_and_invoke_callback()
        elapsed = time.monotonic() - start
    finally:
      self.gcs.start()
    del name
    self.assertLen(recorder.calls, calls)  # Nothing emitted: nothing unloads.
    self.assertLen(
        [l for l in logs.output if "filesystem access error" in l], 1)
    self.assertLess(elapsed, 20)  # Bounded by --storage_timeout_seconds.
    source.poll_file_system_and_invoke_callback()
    self.assertEqual(recorder.last("m"), {1: base + "/1"})


if __name__ == "__main__":
  absltest.main()
