"""The benchmark's helper processes: started with a log file each, ready when they say so, stopped cleanly.

A long-lived helper (the demo upstreams, the AWS stand-in) writes a JSON "ready" file once it
serves, then runs until SIGTERM, or until the benchmark that started it is gone. A one-shot helper
(a handler invocation) runs to its end. Their output goes to log files, whose tail is quoted in the
error when a helper fails, so the benchmark's own output stays a readable report.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import IO, Any

_POLL_SECONDS = 0.05
_STOP_GRACE_SECONDS = 10.0


class HelperError(RuntimeError):
    """A helper process failed, did not get ready in time, or did not finish in time."""


def announce_ready(path: Path, payload: Mapping[str, Any]) -> None:
    """Write the ready file in one step (a reader never sees half of it)."""
    partial = path.with_name(path.name + ".partial")
    partial.write_text(json.dumps(payload))
    os.replace(partial, path)


def serve_until_stopped() -> None:
    """Block until SIGTERM or SIGINT, or until the parent process is gone (no helper outlives a run)."""
    stop = threading.Event()
    parent = os.getppid()

    def request_stop(signum: int, frame: object) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, request_stop)
    signal.signal(signal.SIGINT, request_stop)
    while not stop.wait(1.0):
        if os.getppid() != parent:
            return


def _tail(path: Path, lines: int = 25) -> str:
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return "(no log)"
    kept = text.rstrip().splitlines()[-lines:]
    return "\n".join(f"    {line}" for line in kept) or "    (empty log)"


class Helper:
    """One helper process: `python -m <module> <args>` with its output in `<workdir>/<label>.log`."""

    def __init__(
        self,
        label: str,
        module: str,
        args: Sequence[str],
        workdir: Path,
        *,
        env: Mapping[str, str] | None = None,
        cwd: Path | None = None,
        command: Sequence[str] | None = None,
    ) -> None:
        self.label = label
        self.log_path = workdir / f"{label}.log"
        self.ready_path = workdir / f"{label}.ready.json"
        # `command` replaces `python -m module` (a handler's process runs on the functions' runtime).
        self._command = [*(command or (sys.executable, "-m", module)), *args]
        self._env = dict(env) if env is not None else None
        self._cwd = cwd
        self._process: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None

    def start(self) -> None:
        self._log = self.log_path.open("wb")
        self._process = subprocess.Popen(
            self._command,
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            env=self._env,
            cwd=self._cwd,
        )

    @property
    def process(self) -> subprocess.Popen[bytes]:
        if self._process is None:
            raise HelperError(f"the {self.label} helper was never started")
        return self._process

    def failure(self, what: str) -> HelperError:
        tail = _tail(self.log_path)
        return HelperError(f"{self.label}: {what}; the end of its log ({self.log_path}):\n{tail}")

    def wait_ready(self, timeout: float) -> dict[str, Any]:
        """The helper's ready payload, once it has written it; polls with a deadline."""
        deadline = time.monotonic() + timeout
        while True:
            if self.ready_path.exists():
                payload: dict[str, Any] = json.loads(self.ready_path.read_text())
                return payload
            code = self.process.poll()
            if code is not None:
                raise self.failure(f"exited with status {code} before it was ready")
            if time.monotonic() > deadline:
                self.stop()
                raise self.failure(f"not ready after {timeout:.0f} s")
            time.sleep(_POLL_SECONDS)

    def wait_done(self, timeout: float) -> None:
        """Wait for a one-shot helper to finish; a non-zero exit or an overrun is an error."""
        try:
            code = self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.stop()
            raise self.failure(f"still running after {timeout:.0f} s (stopped)") from None
        finally:
            self._close_log()
        if code != 0:
            raise self.failure(f"exited with status {code}")

    def stop(self) -> None:
        process = self._process
        if process is not None and process.poll() is None:
            process.terminate()
            try:
                process.wait(_STOP_GRACE_SECONDS)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        self._close_log()

    def _close_log(self) -> None:
        if self._log is not None:
            self._log.close()
            self._log = None
