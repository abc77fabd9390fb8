"""End to end: the upload-complete guard and storage faults on local disk.

Issue 14's items 3 and 4 (not in upstream), with the built
tensorflow_model_server in its own process, a client calling Predict over
gRPC the whole time, and real files:
  * a real copy in progress: saved_model.pb written, several poll intervals
    pass, then the variables: the half copy never enters an error state,
    never replaces the serving version, and loads once complete;
  * --version_ready_marker: a complete copy waits for its marker;
  * the base path renamed away and back: the loaded version keeps serving,
    the outage is logged once and the recovery once, polling goes on.
"""

import os
import shutil
import time

from absl.testing import absltest

from tensorflow_serving.apis import get_model_status_pb2
from tensorflow_serving.model_servers.test_util import model_server_process
from tensorflow_serving.model_servers.test_util import predict_loop
from tensorflow_serving.servables.tensorflow.test_util import half_plus_two

_POLL = 1  # --file_system_poll_wait_seconds


class StorageFaultsTest(absltest.TestCase):

  def setUp(self):
    super().setUp()
    self.base = os.path.join(half_plus_two.fresh_dir("faults"), "half")
    self.exports = half_plus_two.fresh_dir("exports")

  def export(self, version: int) -> str:
    return half_plus_two.write_tf1(os.path.join(self.exports, str(version)))

  def start(self, *args):
    port = model_server_process.free_port()
    server = model_server_process.ModelServerProcess(
        [f"--port={port}", "--model_name=half",
         f"--model_base_path={self.base}",
         f"--file_system_poll_wait_seconds={_POLL}", *args])
    self.addCleanup(server.kill)
    server.start()
    address = f"localhost:{port}"
    loop = predict_loop.PredictLoop(address)
    loop.start()
    self.addCleanup(loop.stop)
    return server, address, loop

  def versions_known(self, address: str) -> dict[int, str]:
    return {
        version: get_model_status_pb2.ModelVersionStatus.State.Name(s.state)
        for version, s in predict_loop.model_version_statuses(address).items()
    }

  def assert_clean(self, server, loop, expected_versions):
    loop.stop()
    versions, failures = loop.snapshot()
    self.assertEmpty(failures, server.log()[-4000:])
    self.assertEqual(set(versions), expected_versions)
    self.assertEqual(versions, sorted(versions))
    self.assertEqual(server.stop(), 0)

  def test_copy_in_progress_loads_only_once_complete(self):
    shutil.copytree(self.export(1), os.path.join(self.base, "1"))
    server, address, loop = self.start()
    v2 = self.export(2)
    target = os.path.join(self.base, "2")
    os.makedirs(target)
    shutil.copy(os.path.join(v2, "saved_model.pb"), target)
    predict_loop.wait_for("the guard", lambda: (
        f"Version 2 of servable half at {target} is not complete "
        "(no variables/ directory yet)") in server.log())
    time.sleep(4 * _POLL)  # Several poll intervals with the half copy.
    self.assertEqual(self.versions_known(address), {1: "AVAILABLE"})
    shutil.copytree(os.path.join(v2, "variables"),
                    os.path.join(target, "variables"))
    loop.wait_for_version(2)
    self.assertNotIn("version 2} failed", server.log())
    self.assertIn(f"Version 2 of servable half at {target} is complete",
                  server.log())
    self.assert_clean(server, loop, {1, 2})

  def test_ready_marker(self):
    shutil.copytree(self.export(1), os.path.join(self.base, "1"))
    open(os.path.join(self.base, "1", "READY"), "w").close()
    server, address, loop = self.start("--version_ready_marker=READY")
    shutil.copytree(self.export(2), os.path.join(self.base, "2"))
    predict_loop.wait_for("the guard", lambda: (
        "is not complete (no ready marker READY yet)") in server.log())
    time.sleep(3 * _POLL)
    self.assertEqual(self.versions_known(address), {1: "AVAILABLE"})
    open(os.path.join(self.base, "2", "READY"), "w").close()
    loop.wait_for_version(2)
    self.assert_clean(server, loop, {1, 2})

  def test_base_path_renamed_away_and_back(self):
    shutil.copytree(self.export(1), os.path.join(self.base, "1"))
    server, address, loop = self.start()
    away = self.base + ".away"
    os.rename(self.base, away)
    predict_loop.wait_for("the outage",
                          lambda: "filesystem access error" in server.log())
    time.sleep(4 * _POLL)
    self.assertEqual(self.versions_known(address), {1: "AVAILABLE"})
    os.rename(away, self.base)
    predict_loop.wait_for("the recovery",
                          lambda: "can be listed again" in server.log())
    shutil.copytree(self.export(2), os.path.join(self.base, "2"))
    loop.wait_for_version(2)
    log = server.log()
    self.assertEqual(log.count("filesystem access error"), 1)
    self.assertEqual(log.count("keeps its loaded versions"), 1)
    self.assertEqual(log.count("can be listed again"), 1)
    self.assert_clean(server, loop, {1, 2})


if __name__ == "__main__":
  absltest.main()
