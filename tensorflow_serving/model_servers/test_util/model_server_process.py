"""Runs the built tensorflow_model_server binary as a subprocess, for tests.

Tests of the command line (flags, exit codes, signals) need the real binary
in its own process: ModelServerProcess starts it with a log file, waits for
its "Running gRPC ModelServer" line, and stops it with a signal. The binary
must be in the test's `data` (//tensorflow_serving/model_servers:
tensorflow_model_server).
"""

import os
import signal
import socket
import subprocess
import tempfile
import time
from typing import Optional, Sequence

_WORKSPACE = "tf_serving"
# Starting the binary imports TensorFlow and loads the models: on a busy
# 2-core machine that can take a while.
DEFAULT_START_TIMEOUT = 180.0


def binary_path() -> str:
  """Path of the built tensorflow_model_server in this test's runfiles."""
  root = os.path.join(os.environ["TEST_SRCDIR"],
                      os.environ.get("TEST_WORKSPACE", _WORKSPACE))
  path = os.path.join(root, "tensorflow_serving", "model_servers",
                      "tensorflow_model_server")
  if not os.path.exists(path):
    raise FileNotFoundError(
        f"{path} is missing: add //tensorflow_serving/model_servers:"
        "tensorflow_model_server to the test's data")
  return path


def free_port() -> int:
  """A TCP port that nothing listens on right now."""
  with socket.socket() as s:
    s.bind(("localhost", 0))
    return s.getsockname()[1]


def run(args: Sequence[str], timeout: float = 120.0
        ) -> subprocess.CompletedProcess:
  """Runs the binary to completion (for --version, --help, startup errors)."""
  return subprocess.run([binary_path(), *args], stdout=subprocess.PIPE,
                        stderr=subprocess.PIPE, text=True, timeout=timeout,
                        check=False)


class ModelServerProcess:
  """One tensorflow_model_server process and its log (stdout + stderr)."""

  def __init__(self, args: Sequence[str], log_dir: Optional[str] = None,
               env: Optional[dict[str, str]] = None):
    """`env`: variables added to this process's environment for the server."""
    self.args = [binary_path(), *args]
    self.env = {**os.environ, **(env or {})}
    log_dir = log_dir or os.environ.get("TEST_UNDECLARED_OUTPUTS_DIR") or (
        tempfile.mkdtemp())
    fd, self.log_path = tempfile.mkstemp(prefix="model_server_", suffix=".log",
                                         dir=log_dir)
    os.close(fd)
    self.process: Optional[subprocess.Popen] = None

  def log(self) -> str:
    with open(self.log_path, errors="replace") as f:
      return f.read()

  def start(self, ready_text: str = "Running gRPC ModelServer at",
            timeout: float = DEFAULT_START_TIMEOUT) -> None:
    """Starts the server; returns once its log contains ready_text.

    Raises:
      RuntimeError: the process exited first or timed out (with the log).
    """
    with open(self.log_path, "w") as log:
      self.process = subprocess.Popen(  # pylint: disable=consider-using-with
          self.args, stdout=log, stderr=subprocess.STDOUT,
          start_new_session=True, env=self.env)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
      if ready_text in self.log():
        return
      if self.process.poll() is not None:
        raise RuntimeError(
            f"tensorflow_model_server exited with {self.process.returncode} "
            f"before logging {ready_text!r}:\n{self.log()[-6000:]}")
      time.sleep(0.1)
    self.kill()
    raise RuntimeError(f"tensorflow_model_server did not log {ready_text!r} "
                       f"within {timeout:g} s:\n{self.log()[-6000:]}")

  def stop(self, sig: int = signal.SIGTERM, timeout: float = 60.0) -> int:
    """Sends sig and waits; returns the exit code (kills it on timeout)."""
    if self.process is None:
      return 0
    if self.process.poll() is None:
      self.process.send_signal(sig)
      try:
        self.process.wait(timeout)
      except subprocess.TimeoutExpired:
        self.kill()
        raise
    return self.process.returncode

  def kill(self) -> None:
    """SIGKILLs the process group, if still running (cleanup)."""
    if self.process is not None and self.process.poll() is None:
      os.killpg(self.process.pid, signal.SIGKILL)
      self.process.wait(30)
