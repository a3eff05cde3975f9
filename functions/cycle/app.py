"""CycleFunction: what the schedules start, and the monthly cycle's bookkeeping.

- {"trigger": "daily-sync", "scheduled_time": ...} (the daily schedule): syncs every source, once per firing.
- {"trigger": "monthly", "scheduled_time": ...}: starts the monthly cycle of that firing (once).
  Either firing first stops any recent cycle whose step never finished (a crashed function).
- "Sync Completed" / "Sync Failed" / "Sync Held" naming cycles: records the outcome in each; the last
  sync of a cycle starts its snapshot ("Cycle Synced") or stops it ("Cycle Stopped").
"""

from datetime import UTC, datetime
from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from trueup.observability import logger
from trueup.services.cycles import close_stalled_cycles, record_sync_outcome, start_monthly_cycle
from trueup.services.scheduled import start_daily_sync

SYNC_OUTCOMES = ("Sync Completed", "Sync Failed", "Sync Held")


@logger.inject_lambda_context(clear_state=True)
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    if not isinstance(event, dict):
        raise ValueError(f"unrecognised event ({type(event).__name__})")
    trigger = event.get("trigger")
    if trigger in ("daily-sync", "monthly"):
        # Each firing also stops the cycles a crashed step left waiting, and tells someone.
        stalled = close_stalled_cycles(datetime.now(UTC))
        if stalled:
            logger.warning("cycles stopped: a step never finished", extra={"cycles": stalled})
    if trigger == "daily-sync":
        outcome = start_daily_sync(event.get("scheduled_time"), datetime.now(UTC))
        logger.info("daily sync", extra=outcome)
        return outcome
    if trigger == "monthly":
        started = start_monthly_cycle(event.get("scheduled_time"), datetime.now(UTC))
        logger.info("monthly cycle", extra=started)
        return started
    if event.get("detail-type") in SYNC_OUTCOMES:
        from trueup import events

        what: events.SyncCompleted | events.SyncFailed | events.SyncHeld
        if event["detail-type"] == "Sync Completed":
            what = events.received(event, events.SyncCompleted)
        elif event["detail-type"] == "Sync Failed":
            what = events.received(event, events.SyncFailed)
        else:
            what = events.received(event, events.SyncHeld)
        logger.append_keys(run_id=what.run_id, source=what.source)
        nexts = record_sync_outcome(what, datetime.now(UTC))
        logger.info("sync outcome recorded", extra={"cycles": what.cycle_ids, "next": nexts})
        return {"cycles": what.cycle_ids or [], "next": nexts}
    keys = sorted(event)
    raise ValueError(
        f'unrecognised event (keys: {keys}): expected {{"trigger": "daily-sync" | "monthly", ...}} '
        "or a sync outcome"
    )
