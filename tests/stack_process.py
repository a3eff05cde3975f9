"""The local stack (`python -m infra.local`, demo mode) as a subprocess for end-to-end and browser tests.

Each stack gets a free port and its own data directory, and is ready once it prints its ready line
(its first sync of the demo upstreams is done by then).
"""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import queue
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

import httpx

REPO_ROOT = Path(__file__).resolve().parents[1]
# Generous: on a busy machine a start (moto, workers, the first sync of the demo) is slow, not broken.
START_DEADLINE = 300.0
READY_PREFIX = "trueup is ready on "
CREDENTIAL_VARIABLES = (
    "PAX8_CLIENT_ID",
    "PAX8_CLIENT_SECRET",
    "NINJAONE_CLIENT_ID",
    "NINJAONE_CLIENT_SECRET",
    "DATTO_API_KEY",
    "DATTO_API_SECRET",
)


class StackError(AssertionError):
    """The stack did not start, or answered what a test did not expect."""


def http_json(
    url: str, method: str = "GET", body: Any = None, headers: dict[str, str] | None = None
) -> tuple[int, Any]:
    """One request, JSON in and out: (status, decoded body)."""
    parts = urlsplit(url)
    connection = http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port, timeout=60)
    try:
        payload = None if body is None else json.dumps(body).encode()
        sent = (
            {"Content-Type": "application/json", **(headers or {})}
            if payload is not None
            else dict(headers or {})
        )
        target = parts.path + (f"?{parts.query}" if parts.query else "")
        connection.request(method, target, body=payload, headers=sent)
        response = connection.getresponse()
        data = response.read()
    finally:
        connection.close()
    return response.status, json.loads(data) if data else None


class StackProcess:
    """`python -m infra.local` in demo mode on a free port and a data directory of its own."""

    def __init__(
        self, data_dir: Path, log_path: Path, *, quiet: bool = False, auth: str = "off", rmm: str = "ninjaone"
    ) -> None:
        self.data_dir = data_dir
        self.log_path = log_path
        self.quiet = quiet
        self.auth = auth  # TRUEUP_AUTH
        self.rmm = rmm  # TRUEUP_RMM: the RMMs in use
        # Port 0: the stack binds a free port itself (no race with another process for a probed one)
        # and says which in its ready line.
        self.port = 0
        self.url = ""
        self.process: subprocess.Popen[str] | None = None
        self.lines: list[str] = []

    def start(self) -> None:
        env = {k: v for k, v in os.environ.items() if k not in CREDENTIAL_VARIABLES}
        env.update(
            TRUEUP_PORT=str(self.port),
            TRUEUP_DATA_DIR=str(self.data_dir),
            TRUEUP_DEMO="1",
            TRUEUP_AUTH=self.auth,
            TRUEUP_RMM=self.rmm,
        )
        self.lines = []
        command = [sys.executable, "-m", "infra.local", *(["--quiet"] if self.quiet else [])]
        with open(self.log_path, "a", encoding="utf-8") as log:
            self.process = subprocess.Popen(
                command,
                cwd=REPO_ROOT,
                env=env,
                stdout=subprocess.PIPE,
                stderr=log,  # the request and function log: read it when a test fails
                text=True,
            )
        lines: queue.Queue[str | None] = queue.Queue()

        def read(stream: Any) -> None:
            for line in stream:
                lines.put(line.rstrip("\n"))
            lines.put(None)

        threading.Thread(target=read, args=(self.process.stdout,), daemon=True).start()
        deadline = time.monotonic() + START_DEADLINE
        while True:
            try:
                line = lines.get(timeout=max(0.1, deadline - time.monotonic()))
            except queue.Empty:
                self.stop()
                raise StackError(
                    f"no ready line in {START_DEADLINE:.0f} s: {self.lines}\n{self.log()}"
                ) from None
            if line is None:
                raise StackError(f"the stack exited ({self.process.wait()}): {self.lines}\n{self.log()}")
            self.lines.append(line)
            if line.startswith(READY_PREFIX):
                self.url = line.removeprefix(READY_PREFIX).strip().rstrip("/")
                self.port = int(self.url.rsplit(":", 1)[1])
                # What it prints once ready (a notification) keeps coming into `lines`.
                threading.Thread(target=self._keep_lines, args=(lines,), daemon=True).start()
                return

    def _keep_lines(self, lines: queue.Queue[str | None]) -> None:
        while (line := lines.get()) is not None:
            self.lines.append(line)

    def log(self) -> str:
        return self.log_path.read_text(encoding="utf-8")[-5000:] if self.log_path.exists() else ""

    def stack_file(self) -> dict[str, Any]:
        described: dict[str, Any] = json.loads((self.data_dir / "stack.json").read_text())
        return described

    def demo_stats(self) -> dict[str, Any]:
        status, stats = http_json(self.stack_file()["demo"]["control"] + "/stats")
        assert status == 200
        return dict(stats)

    def api(
        self, method: str, path: str, body: Any = None, headers: dict[str, str] | None = None
    ) -> tuple[int, Any]:
        return http_json(self.url + path, method, body, headers)

    def ok(self, method: str, path: str, body: Any = None) -> Any:
        status, answer = self.api(method, path, body)
        if not 200 <= status < 300:
            raise StackError(f"{method} {path} answered {status}: {answer}")
        return answer

    def snapshot(self, snapshot_id: str = "latest") -> Any:
        """A snapshot with every row of every coverage, read through the API's pages as a client must."""
        first = self.ok("GET", f"/snapshots/{quote(snapshot_id)}?limit=1")
        coverages = []
        for listed in first["coverages"]:
            rows: list[Any] = []
            cursor = ""
            while True:
                page = self.ok(
                    "GET",
                    f"/snapshots/{quote(first['id'])}?coverage={quote(listed['id'])}&limit=2000&cursor={cursor}",
                )
                rows += next(c for c in page["coverages"] if c["id"] == listed["id"])["rows"]
                cursor = page["next_cursor"]
                if cursor is None:
                    break
            coverages.append(
                {"id": listed["id"], "name": listed["name"], "summary": listed["summary"], "rows": rows}
            )
        return {**{k: v for k, v in first.items() if k != "next_cursor"}, "coverages": coverages}

    def script_token(self, role: str) -> str:
        """An access token of the local provider's client-credentials client for `role` (TRUEUP_AUTH=oidc)."""
        auth = self.stack_file()["auth"]
        client = auth["clients"][role]
        answer = httpx.post(
            auth["token_url"],
            data={"grant_type": "client_credentials"},
            auth=(client["client_id"], client["client_secret"]),
            timeout=30,
        )
        assert answer.status_code == 200, answer.text
        token: str = answer.json()["access_token"]
        return token

    def wait_for_run(self, run_id: str, deadline: float = 60.0) -> dict[str, Any]:
        end = time.monotonic() + deadline
        while True:
            status, run = self.api("GET", f"/syncs/{run_id}")
            assert status == 200, run
            if all(s["status"] not in ("queued", "running") for s in run["sources"].values()):
                return dict(run)
            assert time.monotonic() < end, f"run {run_id} never finished: {run}"
            time.sleep(0.1)  # the sync runs in the stack's background: poll it

    def wait_for_cycle(self, cycle_id: str, deadline: float = 120.0) -> dict[str, Any]:
        """The cycle once someone was told (its status no longer running)."""
        end = time.monotonic() + deadline
        while True:
            status, cycle = self.api("GET", f"/cycles/{cycle_id}")
            assert status == 200, cycle
            if cycle["status"] != "running":
                return dict(cycle)
            assert time.monotonic() < end, f"cycle {cycle_id} never finished: {cycle}"
            time.sleep(0.1)  # its steps run in the stack's background: poll it

    def stop(self, sig: int = signal.SIGTERM) -> int:
        """Stop the stack (SIGTERM by default, SIGKILL to simulate a crash); its exit code."""
        if self.process is None:
            return 0
        try:
            if self.process.poll() is None:
                self.process.send_signal(sig)
            try:
                return self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                return self.process.wait(timeout=10)
        finally:
            if self.process.stdout is not None:
                self.process.stdout.close()


@contextlib.contextmanager
def running_stack(root: Path, *, quiet: bool = False, auth: str = "off") -> Iterator[StackProcess]:
    """A started stack with its data and log under `root`, stopped cleanly (exit 0) at the end."""
    running = StackProcess(root / "data", root / "stack.log", quiet=quiet, auth=auth)
    running.start()
    try:
        yield running
    finally:
        if running.process is not None and running.process.poll() is None:
            code = running.stop()
            # -9: it did not stop within 30 s of SIGTERM and was killed; another code: it failed.
            assert code == 0, f"the stack exited with {code}:\n{running.log()}"
