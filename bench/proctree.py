"""CPU time and memory of a server's whole process tree, read from /proc.

granian forks a worker (and Distribution runs many threads), so every figure here
sums over the root process and all its live descendants. Thread CPU is part of
each process's utime/stime; ``cutime``/``cstime`` cover children already reaped.
"""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path
from typing import Self

_PROC = Path("/proc")
_CLK_TCK = os.sysconf("SC_CLK_TCK")


def tree_pids(root: int) -> list[int]:
    """Return ``root`` and every live descendant (breadth first)."""
    pids = [root]
    index = 0
    while index < len(pids):
        pid = pids[index]
        index += 1
        try:
            tasks = list((_PROC / str(pid) / "task").iterdir())
        except OSError:
            continue
        for task in tasks:
            try:
                children = (task / "children").read_text()
            except OSError:
                continue
            pids.extend(int(child) for child in children.split())
    return pids


def _cpu_ticks(pid: int) -> int:
    try:
        stat = (_PROC / str(pid) / "stat").read_text()
    except OSError:
        return 0
    # Fields after "(comm)": state is field 3, utime..cstime are fields 14..17.
    fields = stat[stat.rindex(")") + 2 :].split()
    return sum(int(value) for value in fields[11:15])


def cpu_seconds(root: int) -> float:
    """utime+stime (plus reaped children) of the tree, in seconds."""
    return sum(_cpu_ticks(pid) for pid in tree_pids(root)) / _CLK_TCK


def _status_kib(pid: int, field: str) -> int:
    try:
        lines = (_PROC / str(pid) / "status").read_text().splitlines()
    except OSError:
        return 0
    prefix = field + ":"
    for line in lines:
        if line.startswith(prefix):
            return int(line.split()[1])
    return 0


def rss_bytes(root: int) -> int:
    """Sum of VmRSS over the tree."""
    return sum(_status_kib(pid, "VmRSS") for pid in tree_pids(root)) * 1024


def hwm_bytes(root: int) -> int:
    """Sum of VmHWM (per-process peak RSS) over the tree: an upper bound of the
    tree's simultaneous peak."""
    return sum(_status_kib(pid, "VmHWM") for pid in tree_pids(root)) * 1024


def reset_hwm(root: int) -> bool:
    """Reset VmHWM to the current RSS in every process of the tree (Linux
    ``clear_refs`` value 5), so a later VmHWM covers only what came after."""
    done = True
    for pid in tree_pids(root):
        try:
            (_PROC / str(pid) / "clear_refs").write_text("5")
        except OSError:
            done = False
    return done


class RssSampler:
    """Samples the tree's summed VmRSS in a thread and keeps the peak."""

    def __init__(self, root: int, interval: float = 0.02) -> None:
        self._root = root
        self._interval = interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self.peak = 0
        self.samples = 0

    def __enter__(self) -> Self:
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, rss_bytes(self._root))
            self.samples += 1
            time.sleep(self._interval)
