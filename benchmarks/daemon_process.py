"""A real `photosearch watch` process for the benchmarks: started, waited for, measured, stopped."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

from benchmarks.models import photosearch_command, proc_status, process_env


class DaemonProcess:
    """`photosearch --library LIB watch ROOT --checkpoint C`, its stderr in a log file.

    `command`, `env` and `cwd` run another photosearch (e.g. an older tree's, for
    benchmarks.torch_vs_onnx); by default, this checkout's.
    """

    def __init__(self, library: Path, root: Path, checkpoint: Path, log_path: Path,
                 command: list[str] | None = None, env: dict | None = None, cwd: str | None = None):
        self.library, self.root, self.checkpoint, self.log_path = library, root, checkpoint, log_path
        self.command, self.env, self.cwd = command or photosearch_command(), env or process_env(), cwd
        self.proc: subprocess.Popen | None = None
        self.ready_s: float | None = None  # from spawn to the first answer on the socket

    def __enter__(self) -> DaemonProcess:
        args = [*self.command, "--library", self.library, "watch", self.root, "--checkpoint", self.checkpoint]
        started = time.perf_counter()
        with open(self.log_path, "w") as log:
            self.proc = subprocess.Popen([str(a) for a in args], stdout=subprocess.DEVNULL, stderr=log,
                                         env=self.env, cwd=self.cwd)
        self._wait(self._answers, 900, "the daemon to answer on its socket")
        self.ready_s = time.perf_counter() - started
        self._wait(lambda: "scan done" in self.log(), 900, "the daemon's first scan")
        self._wait_idle()
        return self

    def __exit__(self, *exc_info) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(120)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(10)

    @property
    def pid(self) -> int:
        return self.proc.pid

    def memory(self) -> dict[str, int]:
        return proc_status(self.pid)

    def log(self) -> str:
        return self.log_path.read_text() if self.log_path.exists() else ""

    def _answers(self) -> bool:
        from photosearch.indexer import ipc

        try:
            ipc.request(self.library, {"op": "ping"}, timeout=5)
            return True
        except ipc.DaemonUnavailable:
            return False

    def _wait(self, check, timeout: float, what: str) -> None:
        deadline = time.monotonic() + timeout
        while not check():
            if self.proc.poll() is not None:
                raise RuntimeError(f"the daemon exited ({self.proc.returncode}):\n{self.log()[-2000:]}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"timed out waiting for {what}:\n{self.log()[-2000:]}")
            time.sleep(0.1)

    def _wait_idle(self, quiet_s: float = 1.0, timeout: float = 300) -> None:
        """Until the daemon uses under 5% of a core for `quiet_s` (its watcher's first sync and
        index save are done), so nothing of its start-up lands in the timings."""
        deadline = time.monotonic() + timeout
        last = _cpu_seconds(self.pid)
        while time.monotonic() < deadline:
            time.sleep(quiet_s)
            now = _cpu_seconds(self.pid)
            if now - last < 0.05 * quiet_s:
                return
            last = now


def _cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a process (Linux /proc/PID/stat)."""
    try:
        with open(f"/proc/{pid}/stat") as fh:
            fields = fh.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return 0.0
