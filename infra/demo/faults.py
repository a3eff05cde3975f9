"""Faults the demo upstreams inject on demand: error statuses, slow answers, broken bodies, moving data.

A `Fault` says which requests it matches (server, path, and for list pages the Pax8 or Datto RMM
`page` or the NinjaOne `after` value) and what it does to them. `FaultRegistry` holds the active
faults of every server; the first active fault that matches a request handles it, and `times` limits how many
requests it affects before it retires itself.
"""

from __future__ import annotations

import json
import math
import threading
from dataclasses import dataclass, field
from typing import Any, Literal, get_args

Server = Literal["pax8", "ninjaone", "datto"]
SERVERS: tuple[Server, ...] = get_args(Server)


class FaultError(ValueError):
    """A fault description that cannot be used; the message names the problem."""


@dataclass(frozen=True)
class Fault:
    """One injected misbehaviour.

    Matching: `server` and `path` (exact, without the query string, e.g. "/v1/subscriptions"), and
    optionally `page` (Pax8 and Datto RMM: the `page` query parameter, missing = 0) or `after`
    (NinjaOne: the `after` query parameter, missing = 0, i.e. the first page).

    Actions (at least one):
    - `status`: answer with this HTTP status; `retry_after` adds a `Retry-After` header (seconds or
      an HTTP date); `body` replaces the vendor's usual error body (a str is sent as is, anything
      else as JSON).
    - `delay`: wait this many seconds before answering (combine with nothing to make a slow but
      correct answer, e.g. to make a client time out).
    - `malformed`: answer 200 with `body` (default: a truncated JSON document), not the envelope.
    - `shift` (Pax8 lists only): serve the page normally, then insert a record at the start of the
      list's order, so that every later page starts one item earlier and repeats an item. The
      record is `body` when it is a JSON object, else a copy of the list's first record with a new id.

    `times`: how many matching requests the fault affects; None = every one until cleared.
    """

    server: Server
    path: str
    page: int | None = None
    after: int | None = None
    status: int | None = None
    retry_after: float | str | None = None
    body: Any = None
    delay: float | None = None
    malformed: bool = False
    shift: bool = False
    times: int | None = None

    def __post_init__(self) -> None:
        if self.server not in SERVERS:
            raise FaultError(f"fault server must be one of {', '.join(SERVERS)}, got {self.server!r}")
        if not isinstance(self.path, str) or not self.path.startswith("/"):
            raise FaultError(f"fault path must start with '/', got {self.path!r}")
        if self.page is not None and (_not_int(self.page) or self.page < 0):
            raise FaultError(f"fault page must be a non-negative integer, got {self.page!r}")
        if self.after is not None and (_not_int(self.after) or self.after < 0):
            raise FaultError(f"fault after must be a non-negative integer, got {self.after!r}")
        if self.page is not None and self.server == "ninjaone":
            raise FaultError("fault page applies to pax8 and datto; use after for ninjaone")
        if self.after is not None and self.server != "ninjaone":
            raise FaultError(f"fault after applies to ninjaone only; use page for {self.server}")
        if self.status is not None and (_not_int(self.status) or not 400 <= self.status <= 599):
            raise FaultError(f"fault status must be an HTTP error status (400-599), got {self.status!r}")
        if self.retry_after is not None:
            if self.status is None:
                raise FaultError("fault retry_after needs a status (e.g. 429 or 503)")
            if isinstance(self.retry_after, bool) or not isinstance(self.retry_after, int | float | str):
                problem = f"fault retry_after must be seconds or an HTTP date, got {self.retry_after!r}"
                raise FaultError(problem)
            if isinstance(self.retry_after, float | int) and (
                not math.isfinite(self.retry_after) or self.retry_after < 0
            ):
                raise FaultError(f"fault retry_after must be >= 0 seconds, got {self.retry_after!r}")
        if self.delay is not None and (
            isinstance(self.delay, bool)
            or not isinstance(self.delay, int | float)
            or not math.isfinite(self.delay)
            or self.delay < 0
        ):
            raise FaultError(f"fault delay must be a number of seconds >= 0, got {self.delay!r}")
        if self.times is not None and (_not_int(self.times) or self.times < 1):
            raise FaultError(f"fault times must be a positive integer or null (forever), got {self.times!r}")
        if self.malformed and self.status is not None:
            raise FaultError("a fault is either malformed (200 with a broken body) or a status, not both")
        if self.shift:
            if self.server != "pax8":
                raise FaultError("shift applies to pax8 lists only (NinjaOne pages by id, so nothing shifts)")
            if self.status is not None or self.malformed:
                raise FaultError("shift serves the page normally, so it cannot go with status or malformed")
        if self.status is None and self.delay is None and not self.malformed and not self.shift:
            raise FaultError("a fault needs an action: status, delay, malformed or shift")

    def matches(self, server: str, path: str, page: int | None, after: int | None) -> bool:
        if server != self.server or path != self.path:
            return False
        if self.page is not None and page != self.page:
            return False
        return self.after is None or after == self.after

    def to_json(self) -> dict[str, Any]:
        """The fault as the control endpoint accepts it (defaults left out)."""
        out: dict[str, Any] = {"server": self.server, "path": self.path}
        for name in ("page", "after", "status", "retry_after", "body", "delay", "times"):
            value = getattr(self, name)
            if value is not None:
                out[name] = value
        if self.malformed:
            out["malformed"] = True
        if self.shift:
            out["shift"] = True
        return out

    @classmethod
    def from_json(cls, data: Any, *, default_server: Server | None = None) -> Fault:
        """Build a fault from a JSON object as posted to `/_demo/faults`; FaultError names any problem."""
        if not isinstance(data, dict):
            raise FaultError(f"a fault must be a JSON object, got {type(data).__name__}")
        known = set(cls.__dataclass_fields__)
        unknown = sorted(set(data) - known)
        if unknown:
            problem = f"unknown fault field(s) {', '.join(unknown)}; known: {', '.join(sorted(known))}"
            raise FaultError(problem)
        values = dict(data)
        if "server" not in values:
            if default_server is None:
                raise FaultError(f"a fault needs a server ({', '.join(SERVERS)})")
            values["server"] = default_server
        if "path" not in values:
            raise FaultError("a fault needs a path, e.g. /v1/subscriptions or /v2/devices")
        for flag in ("malformed", "shift"):
            if flag in values and not isinstance(values[flag], bool):
                raise FaultError(f"fault {flag} must be true or false, got {values[flag]!r}")
        return cls(**values)


def _not_int(value: object) -> bool:
    return isinstance(value, bool) or not isinstance(value, int)


@dataclass
class _Active:
    fault: Fault
    remaining: int | None
    id: int = field(default=0)


class FaultRegistry:
    """The active faults of every demo server (thread-safe)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._active: list[_Active] = []
        self._next_id = 1

    def add(self, fault: Fault) -> int:
        """Activate `fault`; returns its id (as listed by `active()`)."""
        with self._lock:
            fault_id = self._next_id
            self._next_id += 1
            self._active.append(_Active(fault, fault.times, fault_id))
            return fault_id

    def clear(self, server: Server | None = None) -> int:
        """Remove the faults of `server` (all when None); returns how many were removed."""
        with self._lock:
            keep = [a for a in self._active if server is not None and a.fault.server != server]
            removed = len(self._active) - len(keep)
            self._active = keep
            return removed

    def active(self, server: Server | None = None) -> list[dict[str, Any]]:
        """Active faults with their id and how many more requests each will affect (None = forever)."""
        with self._lock:
            return [
                {"id": a.id, "remaining": a.remaining, **a.fault.to_json()}
                for a in self._active
                if server is None or a.fault.server == server
            ]

    def take(
        self, server: str, path: str, *, page: int | None = None, after: int | None = None
    ) -> Fault | None:
        """The fault that handles this request, counting it against the fault's `times`."""
        with self._lock:
            for index, entry in enumerate(self._active):
                if entry.fault.matches(server, path, page, after):
                    if entry.remaining is not None:
                        entry.remaining -= 1
                        if entry.remaining == 0:
                            del self._active[index]
                    return entry.fault
            return None


def parse_fault_body(raw: bytes, default_server: Server) -> Fault:
    """Decode a `POST /_demo/faults` body into a Fault; FaultError names any problem."""
    try:
        data = json.loads(raw or b"null")
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise FaultError(f"the fault body is not valid JSON: {exc}") from exc
    return Fault.from_json(data, default_server=default_server)
