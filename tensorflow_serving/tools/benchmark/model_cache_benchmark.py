"""Measures ModelCache downloads of one large file from the S3 and GCS emulators.

Issue 15 asks that a multi-GB version be streamed to disk with memory
staying flat. This writes a version directory holding one --size_mb file
(random bytes, written in chunks), uploads it to moto's S3 server and to
gcp-storage-emulator (both on loopback ports, started here), then copies it
with ModelCache and prints, per store: seconds, MB/s, the peak RSS growth
of this process during the copy (Linux: VmHWM after resetting it through
/proc/self/clear_refs), and the ratio of the copy time to the client
library's own plain download of the same object (boto3 download_file,
google-cloud-storage download_to_filename) made in the same run. The
emulators, not the clients, bound the speed here. A benchmark, not a test:
run it on a quiet machine.

  bazel run -c opt //tensorflow_serving/tools/benchmark:model_cache_benchmark -- --size_mb=1024
"""

import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from typing import Sequence

from absl import app
from absl import flags
import boto3
from google.auth import credentials as google_credentials
from google.cloud import storage

from tensorflow_serving.core import servable_id as servable_id_lib
from tensorflow_serving.sources.storage_path import file_system_registry
from tensorflow_serving.sources.storage_path import model_cache

_SIZE_MB = flags.DEFINE_integer("size_mb", 512, "Size of the file, in MB.")
_THREADS = flags.DEFINE_integer("threads", 8, "--storage_download_threads")


def _start(command: list[str], cwd: str) -> tuple[subprocess.Popen, str]:
  """Starts an emulator on a free loopback port; returns it and its URL."""
  with socket.socket() as s:
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
  process = subprocess.Popen(  # pylint: disable=consider-using-with
      [sys.executable, "-m", *command, str(port)], cwd=cwd,
      stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
  for _ in range(600):
    try:
      with socket.create_connection(("127.0.0.1", port), timeout=1):
        return process, f"http://127.0.0.1:{port}"
    except OSError:
      time.sleep(0.1)
  process.kill()
  raise RuntimeError(f"{command} did not start")


def _reset_peak_rss() -> None:
  with open("/proc/self/clear_refs", "w") as f:
    f.write("5")


def _rss_mb(field: str) -> float:
  with open("/proc/self/status") as f:
    for line in f:
      if line.startswith(field + ":"):
        return int(line.split()[1]) / 1024
  raise RuntimeError(f"no {field} in /proc/self/status")


def main(argv: Sequence[str]) -> None:
  del argv
  work = tempfile.mkdtemp(prefix="model_cache_benchmark_")
  version = os.path.join(work, "model", "1", "variables")
  os.makedirs(version)
  big = os.path.join(version, "variables.data-00000-of-00001")
  chunk = os.urandom(1 << 20)
  with open(big, "wb") as f:
    for _ in range(_SIZE_MB.value):
      f.write(chunk)
  size_mb = os.path.getsize(big) / 1e6
  start = time.monotonic()
  shutil.copyfile(big, os.path.join(work, "local_copy"))
  local_seconds = time.monotonic() - start
  os.remove(os.path.join(work, "local_copy"))
  print(f"file: {size_mb:.0f} MB; local copy: {local_seconds:.2f} s "
        f"({size_mb / local_seconds:.0f} MB/s)")

  # The same emulators the tests use (tools/requirements.txt).
  moto, s3_url = _start(["moto.server", "-H", "127.0.0.1", "-p"], work)
  gcs_emulator, gcs_url = _start(
      ["gcp_storage_emulator", "start", "--host", "127.0.0.1", "--port"], work)
  try:
    os.environ.update({
        "AWS_ENDPOINT_URL_S3": s3_url, "AWS_ACCESS_KEY_ID": "bench",
        "AWS_SECRET_ACCESS_KEY": "bench", "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_EC2_METADATA_DISABLED": "true", "STORAGE_EMULATOR_HOST": gcs_url,
        "GOOGLE_CLOUD_PROJECT": "bench"})
    s3_client = boto3.client("s3")
    gcs_client = storage.Client(
        project="bench", credentials=google_credentials.AnonymousCredentials(),
        client_options={"api_endpoint": gcs_url})
    s3_client.create_bucket(Bucket="bench")
    s3_client.upload_file(big, "bench", "model/1/variables/" +
                          os.path.basename(big))
    gcs_client.create_bucket("bench").blob(
        "model/1/variables/" + os.path.basename(big)).upload_from_filename(
            big, timeout=600)
    fs = file_system_registry.SchemeFileSystem(
        file_system_registry.SchemeFileSystem.Options(timeout_seconds=120))
    key = "model/1/variables/" + os.path.basename(big)
    baselines = {
        "s3://bench/model/1":
            lambda path: s3_client.download_file("bench", key, path),
        "gs://bench/model/1":
            lambda path: gcs_client.bucket("bench").blob(
                key).download_to_filename(path, timeout=600),
    }
    for url, baseline in baselines.items():
      start = time.monotonic()
      baseline(os.path.join(work, "baseline"))
      baseline_seconds = time.monotonic() - start
      os.remove(os.path.join(work, "baseline"))
      cache = model_cache.ModelCache(
          fs, model_cache.ModelCache.Options(
              cache_dir=os.path.join(work, "cache"),
              download_threads=_THREADS.value))
      _reset_peak_rss()
      rss_before = _rss_mb("VmRSS")
      start = time.monotonic()
      local = cache.download(servable_id_lib.ServableId("model", 1), url)
      seconds = time.monotonic() - start
      rss_growth = _rss_mb("VmHWM") - rss_before
      assert os.path.getsize(os.path.join(
          local, "variables", os.path.basename(big))) == os.path.getsize(big)
      cache.close()
      print(f"{url}: {seconds:.2f} s ({size_mb / seconds:.0f} MB/s); the "
            f"client's plain download {baseline_seconds:.2f} s; ratio "
            f"{seconds / baseline_seconds:.2f}; peak RSS grew "
            f"{rss_growth:.0f} MB ({rss_growth / size_mb * 100:.1f}% of the "
            "file)")
  finally:
    moto.kill()
    gcs_emulator.kill()
    moto.wait()
    gcs_emulator.wait()
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
  app.run(main)
