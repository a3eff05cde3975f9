"""Reading vendor records one by one: what every adapter needs to report a record it cannot read.

A broken record is skipped and reported (a `SkippedRecord` with the reason), never guessed at and
never allowed to stop the rest of the listing.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from pydantic import ValidationError

from trueup.domain.models import SkippedRecord


class MalformedRecord(ValueError):
    """A vendor record trueup cannot read; the message is the reason shown to the user."""


def readable_id(value: Any) -> str | None:
    """Good enough to name a broken record in a report, even when it is not a valid id."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str) and value.strip():
        return value.strip()[:64]
    return None


def describe_validation(exc: ValidationError) -> str:
    """A wire model's validation errors as one line a user can act on ("id is missing; ...")."""
    problems = []
    for error in exc.errors():
        field = ".".join(str(part) for part in error["loc"]) or "record"
        if error["type"] == "missing":
            problems.append(f"{field} is missing")
        else:
            got = repr(error.get("input"))
            if len(got) > 40:
                got = got[:37] + "..."
            problems.append(f"{field} {error['msg'][0].lower()}{error['msg'][1:]} (got {got})")
    return "; ".join(problems)


R = TypeVar("R")


@dataclass(frozen=True)
class RecordReader:
    """Reads one RMM's records one at a time: a record that cannot be read becomes a SkippedRecord
    with the reason, named by the id (and, for a device, the organization) the wire gives it."""

    source: str
    id_key: str  # the record's id in the wire: NinjaOne "id", Datto RMM "uid"
    organization_key: str  # a device's organization: NinjaOne "organizationId", Datto RMM "siteUid"
    log: logging.Logger

    def prefixed(self, vendor_id: str) -> str:
        return f"{self.source}:{vendor_id}"

    def read(self, kind: str, item: Any, parse: Callable[[dict[str, Any]], R]) -> R | SkippedRecord:
        """`parse(item)`, or the record skipped with why (not an object, a wire-model or a domain problem)."""
        if not isinstance(item, dict):
            return self.skipped(kind, item, f"not a JSON object ({type(item).__name__})")
        try:
            return parse(item)
        except ValidationError as exc:
            return self.skipped(kind, item, describe_validation(exc))
        except MalformedRecord as exc:
            return self.skipped(kind, item, str(exc))

    def skipped(self, kind: str, item: Any, reason: str) -> SkippedRecord:
        record_id = organization_id = None
        if isinstance(item, dict):
            raw_id = readable_id(item.get(self.id_key))
            record_id = self.prefixed(raw_id) if raw_id is not None else None
            if kind == "device":
                raw_org = readable_id(item.get(self.organization_key))
                organization_id = self.prefixed(raw_org) if raw_org is not None else None
        self.log.warning(
            "%s: skipped %s %s: %s", self.source, kind, record_id or f"without {self.id_key}", reason
        )
        return SkippedRecord(
            source=self.source, kind=kind, id=record_id, reason=reason, organization_id=organization_id
        )
