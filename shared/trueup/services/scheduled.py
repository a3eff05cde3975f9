"""What the schedules start: the daily sync (and, with the monthly cycle, more). EventBridge
Scheduler delivers at least once, so each firing (the schedule and its scheduled time) is claimed in
the table first: a second delivery of the same firing starts nothing."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from trueup.errors import InvalidInput
from trueup.ids import new_id
from trueup.services.sync_runs import request_sync
from trueup.store.table import TrueupTable

FIRING_KEPT = timedelta(days=7)  # a repeated firing is recognised for a week


def start_daily_sync(scheduled_time: str | None, now: datetime) -> dict[str, Any]:
    """Sync every source, once for this firing; answers the run's id and whether this delivery
    started it (a repeat answers the first one's run)."""
    when = scheduled_time_of(scheduled_time, now)
    run_id = new_id(now)
    table = TrueupTable()
    firing = f"daily-sync/{when}"
    earlier = table.claim_firing(firing, run_id, int((now + FIRING_KEPT).timestamp()))
    if earlier is not None:
        return {"run_id": earlier, "started": False, "scheduled_time": when}
    try:
        run = request_sync(None, now, run_id=run_id)
    except Exception:
        table.release_firing(firing)  # Scheduler retries the firing; it must find it unclaimed
        raise
    return {"run_id": run["id"], "started": True, "scheduled_time": when}


def scheduled_time_of(value: str | None, now: datetime) -> str:
    """The firing's scheduled time, as Scheduler gives it (`2026-12-01T05:00:00Z`); without one (a
    hand-made event), this minute."""
    if value is None:
        return now.strftime("%Y-%m-%dT%H:%M:00Z")
    try:
        datetime.fromisoformat(value)
    except (TypeError, ValueError):
        raise InvalidInput(f"scheduled_time must be an ISO 8601 time, got {str(value)[:40]!r}") from None
    return value
