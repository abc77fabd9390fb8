"""Tests for ServerCore over hashmap models in real temp directories.

Polling and the manager run on real threads with millisecond periods; load
retries wait on a fake clock. Every wait is bounded.
"""

import os
import shutil
import threading
import time

from absl.testing import absltest
from google.protobuf import text_format

from tensorflow_serving.apis import model_pb2
from tensorflow_serving.config import model_server_config_pb2
from tensorflow_serving.core import manager
from tensorflow_serving.core import servable_id
from tensorflow_serving.core import servable_state
from tensorflow_serving.model_servers import server_core as server_core_lib
from tensorflow_serving.model_servers.test_util import server_core_test_util as test_util
from tensorflow_serving.servables.hashmap.test_util import hashmap_test_util
from tensorflow_serving.util import status

ServableId = servable_id.ServableId
ManagerState = servable_state.ManagerState
ServerCore = server_core_lib.ServerCore
WAIT = 10  # Seconds; reached only when something is broken.


def spec(name, version=None, label=None):
  model_spec = model_pb2.ModelSpec(name=name)
  if version is not None:
    model_spec.version.value = version
  if label is not None:
    model_spec.version_label = label
  return model_spec


class ServerCoreTest(absltest.TestCase):

  def setUp(self):
    super().setUp()
    self.root = self.create_tempdir().full_path

  def base(self, name):
    return os.path.join(self.root, name)

  def write(self, name, version, table=None):
    hashmap_test_util.write_version(self.base(name), version, table or {
        "model": name,
        "version": str(version)
    })

  def create(self, models, extra=None, **overrides):
    config = test_util.model_config(
        {m: self.base(m) for m in models}, extra,
        overrides.pop("platform", test_util.HASHMAP_PLATFORM))
    core = ServerCore.create(test_util.options(config, **overrides))
    self.addCleanup(core.stop)
    return core

  def config(self, models, extra=None):
    return test_util.model_config({m: self.base(m) for m in models}, extra)

  def lookup(self, core, name, version=None, label=None):
    with core.get_servable_handle(spec(name, version, label)) as handle:
      return handle.id.version, dict(handle.servable)

  def wait_state(self, core, name, version, goal):
    monitor = core.servable_state_monitor
    return monitor.wait_until_servables_reach_state(
        [manager.ServableRequest.specific(name, version)], goal,
        timeout_seconds=WAIT)

  def wait_available(self, core, name, *versions):
    for version in versions:
      reached, _ = self.wait_state(core, name, version, ManagerState.AVAILABLE)
      self.assertTrue(reached, f"{name} version {version}")

  def assert_error(self, fn, code, message):
    with self.assertRaises(status.ServingError) as cm:
      fn()
    self.assertEqual(cm.exception.code, code, cm.exception.message)
    self.assertEqual(cm.exception.message, message)

  # ------------------------------------------------------------- serving

  def test_serves_two_models(self):
    self.write("a", 1)
    self.write("a", 2)
    self.write("b", 7)
    core = self.create(["a", "b"])
    self.assertEqual(self.lookup(core, "a"), (2, {"model": "a",
                                                  "version": "2"}))
    self.assertEqual(self.lookup(core, "b")[0], 7)
    self.assertEqual(
        sorted(core.list_available_servable_ids()),
        [ServableId("a", 2), ServableId("b", 7)])
    self.assertEqual(
        core.servable_state_monitor.get_state(
            ServableId("a", 2)).manager_state, ManagerState.AVAILABLE)

  def test_request_errors(self):
    self.write("a", 1)
    core = self.create(["a"])
    self.assert_error(lambda: core.get_servable_handle(spec("")),
                      status.Code.INVALID_ARGUMENT,
                      "ModelSpec has no name specified.")
    self.assert_error(lambda: core.get_servable_handle(spec("nope")),
                      status.Code.NOT_FOUND,
                      "Servable not found for request: Latest(nope)")
    self.assert_error(lambda: core.get_servable_handle(spec("a", 5)),
                      status.Code.NOT_FOUND,
                      "Servable not found for request: Specific(a, 5)")
    self.assert_error(lambda: core.get_servable_handle(spec("a", label="x")),
                      status.Code.INVALID_ARGUMENT,
                      "Unrecognized servable version label: x")

  def test_version_policies(self):
    for v in (1, 2, 3):
      self.write("all", v)
      self.write("specific", v)
    core = self.create(
        ["all", "specific"], {
            "all": "model_version_policy { all {} }",
            "specific": "model_version_policy { specific { versions: 1 } }"
        })
    self.wait_available(core, "all", 1, 2, 3)
    self.assertEqual(
        sorted(core.list_available_servable_ids()), [
            ServableId("all", 1),
            ServableId("all", 2),
            ServableId("all", 3),
            ServableId("specific", 1)
        ])

  # ------------------------------------------------------------ failures

  def test_corrupt_version_retried_error_visible_previous_serves(self):
    self.write("a", 1)
    core = self.create(["a"])
    with self.assertLogs(level="INFO") as logs:
      hashmap_test_util.write_corrupt_version(self.base("a"), 2)
      reached, _ = self.wait_state(core, "a", 2, ManagerState.AVAILABLE)
    self.assertFalse(reached)
    state = core.servable_state_monitor.get_state(ServableId("a", 2))
    self.assertEqual(state.manager_state, ManagerState.END)
    self.assertEqual(state.health.code, status.Code.INVALID_ARGUMENT)
    self.assertIn("Unexpected format at line 1", state.health.message)
    text = "\n".join(logs.output)
    # 1 + max_num_load_retries (2) attempts, 5 s apart on the fake clock.
    self.assertEqual(text.count("Loading servable: {name: a version: 2} "
                                "failed: INVALID_ARGUMENT"), 3)
    self.assertIn("Retrying of Loading servable: {name: a version: 2} retry: 2",
                  text)
    self.assertIn("exhausted max_num_retries: 2", text)
    self.assertEqual(self.lookup(core, "a")[0], 1)

  def test_startup_fails_with_upstreams_message(self):
    self.write("good", 1)
    hashmap_test_util.write_corrupt_version(self.base("bad"), 3)
    config = test_util.model_config({
        "good": self.base("good"),
        "bad": self.base("bad")
    })
    with self.assertRaises(status.ServingError) as cm:
      ServerCore.create(test_util.options(config, max_num_load_retries=0))
    self.assertEqual(cm.exception.code, status.Code.UNKNOWN)
    self.assertRegex(
        cm.exception.message,
        r"^1 model\(s\) did not become available: \{\{\{name: bad version: 3\} "
        r"due to error: INVALID_ARGUMENT: Unexpected format at line 1 of .*"
        r"\}, \}$")

  def test_reload_with_one_broken_model_the_good_one_serves(self):
    self.write("a", 1)
    core = self.create(["a"])
    self.write("good", 1)
    hashmap_test_util.write_corrupt_version(self.base("bad"), 1)
    with self.assertRaises(status.ServingError) as cm:
      core.reload_config(self.config(["a", "good", "bad"]))
    self.assertEqual(cm.exception.code, status.Code.UNKNOWN)
    self.assertStartsWith(cm.exception.message,
                          "1 model(s) did not become available: "
                          "{{{name: bad version: 1} due to error: ")
    self.assertEqual(self.lookup(core, "good")[0], 1)
    self.assertEqual(self.lookup(core, "a")[0], 1)
    self.assertEqual([m.name for m in core.config.model_config_list.config],
                     ["a", "good", "bad"])

  def test_base_path_that_appears_later_is_picked_up(self):
    result = {}

    def create():
      try:
        result["core"] = self.create(["late"])
      except status.ServingError as e:
        result["error"] = e

    thread = threading.Thread(target=create)
    with self.assertLogs(level="ERROR") as logs:
      thread.start()
      deadline = time.monotonic() + WAIT
      while not any("Could not find base path" in line for line in logs.output):
        self.assertLess(time.monotonic(), deadline)
        time.sleep(0.005)
    self.assertTrue(thread.is_alive())  # Still waiting for the model.
    self.write("late", 4)
    thread.join(WAIT)
    self.assertFalse(thread.is_alive())
    self.assertNotIn("error", result)
    self.assertEqual(self.lookup(result["core"], "late")[0], 4)

  def test_stop_ends_a_wait_for_a_missing_model(self):
    # create() split in two, so that another thread (a signal handler) can
    # stop a server that is still waiting for its models.
    core = ServerCore(test_util.options(self.config(["never"])))
    errors = []

    def start():
      try:
        core.reload_config(self.config(["never"]))
      except status.ServingError as e:
        errors.append(e)

    thread = threading.Thread(target=start)
    thread.start()
    thread.join(0.05)
    self.assertTrue(thread.is_alive())
    core.stop()
    thread.join(WAIT)
    self.assertFalse(thread.is_alive())
    self.assertEqual([e.code for e in errors], [status.Code.CANCELLED])

  def test_version_directory_disappearing_unloads_it(self):
    self.write("a", 1)
    self.write("a", 2)
    core = self.create(["a"], {"a": "model_version_policy { all {} }"})
    shutil.rmtree(os.path.join(self.base("a"), "2"))
    reached, _ = self.wait_state(core, "a", 2, ManagerState.END)
    self.assertTrue(reached)
    self.assertEqual(core.list_available_servable_ids(), [ServableId("a", 1)])

  # ------------------------------------------------------------- reloads

  def test_reload_adds_removes_and_changes_models(self):
    for v in (1, 2):
      self.write("a", v)
    self.write("b", 1)
    core = self.create(["a", "b"])
    self.write("c", 3)
    core.reload_config(
        self.config(["a", "c"], {"a": "model_version_policy { all {} }"}))
    self.assertEqual(self.lookup(core, "c")[0], 3)  # Waited for.
    reached, _ = self.wait_state(core, "b", 1, ManagerState.END)
    self.assertTrue(reached)
    self.assert_error(lambda: core.get_servable_handle(spec("b")),
                      status.Code.NOT_FOUND,
                      "Servable not found for request: Latest(b)")
    reached, _ = self.wait_state(core, "a", 1, ManagerState.AVAILABLE)
    self.assertTrue(reached)
    # A removed model that comes back is loaded again.
    core.reload_config(self.config(["a", "b", "c"]))
    self.assertEqual(self.lookup(core, "b")[0], 1)

  def test_identical_reload_is_a_no_op(self):
    self.write("a", 1)
    core = self.create(["a"])
    core.reload_config(self.config(["a"]))
    self.assertEqual(self.lookup(core, "a")[0], 1)

  def test_reload_with_poll_once_loads_new_models(self):
    self.write("a", 1)
    core = self.create(["a"], file_system_poll_wait_seconds=0)
    self.write("b", 2)
    core.reload_config(self.config(["a", "b"]))
    self.assertEqual(self.lookup(core, "b")[0], 2)

  def test_invalid_configs_are_rejected_and_old_stays(self):
    self.write("a", 1)
    core = self.create(["a"])
    old = core.config

    def reload(text):
      return lambda: core.reload_config(
          text_format.Parse(text, model_server_config_pb2.ModelServerConfig()))

    a = f'name: "a" base_path: "{self.base("a")}"'
    cases = [
        (f'model_config_list {{ config {{ {a} model_platform: "hashmap" }} '
         f'config {{ {a} model_platform: "hashmap" }} }}',
         status.Code.INVALID_ARGUMENT,
         "Illegal to list model a multiple times in config list"),
        ('model_config_list { config { name: "a" base_path: "rel/a" '
         'model_platform: "hashmap" } }', status.Code.INVALID_ARGUMENT,
         "Expected model a to have an absolute path or URI; got "
         "base_path()=rel/a"),
        (f"model_config_list {{ config {{ {a} }} }}",
         status.Code.INVALID_ARGUMENT,
         "Illegal setting neither ModelServerConfig::model_type (deprecated) "
         "nor ModelServerConfig::model_platform."),
        (f'model_config_list {{ config {{ {a} model_platform: "x" }} }}',
         status.Code.INVALID_ARGUMENT,
         "Illegal to change a model's platform. For model a platform was "
         "hashmap and new platform requested is x"),
        (f'model_config_list {{ config {{ name: "z" base_path: "{self.root}" '
         'model_platform: "x" } }', status.Code.INVALID_ARGUMENT,
         "Model z requests unsupported platform x"),
        ('custom_model_config { }', status.Code.FAILED_PRECONDITION,
         "Cannot transition to requested config. It is only legal to "
         "transition from one ModelConfigList to another."),
    ]
    for text, code, message in cases:
      with self.subTest(message=message):
        self.assert_error(reload(text), code, message)
        self.assertEqual(core.config, old)
        self.assertEqual(self.lookup(core, "a")[0], 1)

  def test_empty_config_takes_no_action(self):
    core = ServerCore.create(
        test_util.options(model_server_config_pb2.ModelServerConfig()))
    self.addCleanup(core.stop)
    self.write("a", 1)
    core.reload_config(self.config(["a"]))
    self.assertEqual(self.lookup(core, "a")[0], 1)

  # -------------------------------------------------------------- labels

  def labels(self, **labels):
    return {
        "a": "".join(f'version_labels {{ key: "{k}" value: {v} }}'
                     for k, v in labels.items()) +
             " model_version_policy { all {} }"
    }

  def test_labels(self):
    self.write("a", 1)
    self.write("a", 2)
    core = self.create(["a"], {"a": "model_version_policy { all {} }"})
    self.wait_available(core, "a", 1, 2)
    core.reload_config(self.config(["a"], self.labels(stable=1, canary=2)))
    self.assertEqual(self.lookup(core, "a", label="stable")[0], 1)
    self.assertEqual(self.lookup(core, "a", label="canary")[0], 2)
    self.assertEqual(core.get_model_version_for_label("a", "canary"), 2)

  def test_label_at_missing_version_rejected_old_labels_stay(self):
    self.write("a", 1)
    core = self.create(["a"], {"a": "model_version_policy { all {} }"})
    core.reload_config(self.config(["a"], self.labels(stable=1)))
    old = core.config
    self.assert_error(
        lambda: core.reload_config(self.config(["a"], self.labels(stable=9))),
        status.Code.FAILED_PRECONDITION,
        "Request to assign label to version 9 of model a, which is not "
        "currently available for inference")
    self.assertEqual(core.config, old)
    self.assertEqual(self.lookup(core, "a", label="stable")[0], 1)

  def test_labels_at_startup_apply_once_models_load(self):
    self.write("a", 1)
    core = ServerCore.create(
        test_util.options(self.config(["a"], self.labels(stable=1))))
    self.addCleanup(core.stop)
    self.assertEqual(self.lookup(core, "a", label="stable")[0], 1)

  def test_startup_label_at_missing_version_fails(self):
    self.write("a", 1)
    with self.assertRaises(status.ServingError) as cm:
      core = ServerCore.create(
          test_util.options(self.config(["a"], self.labels(stable=9))))
      core.stop()
    self.assertEqual(cm.exception.code, status.Code.FAILED_PRECONDITION)
    self.assertIn("version 9 of model a", cm.exception.message)

  def test_unavailable_flag_allows_only_new_labels(self):
    self.write("a", 1)
    core = self.create(["a"], {"a": "model_version_policy { all {} }"},
                       allow_version_labels_for_unavailable_models=True)
    core.reload_config(self.config(["a"], self.labels(stable=1, next=2)))
    self.assert_error(lambda: core.get_servable_handle(spec("a", label="next")),
                      status.Code.NOT_FOUND,
                      "Servable not found for request: Specific(a, 2)")
    # Moving an existing label to an unloaded version is still refused.
    self.assert_error(
        lambda: core.reload_config(
            self.config(["a"], self.labels(stable=2, next=2))),
        status.Code.FAILED_PRECONDITION,
        "Request to assign label to version 2 of model a, which is not "
        "currently available for inference")
    # Once version 2 is loaded, the label can move.
    self.write("a", 2)
    reached, _ = self.wait_state(core, "a", 2, ManagerState.AVAILABLE)
    self.assertTrue(reached)
    core.reload_config(self.config(["a"], self.labels(stable=2, next=2)))
    self.assertEqual(self.lookup(core, "a", label="stable")[0], 2)

  def test_labels_not_allowed(self):
    self.write("a", 1)
    core = self.create(["a"], allow_version_labels=False)
    self.assert_error(lambda: core.get_servable_handle(spec("a", label="x")),
                      status.Code.INVALID_ARGUMENT,
                      "ModelSpec has 'version_label' set, but it is not "
                      "currently allowed by the server.")

  # --------------------------------------------------------- concurrency

  def test_eight_threads_while_versions_roll(self):
    tracking = test_util.TrackingHashmapSourceAdapter()
    self.write("a", 1)
    core = self.create(["a"],
                       platform=test_util.TRACKED_HASHMAP_PLATFORM,
                       tracking_adapter=tracking,
                       num_load_threads=1,
                       num_unload_threads=1)
    stop = threading.Event()
    failures = []
    counts = [0] * 8

    def worker(i):
      last = 0
      while not stop.is_set() and counts[i] < 100_000:
        try:
          with core.get_servable_handle(spec("a")) as handle:
            if tracking.is_unloaded(handle.id):
              failures.append(f"got unloaded {handle.id}")
            if int(handle.servable["version"]) != handle.id.version:
              failures.append(f"wrong data for {handle.id}")
            if handle.id.version < last:
              failures.append(f"went back to {handle.id}")
            last = handle.id.version
            if tracking.is_unloaded(handle.id):
              failures.append(f"{handle.id} unloaded while held")
        except status.ServingError as e:
          failures.append(str(e))
        counts[i] += 1

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(8)]
    for t in threads:
      t.start()
    try:
      for version in (2, 3):
        self.write("a", version)
        reached, _ = self.wait_state(core, "a", version - 1, ManagerState.END)
        self.assertTrue(reached)
    finally:
      stop.set()
      for t in threads:
        t.join()
    self.assertEqual(failures, [])
    self.assertTrue(all(counts))
    self.assertEqual(core.list_available_servable_ids(), [ServableId("a", 3)])

  # ----------------------------------------------------------- readiness

  def test_readiness_follows_every_configured_model(self):
    self.write("a", 1)
    core = self.create(["a"])
    changes = []
    core.add_readiness_listener(changes.append)
    self.assertTrue(core.is_ready())
    self.assertTrue(core.is_live())
    self.assertEqual(changes, [True])
    # A reload that adds a model whose base path has no version yet: not
    # ready while it waits, ready once the version is there and loads.
    thread = threading.Thread(
        target=core.reload_config, args=(self.config(["a", "late"]),))
    thread.start()
    deadline = time.monotonic() + WAIT
    while core.is_ready():
      self.assertLess(time.monotonic(), deadline)
      time.sleep(0.005)
    self.assertEqual(changes, [True, False])
    self.assertEqual(self.lookup(core, "a")[0], 1)  # "a" still serves.
    self.write("late", 2)
    thread.join(WAIT)
    self.assertFalse(thread.is_alive())
    self.assertTrue(core.is_ready())
    self.assertEqual(changes, [True, False, True])
    # A model removed from the config no longer counts.
    core.reload_config(self.config(["a"]))
    self.assertTrue(core.is_ready())

  def test_a_failed_model_keeps_the_server_not_ready(self):
    self.write("a", 1)
    core = self.create(["a"])
    os.makedirs(os.path.join(self.base("bad"), "1"))  # No hashmap file.
    with self.assertRaises(status.ServingError):
      core.reload_config(self.config(["a", "bad"]))
    self.assertFalse(core.is_ready())
    core.reload_config(self.config(["a"]))
    self.assertTrue(core.is_ready())

  def test_not_ready_from_the_first_moment_of_a_shutdown(self):
    self.write("a", 1)
    core = self.create(["a"])
    changes = []
    core.add_readiness_listener(changes.append)
    core.begin_shutdown()
    self.assertFalse(core.is_ready())
    self.assertTrue(core.is_live())
    self.assertEqual(self.lookup(core, "a")[0], 1)  # Still serving.
    # Versions coming and going do not make it ready again.
    self.write("a", 2)
    self.wait_available(core, "a", 2)
    self.assertFalse(core.is_ready())
    core.stop()
    self.assertFalse(core.is_live())
    self.assertEqual(changes, [True, False])

  def test_empty_config_is_ready(self):
    core = ServerCore.create(test_util.options(
        model_server_config_pb2.ModelServerConfig()))
    self.addCleanup(core.stop)
    self.assertTrue(core.is_ready())

  # ---------------------------------------------- load and unload by name

  def test_unload_and_load_one_model(self):
    self.write("a", 1)
    self.write("b", 1)
    core = self.create(["a", "b"], {"a": "version_labels { key: 'x' value: 1 }"})
    core.unload_model("a")
    # Unloaded when the call returns; "b" untouched.
    self.assertEqual(
        core.servable_state_monitor.get_state(
            ServableId("a", 1)).manager_state, ManagerState.END)
    self.assert_error(lambda: core.get_servable_handle(spec("a")),
                      status.Code.NOT_FOUND,
                      "Servable not found for request: Latest(a)")
    self.assertEqual(self.lookup(core, "b")[0], 1)
    self.assertEqual([m.name for m in core.config.model_config_list.config],
                     ["b"])
    self.assertEqual(list(core.unloaded_model_configs()), ["a"])
    self.assertTrue(core.is_ready())  # "a" is not configured any more.
    core.unload_model("a")  # Again: nothing to do.
    # Loading by name brings back its entry, label included.
    core.load_model("a")
    self.assertEqual(self.lookup(core, "a", label="x")[0], 1)
    self.assertEqual([m.name for m in core.config.model_config_list.config],
                     ["b", "a"])
    self.assertEqual(core.unloaded_model_configs(), {})
    core.load_model("a")  # Already serving: returns at once.

  def test_load_adds_a_model_or_changes_its_base_path(self):
    self.write("a", 1)
    core = self.create(["a"])
    self.write("new", 3)
    core.load_model("new", base_path=self.base("new"),
                    model_platform=test_util.HASHMAP_PLATFORM)
    self.assertEqual(self.lookup(core, "new")[0], 3)  # Waited for.
    self.assertEqual(self.lookup(core, "a")[0], 1)
    # Another base path for "a": its versions there replace the old ones.
    hashmap_test_util.write_version(self.base("a2"), 5, {"from": "a2"})
    core.load_model("a", base_path=self.base("a2"))
    self.wait_available(core, "a", 5)
    self.assertEqual(self.lookup(core, "a"), (5, {"from": "a2"}))
    entry = core.config.model_config_list.config[0]
    self.assertEqual((entry.name, entry.base_path), ("a", self.base("a2")))

  def test_load_and_unload_errors(self):
    self.write("a", 1)
    core = self.create(["a"])
    self.assert_error(lambda: core.load_model("nope"), status.Code.NOT_FOUND,
                      "Model nope is not in the model configuration; give "
                      "its base_path to add it")
    self.assert_error(lambda: core.unload_model("nope"), status.Code.NOT_FOUND,
                      "Model nope is not in the model configuration")
    self.assert_error(
        lambda: core.load_model("a", model_platform="other"),
        status.Code.INVALID_ARGUMENT,
        "Illegal to change a model's platform. For model a platform was "
        "hashmap and new platform requested is other")
    # A model whose base path has nothing yet: the load gives up at the
    # deadline, and the model stays configured and loads later.
    with self.assertRaises(status.ServingError) as cm:
      core.load_model("late", base_path=self.base("late"),
                      model_platform=test_util.HASHMAP_PLATFORM,
                      deadline=time.monotonic() + 0.2)
    self.assertEqual(cm.exception.code, status.Code.DEADLINE_EXCEEDED)
    self.assertFalse(core.is_ready())
    self.write("late", 1)
    self.wait_available(core, "late", 1)
    self.assertTrue(core.is_ready())
    self.assertEqual(self.lookup(core, "a")[0], 1)

  def test_a_model_removed_by_a_reload_can_be_loaded_by_name(self):
    self.write("a", 1)
    self.write("b", 2)
    core = self.create(["a", "b"])
    core.reload_config(self.config(["a"]))
    self.assertEqual(list(core.unloaded_model_configs()), ["b"])
    core.load_model("b")
    self.assertEqual(self.lookup(core, "b")[0], 2)

  def test_stop_unloads_everything(self):
    self.write("a", 1)
    core = self.create(["a"])
    core.stop()
    self.assertEqual(
        core.servable_state_monitor.get_state(ServableId("a", 1)).manager_state,
        ManagerState.END)
    self.assertEqual(core.list_available_servable_ids(), [])
    core.stop()  # Idempotent.


if __name__ == "__main__":
  absltest.main()
