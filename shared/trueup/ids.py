"""Ids of generations, sync runs and snapshots: time-sortable and unique."""

import secrets
from datetime import UTC, datetime


def new_id(now: datetime) -> str:
    """20261125T124703123Z-9f3a1c: sorts by time as text (DynamoDB sort keys, S3 listings)."""
    return (
        now.astimezone(UTC).strftime("%Y%m%dT%H%M%S")
        + f"{now.microsecond // 1000:03d}Z-{secrets.token_hex(3)}"
    )
