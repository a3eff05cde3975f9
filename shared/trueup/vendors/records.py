"""Reading vendor records one by one: what every adapter needs to report a record it cannot read.

A broken record is skipped and reported (a `SkippedRecord` with the reason), never guessed at and
never allowed to stop the rest of the listing.
"""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError


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
