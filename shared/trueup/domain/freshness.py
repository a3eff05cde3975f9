"""How old a snapshot's data was when it was taken, in words. Pure: times in, warnings out."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta

from trueup.sources import display_name


def data_age_warnings(taken_at: datetime, data_as_of: Mapping[str, datetime], hours: int) -> list[str]:
    """A warning per source whose data was synced more than `hours` before `taken_at`."""
    warnings = []
    for source, synced_at in data_as_of.items():
        age = taken_at - synced_at
        if age > timedelta(hours=hours):
            warnings.append(
                f"The {display_name(source)} data was {_age(age)} old when this snapshot was taken "
                f"(synced {synced_at:%d %b %Y %H:%M} UTC, more than {hours} hours before): sync, then take "
                "a snapshot before relying on it."
            )
    return warnings


def _age(age: timedelta) -> str:
    hours = int(age.total_seconds() // 3600)
    if hours < 48:
        return f"{hours} hours"
    return f"{hours // 24} days"
