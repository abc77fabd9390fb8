"""End to end: a corrupt version, kill -9, and signals during start-up.

Issue 17, item 4, with the built tensorflow_model_server in its own process
and clients calling it over real sockets the whole time:
  * versions 1 -> 2 (corrupt: its variables file cut in half) -> 3 while a
    client calls Predict back to back: no request fails, version 2's load
    error shows in GetModelStatus, version 3 ends up serving;
  * kill -9 under load, then the same command again: it serves again over
    TCP, its Unix socket and REST, with no manual step (the stale socket
    file is replaced; the server keeps no lock files);
  * SIGTERM or SIGINT while the server is starting (importing TensorFlow,
    or waiting for a model that has no version yet) makes it exit 0 at once.
"""

import json
import os
import shutil
import signal
import subprocess
import tempfile
import time
import urllib.request

from absl.testing import absltest
import grpc

from tensorflow_serving.apis import get_model_status_pb2
from tensorflow_serving.apis import prediction_service_pb2_grpc
from tensorflow_serving.model_servers.test_util import model_server_process
from tensorflow_serving.model_servers.test_util import predict_loop
from tensorflow_serving.servables.tensorflow.test_util import half_plus_two

State = get_model_status_pb2.ModelVersionStatus.State
_PAUSE = 0.005  # Between a client's calls: as close to back to back as is fair.


class CorruptVersionTest(absltest.TestCase):

  def test_corrupt_version_between_good_ones_under_load(self):
    exports = half_plus_two.fresh_dir("exports")
    good = half_plus_two.write_tf1(os.path.join(exports, "good"))
    base = os.path.join(half_plus_two.fresh_dir("corrupt"), "half")
    shutil.copytree(good, os.path.join(base, "1"))
    port = model_server_process.free_port()
    server = model_server_process.ModelServerProcess([
        f"--port={port}", "--model_name=half", f"--model_base_path={base}",
        "--file_system_poll_wait_seconds=1", "--max_num_load_retries=1",
        "--load_retry_interval_micros=100000"
    ])
    self.addCleanup(server.kill)
    server.start()
    target = f"localhost:{port}"
    loop = predict_loop.PredictLoop(target, pause_seconds=_PAUSE)
    loop.start()
    self.addCleanup(loop.stop)
    loop.wait_for_answers(20)  # From version 1.

    # Version 2: a complete-looking copy whose variables are cut in half.
    staging = os.path.join(exports, "2")
    shutil.copytree(good, staging)
    data = os.path.join(staging, "variables",
                        "variables.data-00000-of-00001")
    size = os.path.getsize(data)
    with open(data, "r+b") as f:
      f.truncate(size // 2)
    os.rename(staging, os.path.join(base, "2"))

    def v2_failed():
      status = predict_loop.model_version_statuses(target).get(2)
      return (status is not None and status.state == State.END and
              status.status.error_code != 0)

    predict_loop.wait_for("version 2 to fail its load", v2_failed)
    self.assertEqual(predict_loop.model_version_statuses(target)[1].state,
                     State.AVAILABLE)
    shutil.copytree(good, os.path.join(base, "3"))
    loop.wait_for_version(3)
    loop.wait_for_answers(20)
    loop.stop()

    versions, failures = loop.snapshot()
    self.assertEmpty(failures, server.log()[-4000:])
    self.assertEqual(set(versions), {1, 3})
    self.assertEqual(versions, sorted(versions))
    statuses = predict_loop.model_version_statuses(target)
    self.assertEqual(statuses[3].state, State.AVAILABLE)
    self.assertEqual(statuses[2].state, State.END)
    self.assertNotEqual(statuses[2].status.error_code, 0)
    self.assertNotEmpty(statuses[2].status.error_message)
    self.assertEqual(server.stop(), 0)


class KillAndRestartTest(absltest.TestCase):

  def test_kill_9_under_load_then_restart_serves_again(self):
    base = os.path.join(half_plus_two.fresh_dir("kill9"), "half")
    half_plus_two.write_tf1(os.path.join(base, "1"))
    port = model_server_process.free_port()
    rest_port = model_server_process.free_port()
    # Not under the test's temporary directory: a socket path has at most
    # 107 characters.
    socket_dir = tempfile.mkdtemp(prefix="tfs_kill9_", dir="/tmp")
    self.addCleanup(shutil.rmtree, socket_dir, ignore_errors=True)
    socket_path = os.path.join(socket_dir, "tfs.sock")
    args = [
        f"--port={port}", f"--rest_api_port={rest_port}",
        f"--grpc_socket_path={socket_path}", "--model_name=half",
        f"--model_base_path={base}"
    ]
    first = model_server_process.ModelServerProcess(args)
    self.addCleanup(first.kill)
    first.start()
    loops = [
        predict_loop.PredictLoop(target, pause_seconds=_PAUSE)
        for target in (f"localhost:{port}", f"unix:{socket_path}")
    ]
    for loop in loops:
      loop.start()
      self.addCleanup(loop.stop)
    for loop in loops:
      loop.wait_for_answers(20)
    first.kill()  # SIGKILL: no drain, nothing cleaned up.
    for loop in loops:
      loop.stop()
    self.assertTrue(os.path.exists(socket_path), "the socket file is left")
    leftovers = set(os.listdir(os.path.dirname(socket_path)))

    second = model_server_process.ModelServerProcess(args)
    self.addCleanup(second.kill)
    second.start()
    for target in (f"localhost:{port}", f"unix:{socket_path}"):
      with grpc.insecure_channel(target) as channel:
        response = prediction_service_pb2_grpc.PredictionServiceStub(
            channel).Predict(predict_loop.half_plus_two_request(), timeout=30)
      self.assertEqual(list(response.outputs["y"].float_val), [2.5])
    body = json.dumps({"instances": [[1.0]]}).encode()
    with urllib.request.urlopen(
        f"http://localhost:{rest_port}/v1/models/half:predict", data=body,
        timeout=30) as reply:
      self.assertEqual(json.load(reply), {"predictions": [[2.5]]})
    # Nothing but the socket itself was left by the killed server.
    self.assertEqual(leftovers, {"tfs.sock"})
    self.assertEqual(second.stop(), 0)


def _catches_sigterm(pid: int) -> bool:
  """Whether the process has a SIGTERM handler (SigCgt in /proc)."""
  with open(f"/proc/{pid}/cmdline", "rb") as f:
    if b"model_servers/main.py" not in f.read():
      return False
  with open(f"/proc/{pid}/status") as f:
    for line in f:
      if line.startswith("SigCgt:"):
        return bool(int(line.split()[1], 16) & (1 << (signal.SIGTERM - 1)))
  return False


class SignalDuringStartupTest(absltest.TestCase):

  def test_signal_while_waiting_for_the_model_exits_0_at_once(self):
    for sig in (signal.SIGTERM, signal.SIGINT):
      empty = half_plus_two.fresh_dir("no_versions")
      server = model_server_process.ModelServerProcess([
          f"--port={model_server_process.free_port()}", "--model_name=half",
          f"--model_base_path={empty}", "--file_system_poll_wait_seconds=1"
      ])
      self.addCleanup(server.kill)
      # Up to here it imported TensorFlow and is now waiting for a version.
      server.start(ready_text="No versions of servable half found")
      start = time.monotonic()
      self.assertEqual(server.stop(sig, timeout=30), 0, server.log()[-3000:])
      self.assertLess(time.monotonic() - start, 10.0)
      self.assertIn(f"Received {signal.Signals(sig).name} during start-up",
                    server.log())

  def test_signal_while_importing_exits_0(self):
    empty = half_plus_two.fresh_dir("no_versions_early")
    process = subprocess.Popen(  # pylint: disable=consider-using-with
        [model_server_process.binary_path(),
         f"--port={model_server_process.free_port()}", "--model_name=half",
         f"--model_base_path={empty}"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        start_new_session=True)
    self.addCleanup(lambda: process.poll() is None and os.killpg(
        process.pid, signal.SIGKILL))
    # Once the server's own Python (main.py, exec'd by Bazel's launcher)
    # catches SIGTERM, its first lines have run; TensorFlow then takes
    # seconds to import: signal it then.
    deadline = time.monotonic() + 60
    while not _catches_sigterm(process.pid):
      self.assertLess(time.monotonic(), deadline)
      time.sleep(0.005)
    process.send_signal(signal.SIGTERM)
    output, _ = process.communicate(timeout=60)
    output = output.decode(errors="replace")
    self.assertEqual(process.returncode, 0, output[-3000:])
    self.assertIn("Received SIGTERM during start-up", output)
    # It never got as far as reading the model config.
    self.assertNotIn("Building single TensorFlow model", output)


if __name__ == "__main__":
  absltest.main()
