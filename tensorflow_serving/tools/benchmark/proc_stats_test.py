"""Tests for proc_stats: /proc/<pid>/stat parsing and process-tree CPU."""

import os
import subprocess
import sys
import time

from absl.testing import absltest

from tensorflow_serving.tools.benchmark import proc_stats


class ProcStatsTest(absltest.TestCase):

  def test_parse_stat_survives_odd_command_names(self):
    # Fields 14-17 are utime, stime, cutime, cstime; the name has ") (".
    text = ("123 (a) (b c) S 7 123 123 0 -1 4194560 100 0 0 0 "
            "250 40 3 2 20 0 1 0 100 0 0")
    self.assertEqual(proc_stats.parse_stat(text), {
        "ppid": 7, "utime": 250, "stime": 40, "cutime": 3, "cstime": 2})

  def test_descendants(self):
    stats = {
        1: {"ppid": 0}, 10: {"ppid": 1}, 11: {"ppid": 10}, 12: {"ppid": 11},
        20: {"ppid": 1}, 30: {"ppid": 99},
    }
    self.assertCountEqual(proc_stats.descendants(10, stats), [11, 12])
    self.assertCountEqual(proc_stats.descendants(1, stats), [10, 11, 12, 20])

  def test_sample_counts_a_busy_child(self):
    # A child of this process burns CPU; sampling our pid includes it.
    child = subprocess.Popen(
        [sys.executable, "-c",
         "import time\nend = time.process_time() + 0.3\n"
         "while time.process_time() < end: pass\n"
         "import sys; sys.stdin.read()"],
        stdin=subprocess.PIPE)
    self.addCleanup(child.wait)
    self.addCleanup(child.stdin.close)
    deadline = time.monotonic() + 30
    while proc_stats.sample(child.pid).total < 0.25:
      self.assertLess(time.monotonic(), deadline)
      time.sleep(0.05)
    own = proc_stats.sample(os.getpid())
    self.assertGreaterEqual(own.total, 0.25)
    diff = own - proc_stats.CpuSample(0.1, 0.0)
    self.assertAlmostEqual(diff.total, own.total - 0.1)

  def test_parse_proc_stat_cpu(self):
    # user nice system idle iowait irq softirq steal guest guest_nice
    text = "cpu  100 5 50 1000 20 3 2 0 40 0\ncpu0 1 2 3 4 5 6 7 8 9 0\n"
    self.assertAlmostEqual(proc_stats.parse_proc_stat_cpu(text),
                           (100 + 5 + 50 + 3 + 2) / os.sysconf("SC_CLK_TCK"))
    self.assertGreater(proc_stats.machine_busy(), 0)

  def test_parse_status_memory(self):
    text = ("Name:\tpython\nThreads:\t7\nVmRSS:\t  3000 kB\n"
            "RssAnon:\t  1000 kB\nRssFile:\t  1900 kB\nRssShmem:\t 100 kB\n")
    self.assertEqual(proc_stats.parse_status_memory(text),
                     proc_stats.MemorySample(3000 * 1024, 1000 * 1024,
                                             1900 * 1024, 7))
    own = proc_stats.memory(os.getpid())
    self.assertGreater(own.rss, 0)
    self.assertGreaterEqual(own.threads, 1)

  def test_missing_process(self):
    with self.assertRaises(OSError):
      proc_stats.sample(2**22 + 12345)


if __name__ == "__main__":
  absltest.main()
