"""End to end: REST bodies are bounded, one by one and all together
(issue 17, item 2).

The built tensorflow_model_server serves half_plus_two with a memory budget
of 128 MiB (--request_memory_budget_bytes) and the default
--rest_api_max_body_bytes (100 MiB). Over real sockets:

  * eight gzip bombs at once, each about 1 MB that inflates to 1 GiB, half
    of them with a gzip trailer that lies about the size: each is refused
    (413, at once for a true trailer, else once it inflates past the limit;
    or 429 when the budget stayed full), the server's resident memory
    (VmRSS, sampled every few ms from /proc) grows by less than 256 MB
    meanwhile, and a small Predict sent all along keeps being answered;
  * a plain body over the limit (Content-Length, and chunked): 413 with an
    {"error": ...} naming the flag;
  * the server keeps serving afterwards.

Without the budget the bombs would hold 8 x 100 MiB inflated at once (and
their copies); without the per-request limit, 8 GiB.
"""

import os
import threading
import time
import zlib

from absl.testing import absltest
import requests

from tensorflow_serving.model_servers.test_util import model_server_process
from tensorflow_serving.servables.tensorflow.test_util import half_plus_two

_BUDGET_BYTES = 128 << 20
_MAX_BODY_BYTES = 100 * 1024 * 1024  # The flag's default.
_BOMBS = 8
_BOMB_BYTES = 1 << 30
_MAX_GROWTH_BYTES = 256 << 20


def _gzip_bomb() -> bytes:
  """1 GiB of JSON whitespace, gzipped (about 1 MB)."""
  compressor = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
  chunk = b" " * (1 << 20)
  parts = [compressor.compress(b'{"instances": [[1.0]]')]
  for _ in range(_BOMB_BYTES // len(chunk)):
    parts.append(compressor.compress(chunk))
  parts.append(compressor.compress(b"}"))
  parts.append(compressor.flush())
  return b"".join(parts)


def _lying(bomb: bytes) -> bytes:
  """The bomb with a gzip trailer that claims 100 bytes: the server must
  then find out by inflating (charged a megabyte at a time)."""
  return bomb[:-4] + (100).to_bytes(4, "little")


def _rss_bytes(pid: int) -> int:
  with open(f"/proc/{pid}/status") as f:
    for line in f:
      if line.startswith("VmRSS:"):
        return int(line.split()[1]) * 1024
  raise AssertionError("no VmRSS")


class _RssSampler(threading.Thread):
  """Samples a process's VmRSS until stopped; keeps the largest."""

  def __init__(self, pid: int):
    super().__init__(daemon=True)
    self._pid = pid
    self._done = threading.Event()
    self.peak = 0

  def run(self):
    while not self._done.is_set():
      self.peak = max(self.peak, _rss_bytes(self._pid))
      time.sleep(0.002)

  def stop(self) -> int:
    self._done.set()
    self.join()
    return self.peak


class RestMemoryTest(absltest.TestCase):

  @classmethod
  def setUpClass(cls):
    super().setUpClass()
    base = half_plus_two.fresh_dir("rest_memory")
    half_plus_two.write_tf1(os.path.join(base, "1"))
    port = model_server_process.free_port()
    cls.rest_port = model_server_process.free_port()
    cls.server = model_server_process.ModelServerProcess([
        f"--port={port}", f"--rest_api_port={cls.rest_port}",
        "--model_name=half", f"--model_base_path={base}",
        f"--request_memory_budget_bytes={_BUDGET_BYTES}"
    ])
    cls.server.start()
    cls.url = f"http://localhost:{cls.rest_port}/v1/models/half:predict"

  @classmethod
  def tearDownClass(cls):
    cls.server.kill()
    super().tearDownClass()

  def assert_serving(self):
    response = requests.post(self.url, data=b'{"instances": [[1.0]]}',
                             timeout=30)
    self.assertEqual(response.status_code, 200, response.text)
    self.assertEqual(response.json(), {"predictions": [[2.5]]})

  def assert_refused(self, response: requests.Response, status: int,
                     *texts: str):
    self.assertEqual(response.status_code, status, response.text[:500])
    error = response.json()["error"]
    for text in texts:
      self.assertIn(text, error)

  def test_a_over_limit_plain_bodies_get_413(self):
    body = b" " * (_MAX_BODY_BYTES + 1)
    response = requests.post(self.url, data=body, timeout=60)
    self.assert_refused(response, 413, "--rest_api_max_body_bytes",
                        str(_MAX_BODY_BYTES))

    def chunks():  # No Content-Length: the limit applies as it arrives.
      for _ in range(101):
        yield b" " * (1 << 20)

    response = requests.post(self.url, data=chunks(), timeout=60)
    self.assert_refused(response, 413, "--rest_api_max_body_bytes")
    # A body at the limit is read (and then fails to parse as JSON).
    response = requests.post(self.url, data=b" " * _MAX_BODY_BYTES,
                             timeout=60)
    self.assertEqual(response.status_code, 400, response.text[:500])
    self.assert_serving()

  def test_b_gzip_bombs_stay_within_the_budget(self):
    bomb = _gzip_bomb()
    self.assertLess(len(bomb), 2 << 20)
    for _ in range(5):
      self.assert_serving()
    pid = self.server.process.pid
    baseline = _rss_bytes(pid)
    sampler = _RssSampler(pid)
    sampler.start()
    results = [None] * _BOMBS
    start = threading.Barrier(_BOMBS)

    # Half claim their true size in the gzip trailer (refused at once),
    # half lie (inflated until the limit or the budget stops them).
    bombs = [bomb if i % 2 else _lying(bomb) for i in range(_BOMBS)]

    def send(i):
      start.wait()
      results[i] = requests.post(
          self.url, data=bombs[i], timeout=120,
          headers={"Content-Encoding": "gzip",
                   "Content-Type": "application/json"})

    bombers = [threading.Thread(target=send, args=(i,)) for i in range(_BOMBS)]
    for bomber in bombers:
      bomber.start()
    good = 0
    while any(b.is_alive() for b in bombers):
      self.assert_serving()
      good += 1
    for bomber in bombers:
      bomber.join()
    peak = sampler.stop()
    statuses = sorted(r.status_code for r in results)
    print(f"bombs: {statuses}; {good} good Predicts answered meanwhile; RSS "
          f"{baseline >> 20} MiB before, peak {peak >> 20} MiB "
          f"(+{(peak - baseline) >> 20} MiB)", flush=True)
    for response in results:
      self.assertIn(response.status_code, (413, 429), response.text[:500])
      if response.status_code == 413:
        self.assert_refused(response, 413, "once inflated",
                            "--rest_api_max_body_bytes")
      else:
        self.assert_refused(response, 429, "--request_memory_budget_bytes")
    self.assertIn(413, statuses)
    self.assertGreater(good, 0)
    self.assertLess(peak - baseline, _MAX_GROWTH_BYTES)
    self.assert_serving()


if __name__ == "__main__":
  absltest.main()
