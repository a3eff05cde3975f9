"""The local stack (`python -m infra.local`, demo mode) as a subprocess the browser tests drive.

Each stack gets a free port and its own data directory, and is ready once it prints its ready line
(its first sync of the demo upstreams is done by then).
"""

from __future__ import annotations

import http.client
import json
import os
import queue
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

REPO_ROOT = Path(__file__).resolve().parents[2]
START_DEADLINE = 120.0
READY_PREFIX = "trueup is ready on "
CREDENTIAL_VARIABLES = (
    "PAX8_CLIENT_ID",
    "PAX8_CLIENT_SECRET",
    "NINJAONE_CLIENT_ID",
    "NINJAONE_CLIENT_SECRET",
)


class StackError(RuntimeError):
    pass


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


class LocalStack:
    """`python -m infra.local --demo` on a free port and a data directory of its own."""

    def __init__(self, data_dir: Path, log_path: Path) -> None:
        self.data_dir = data_dir
        self.log_path = log_path
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.process: subprocess.Popen[str] | None = None

    def start(self) -> None:
        env = {k: v for k, v in os.environ.items() if k not in CREDENTIAL_VARIABLES}
        env.update(TRUEUP_PORT=str(self.port), TRUEUP_DATA_DIR=str(self.data_dir), TRUEUP_DEMO="1")
        with open(self.log_path, "a", encoding="utf-8") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "infra.local", "--demo", "--quiet"],
                cwd=REPO_ROOT,
                env=env,
                stdout=subprocess.PIPE,
                stderr=log,  # the request log: shown when the stack fails to start
                text=True,
            )
        lines: queue.Queue[str | None] = queue.Queue()

        def read(stream: Any) -> None:
            for line in stream:
                lines.put(line.rstrip("\n"))
            lines.put(None)

        threading.Thread(target=read, args=(self.process.stdout,), daemon=True).start()
        seen: list[str] = []
        deadline = time.monotonic() + START_DEADLINE
        while True:
            try:
                line = lines.get(timeout=max(0.1, deadline - time.monotonic()))
            except queue.Empty:
                self.stop()
                raise StackError(f"no ready line in {START_DEADLINE:.0f} s: {seen}\n{self.log()}") from None
            if line is None:
                raise StackError(f"the stack exited ({self.process.wait()}): {seen}\n{self.log()}")
            seen.append(line)
            if line.startswith(READY_PREFIX):
                return

    def log(self) -> str:
        return self.log_path.read_text(encoding="utf-8")[-5000:] if self.log_path.exists() else ""

    def api(self, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        """One request to the stack's API, as JSON: (status, decoded body)."""
        parts = urlsplit(self.url)
        connection = http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port, timeout=60)
        try:
            payload = None if body is None else json.dumps(body).encode()
            headers = {"Content-Type": "application/json"} if payload is not None else {}
            connection.request(method, path, body=payload, headers=headers)
            response = connection.getresponse()
            data = response.read()
        finally:
            connection.close()
        return response.status, json.loads(data) if data else None

    def ok(self, method: str, path: str, body: Any = None) -> Any:
        status, answer = self.api(method, path, body)
        if not 200 <= status < 300:
            raise StackError(f"{method} {path} answered {status}: {answer}")
        return answer

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=10)
        finally:
            if self.process.stdout is not None:
                self.process.stdout.close()
