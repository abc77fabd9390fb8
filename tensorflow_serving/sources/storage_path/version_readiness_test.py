"""Tests for the upload-complete guard (version_readiness.py) on real files.

Listings come from real temp directories through LocalFileSystem; the clock
is a fake, so "older than one poll interval" needs no sleeping.
"""

import os

from absl.testing import absltest

from tensorflow_serving.sources.storage_path import file_system
from tensorflow_serving.sources.storage_path import version_readiness

FileStat = file_system.FileStat
Readiness = version_readiness.VersionReadiness


def _tree(*files, dirs=()):
  tree = {d: FileStat(0, is_dir=True) for d in dirs}
  tree.update({f: FileStat(1) for f in files})
  return tree


class IncompleteReasonTest(absltest.TestCase):

  def test_saved_model_rules(self):
    reason = version_readiness.incomplete_reason
    self.assertEqual(reason({}), "it holds no files yet")
    self.assertEqual(reason(_tree(dirs=["variables/"])),
                     "it holds no files yet")
    self.assertEqual(reason(_tree("saved_model.pb")),
                     "no variables/ directory yet")
    self.assertEqual(
        reason(_tree("variables/variables.index", dirs=["variables/"])),
        "no saved_model.pb yet")
    self.assertEqual(
        reason(_tree("saved_model.pb", "variables/variables.data-00000-of-00001",
                     dirs=["variables/"])),
        "no variables/variables.index yet")
    self.assertEqual(
        reason(_tree("saved_model.pb", "variables/variables.index",
                     dirs=["variables/"])), "no variables data shard yet")
    self.assertEqual(
        reason(_tree("saved_model.pb", "variables/variables.index",
                     "variables/variables.data-00000-of-00002",
                     dirs=["variables/"])),
        "variables data shard 1 of 2 is missing")
    # Complete: with all shards, a .pbtxt, without variables, not a SavedModel.
    self.assertIsNone(
        reason(_tree("saved_model.pb", "variables/variables.index",
                     "variables/variables.data-00000-of-00002",
                     "variables/variables.data-00001-of-00002",
                     dirs=["variables/"])))
    self.assertIsNone(
        reason(_tree("saved_model.pbtxt", "variables/variables.index",
                     "variables/variables.data-00000-of-00001")))
    self.assertIsNone(reason(_tree("saved_model.pb", dirs=["variables/"])))
    self.assertIsNone(reason(_tree("hashmap.csv")))

  def test_marker(self):
    reason = version_readiness.incomplete_reason
    tree = _tree("saved_model.pb", "variables/variables.index",
                 "variables/variables.data-00000-of-00001")
    self.assertEqual(reason(tree, "READY"), "no ready marker READY yet")
    self.assertIsNone(reason({"READY": FileStat(0)}, "READY"))


class VersionReadinessTest(absltest.TestCase):

  def setUp(self):
    super().setUp()
    self.base = self.create_tempdir().full_path
    self.now = 0.0

  def readiness(self, **options):
    options.setdefault("clock", lambda: self.now)
    return Readiness(file_system.LocalFileSystem(), Readiness.Options(**options))

  def write(self, rel, data=b"x"):
    path = os.path.join(self.base, "1", rel)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as f:
      f.write(data)
    return path

  def write_complete(self):
    self.write("saved_model.pb")
    self.write("variables/variables.index")
    self.write("variables/variables.data-00000-of-00001")

  def test_new_files_need_one_unchanged_poll(self):
    self.write_complete()
    self.now = os.path.getmtime(os.path.join(self.base, "1")) + 0.5
    readiness = self.readiness(stability_seconds=1.0)
    path = os.path.join(self.base, "1")
    with self.assertLogs(level="INFO") as logs:
      self.assertFalse(readiness.is_complete("m", 1, path))
    self.assertIn("Version 1 of servable m at " + path + " is not complete",
                  "\n".join(logs.output))
    self.assertTrue(readiness.is_complete("m", 1, path))

  def test_growing_file_waits(self):
    self.write_complete()
    self.now = os.path.getmtime(os.path.join(self.base, "1"))
    readiness = self.readiness(stability_seconds=1.0)
    path = os.path.join(self.base, "1")
    self.assertFalse(readiness.is_complete("m", 1, path))
    self.write("variables/variables.data-00000-of-00001", b"more bytes")
    self.assertFalse(readiness.is_complete("m", 1, path))
    self.assertTrue(readiness.is_complete("m", 1, path))

  def test_old_files_are_stable_at_first_sight(self):
    self.write_complete()
    self.now = os.path.getmtime(os.path.join(self.base, "1")) + 5
    readiness = self.readiness(stability_seconds=1.0)
    self.assertTrue(
        readiness.is_complete("m", 1, os.path.join(self.base, "1")))

  def test_untrusted_mtime_needs_two_polls(self):
    self.write_complete()
    self.now = os.path.getmtime(os.path.join(self.base, "1")) + 5
    readiness = self.readiness(stability_seconds=1.0,
                               trust_mtime=lambda path: False)
    path = os.path.join(self.base, "1")
    self.assertFalse(readiness.is_complete("m", 1, path))
    self.assertTrue(readiness.is_complete("m", 1, path))

  def test_no_stability_check_without_periodic_polling(self):
    self.write_complete()
    self.now = os.path.getmtime(os.path.join(self.base, "1"))
    readiness = self.readiness(stability_seconds=0)
    self.assertTrue(
        readiness.is_complete("m", 1, os.path.join(self.base, "1")))

  def test_complete_stays_complete_until_forgotten(self):
    self.write_complete()
    self.now = os.path.getmtime(os.path.join(self.base, "1")) + 5
    readiness = self.readiness(stability_seconds=1.0)
    path = os.path.join(self.base, "1")
    self.assertTrue(readiness.is_complete("m", 1, path))
    os.remove(os.path.join(path, "variables", "variables.index"))
    self.assertTrue(readiness.is_complete("m", 1, path))
    readiness.forget_except(set(), self.base)
    self.assertFalse(readiness.is_complete("m", 1, path))

  def test_marker(self):
    self.write_complete()
    self.now = os.path.getmtime(os.path.join(self.base, "1"))
    readiness = self.readiness(ready_marker="DONE")
    path = os.path.join(self.base, "1")
    self.assertFalse(readiness.is_complete("m", 1, path))
    self.assertFalse(readiness.is_complete("m", 1, path))
    self.write("DONE", b"")
    # The marker is the whole signal: no wait for a stable listing.
    self.assertTrue(readiness.is_complete("m", 1, path))


if __name__ == "__main__":
  absltest.main()
