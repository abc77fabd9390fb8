"""CPU time of a server process tree, read from /proc.

On a shared machine QPS moves with whatever else runs, but the CPU a server
spends per request barely does, so the benchmark reports it: the CPU time of
the server between two samples divided by the requests completed in between.

A sample sums, for the server's pid and every live descendant process,
utime + stime (all of its threads), plus cutime + cstime of the server's pid
(children that already exited and were waited for). Descendants matter when
the server is started through a launcher or forks workers.

machine_busy() reads the whole machine's busy CPU time (/proc/stat), so
that a run can say how much of the machine other work took meanwhile.
"""

import dataclasses
import os
from typing import Iterator

_CLK_TCK = os.sysconf("SC_CLK_TCK")


@dataclasses.dataclass(frozen=True)
class CpuSample:
  """CPU seconds used so far by a process tree."""

  user: float
  system: float

  @property
  def total(self) -> float:
    return self.user + self.system

  def __sub__(self, other: "CpuSample") -> "CpuSample":
    return CpuSample(self.user - other.user, self.system - other.system)


def parse_stat(text: str) -> dict[str, int]:
  """The fields of /proc/<pid>/stat that matter here.

  The command name (field 2) is in parentheses and may contain spaces and
  parentheses itself, so fields are counted from the last ')'.
  """
  rest = text[text.rindex(")") + 2:].split()
  # rest[0] is field 3 (state); field N is rest[N - 3].
  return {
      "ppid": int(rest[1]),
      "utime": int(rest[11]),
      "stime": int(rest[12]),
      "cutime": int(rest[13]),
      "cstime": int(rest[14]),
  }


def _read_stat(pid: int) -> dict[str, int]:
  with open(f"/proc/{pid}/stat", encoding="utf-8", errors="replace") as f:
    return parse_stat(f.read())


def _all_stats() -> Iterator[tuple[int, dict[str, int]]]:
  for entry in os.listdir("/proc"):
    if entry.isdigit():
      try:
        yield int(entry), _read_stat(int(entry))
      except (OSError, ValueError, IndexError):
        continue  # exited meanwhile


def descendants(pid: int, stats: dict[int, dict[str, int]]) -> list[int]:
  """Pids of all live descendants of `pid`, given every process's stat."""
  children: dict[int, list[int]] = {}
  for child, stat in stats.items():
    children.setdefault(stat["ppid"], []).append(child)
  result, todo = [], [pid]
  while todo:
    for child in children.get(todo.pop(), ()):
      result.append(child)
      todo.append(child)
  return result


def sample(pid: int) -> CpuSample:
  """The CPU time used so far by `pid` and its descendants.

  Raises:
    OSError: the process does not exist.
  """
  root = _read_stat(pid)
  stats = dict(_all_stats())
  user = root["utime"] + root["cutime"]
  system = root["stime"] + root["cstime"]
  for child in descendants(pid, stats):
    user += stats[child]["utime"]
    system += stats[child]["stime"]
  return CpuSample(user / _CLK_TCK, system / _CLK_TCK)


def parse_proc_stat_cpu(text: str) -> float:
  """Busy CPU seconds of all cores from /proc/stat's first ("cpu") line:
  everything but idle and iowait (guest time is already in user)."""
  fields = [int(v) for v in text.split("\n", 1)[0].split()[1:]]
  idle = fields[3] + (fields[4] if len(fields) > 4 else 0)
  busy = sum(fields[:8]) - idle
  return busy / _CLK_TCK


def machine_busy() -> float:
  """Busy CPU seconds of the whole machine so far (all cores)."""
  with open("/proc/stat", encoding="ascii") as f:
    return parse_proc_stat_cpu(f.read())


@dataclasses.dataclass(frozen=True)
class MemorySample:
  """Resident memory of a process tree, in bytes, from /proc/<pid>/status.

  rss = anon (heap, stacks, arenas: the process's own) + file (mapped files:
  shared libraries, mostly TensorFlow's) + shmem.
  """

  rss: int
  anon: int
  file: int
  threads: int


def parse_status_memory(text: str) -> MemorySample:
  """The memory fields of a /proc/<pid>/status text (kB values -> bytes)."""
  fields = {}
  for line in text.splitlines():
    key, _, value = line.partition(":")
    fields[key] = value.split()
  kib = lambda key: int(fields[key][0]) * 1024 if key in fields else 0
  return MemorySample(kib("VmRSS"), kib("RssAnon"), kib("RssFile"),
                      int(fields["Threads"][0]) if "Threads" in fields else 0)


def memory(pid: int) -> MemorySample:
  """Resident memory of `pid` and its live descendants.

  Raises:
    OSError: the process does not exist.
  """
  pids = [pid] + descendants(pid, dict(_all_stats()))
  total = MemorySample(0, 0, 0, 0)
  for each in pids:
    try:
      with open(f"/proc/{each}/status", encoding="utf-8") as f:
        one = parse_status_memory(f.read())
    except OSError:
      if each == pid:
        raise
      continue
    total = MemorySample(total.rss + one.rss, total.anon + one.anon,
                         total.file + one.file, total.threads + one.threads)
  return total
