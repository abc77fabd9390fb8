"""Real object-store emulators on loopback ports, started and stopped by tests.

S3Emulator runs moto's server (the S3 API; pinned in tools/requirements.txt)
and GcsEmulator runs gcp-storage-emulator (the GCS JSON API, storing on disk
so that a restart keeps the objects), each as a subprocess of the test on a
free 127.0.0.1 port. env() gives the variables a server (or any AWS / Google
tool) needs to use them: endpoint, dummy credentials, and the settings that
keep the client libraries from looking for cloud metadata servers, which do
not exist here. pause()/resume() freeze the emulator (SIGSTOP/SIGCONT: it
accepts connections but never answers); stop()/start() make it refuse them.
"""

import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from typing import Optional

_START_TIMEOUT = 60.0


def free_port() -> int:
  with socket.socket() as s:
    s.bind(("127.0.0.1", 0))
    return s.getsockname()[1]


def _closed_port() -> int:
  """A loopback port nobody listens on (for metadata-server variables)."""
  return free_port()


class _Emulator:
  """A subprocess listening on 127.0.0.1:port, with a log file."""

  def __init__(self, name: str, port: Optional[int] = None) -> None:
    self.name = name
    self.port = port or free_port()
    self.workdir = tempfile.mkdtemp(prefix=name + "_",
                                    dir=os.environ.get("TEST_TMPDIR"))
    self.log_path = os.path.join(
        os.environ.get("TEST_UNDECLARED_OUTPUTS_DIR", self.workdir),
        f"{name}_{self.port}.log")
    self.process: Optional[subprocess.Popen] = None

  @property
  def url(self) -> str:
    return f"http://127.0.0.1:{self.port}"

  def command(self) -> list[str]:
    raise NotImplementedError

  def start(self) -> None:
    """Starts the emulator; returns once it accepts connections."""
    log = open(self.log_path, "a")  # pylint: disable=consider-using-with
    self.process = subprocess.Popen(  # pylint: disable=consider-using-with
        self.command(), cwd=self.workdir, stdout=log, stderr=subprocess.STDOUT,
        start_new_session=True)
    log.close()
    deadline = time.monotonic() + _START_TIMEOUT
    while time.monotonic() < deadline:
      if self.process.poll() is not None:
        raise RuntimeError(f"{self.name} exited with "
                           f"{self.process.returncode}: {self.log()[-3000:]}")
      try:
        with socket.create_connection(("127.0.0.1", self.port), timeout=1):
          return
      except OSError:
        time.sleep(0.1)
    self.stop()
    raise RuntimeError(f"{self.name} did not listen on {self.port} within "
                       f"{_START_TIMEOUT:g} s: {self.log()[-3000:]}")

  def log(self) -> str:
    try:
      with open(self.log_path, errors="replace") as f:
        return f.read()
    except OSError:
      return ""

  def pause(self) -> None:
    """Freezes the process: connections hang instead of failing."""
    os.killpg(self.process.pid, signal.SIGSTOP)

  def resume(self) -> None:
    os.killpg(self.process.pid, signal.SIGCONT)

  def stop(self) -> None:
    """Stops the process (idempotent): connections are refused."""
    if self.process is None:
      return
    if self.process.poll() is None:
      try:
        os.killpg(self.process.pid, signal.SIGCONT)
        os.killpg(self.process.pid, signal.SIGTERM)
        self.process.wait(10)
      except subprocess.TimeoutExpired:
        os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(10)
      except ProcessLookupError:
        pass
    self.process = None


class S3Emulator(_Emulator):
  """moto's S3 server. Objects live in its memory: a restart loses them."""

  ACCESS_KEY = "testing"
  SECRET_KEY = "testing"
  REGION = "us-east-1"

  def __init__(self, port: Optional[int] = None) -> None:
    super().__init__("moto_s3", port)

  def command(self) -> list[str]:
    return [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p",
            str(self.port)]

  def env(self, endpoint: Optional[str] = None) -> dict[str, str]:
    """What a client needs to use this emulator (or `endpoint` for it)."""
    return {
        "AWS_ENDPOINT_URL_S3": endpoint or self.url,
        "AWS_ACCESS_KEY_ID": self.ACCESS_KEY,
        "AWS_SECRET_ACCESS_KEY": self.SECRET_KEY,
        "AWS_DEFAULT_REGION": self.REGION,
        # No instance-metadata look-ups (169.254.169.254 is not ours).
        "AWS_EC2_METADATA_DISABLED": "true",
        "AWS_CONFIG_FILE": os.devnull,
        "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
    }

  def client(self):
    """A boto3 S3 client of the test's own, for buckets and uploads."""
    import boto3  # pylint: disable=g-import-not-at-top
    return boto3.session.Session(
        aws_access_key_id=self.ACCESS_KEY,
        aws_secret_access_key=self.SECRET_KEY,
        region_name=self.REGION).client("s3", endpoint_url=self.url)


class GcsEmulator(_Emulator):
  """gcp-storage-emulator, storing under its work dir (kept over restarts)."""

  PROJECT = "test-project"

  def __init__(self, port: Optional[int] = None) -> None:
    super().__init__("gcs_emulator", port)

  def command(self) -> list[str]:
    return [sys.executable, "-m", "gcp_storage_emulator", "start", "--host",
            "127.0.0.1", "--port", str(self.port), "--quiet"]

  def env(self, endpoint: Optional[str] = None) -> dict[str, str]:
    """What a client needs to use this emulator (or `endpoint` for it)."""
    metadata = f"127.0.0.1:{_closed_port()}"
    return {
        "STORAGE_EMULATOR_HOST": endpoint or self.url,
        "GOOGLE_CLOUD_PROJECT": self.PROJECT,
        # No metadata-server look-ups (169.254.169.254 is not ours).
        "GCE_METADATA_HOST": metadata,
        "GCE_METADATA_IP": metadata,
        "NO_GCE_CHECK": "True",
    }

  def client(self):
    """A google-cloud-storage client of the test's own."""
    from google.auth import credentials  # pylint: disable=g-import-not-at-top
    from google.cloud import storage  # pylint: disable=g-import-not-at-top
    return storage.Client(
        project=self.PROJECT,
        credentials=credentials.AnonymousCredentials(),
        client_options={"api_endpoint": self.url})


def upload_tree(put, local_dir: str, prefix: str) -> list[str]:
  """Uploads every file under local_dir as prefix/<relative path>.

  `put(key, local_path)` does one upload; returns the keys in upload order
  (saved_model.pb last, so that a reader never sees a complete-looking
  half).
  """
  keys = []
  for root, _, files in os.walk(local_dir):
    for name in files:
      full = os.path.join(root, name)
      rel = os.path.relpath(full, local_dir).replace(os.sep, "/")
      keys.append((rel.startswith("saved_model."), rel, full))
  keys.sort()
  uploaded = []
  for _, rel, full in keys:
    key = prefix.rstrip("/") + "/" + rel
    put(key, full)
    uploaded.append(key)
  return uploaded
