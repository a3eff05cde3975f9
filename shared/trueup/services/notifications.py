"""Telling people: a message in plain words on the SNS topic they subscribe to (an e-mail address,
a chat hook), once per thing that happened however often its event is delivered."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from trueup import aws
from trueup.config import config
from trueup.errors import TrueupError
from trueup.events import SyncFailed, SyncHeld
from trueup.sources import data_ages, display_name

SUBJECT_LIMIT = 100  # SNS refuses a longer subject


@dataclass(frozen=True)
class Notice:
    key: str  # what happened, once: a second delivery of the same event finds it
    subject: str
    text: str


def sync_problem(event: SyncFailed | SyncHeld, page_url: str | None) -> Notice:
    """What to tell about a sync that failed or was held: what happened, what it means, what to do."""
    name = display_name(event.source)
    where = f"Open trueup: {page_url}" if page_url else "Open trueup's Reconciliation page."
    if isinstance(event, SyncHeld):
        return Notice(
            key=f"sync-held/{event.run_id}/{event.source}",
            subject=f"trueup: the {name} sync was held",
            text=(
                f"The {name} sync of run {event.run_id} was held: {event.reason}.\n\n"
                "Its data looks too short to use, so the data synced before stays in use. Check the "
                f"vendor, then, as an admin, use the new data or discard it.\n\n{where}"
            ),
        )
    return Notice(
        key=f"sync-failed/{event.run_id}/{event.source}",
        subject=f"trueup: the {name} sync failed",
        text=(
            f"The {name} sync of run {event.run_id} failed: {event.error}\n\n"
            "The data synced before stays in use; snapshots use it until a sync succeeds.\n\n"
            f"{where}"
        ),
    )


def send_once(notice: Notice, context: Any, publish: Callable[[Notice], str] | None = None) -> str:
    """Publish `notice` unless it was already: the message id (the first one's, for a repeat)."""
    from trueup.services.once import once

    send = publish or _publish
    answer = once(notice.key, context, lambda: {"message_id": send(notice)})
    message_id: str = answer["message_id"]
    return message_id


def _publish(notice: Notice) -> str:
    topic = config().topic_arn
    if not topic:
        raise TrueupError(
            "TRUEUP_TOPIC_ARN is not set: nowhere to send notifications (template.yaml sets it)"
        )
    answer = aws.client("sns").publish(
        TopicArn=topic, Subject=notice.subject[:SUBJECT_LIMIT], Message=notice.text
    )
    message_id: str = answer["MessageId"]
    return message_id


GAPS_LISTED = 10
STEP_WORDS = {"succeeded": "succeeded", "failed": "failed", "held": "was held", "skipped": "was skipped"}


def cycle_report(cycle: dict[str, Any], snapshot: dict[str, Any] | None, page_url: str | None) -> Notice:
    """What to tell when a monthly cycle ends: per coverage the clients under-licensed, over-licensed,
    matched and unmapped; the largest under-licensed gaps; how fresh the data was; any sync that
    failed or was held; where to look. A cycle that took no snapshot says why."""
    where = f"Open trueup: {page_url}" if page_url else "Open trueup's Reconciliation page."
    started = "the monthly schedule" if cycle["trigger"] == "schedule" else _who(cycle.get("started_by"))
    syncs = (
        "; ".join(
            f"{display_name(source)} {STEP_WORDS.get(step['state'], step['state'])}"
            + (f" ({step['reason']})" if step.get("reason") else "")
            for source, step in cycle["syncs"].items()
        )
        or "none (a snapshot of the data already current)"
    )
    key = f"cycle/{cycle['id']}"
    if snapshot is None:
        why = cycle["snapshot"].get("reason") or "the snapshot was not taken"
        kind = "monthly " if cycle["trigger"] == "schedule" else ""
        return Notice(
            key=key,
            subject=_subject(f"trueup: the {kind}cycle stopped: {why}"),
            text=(
                f"trueup's cycle {cycle['id']}, started by {started}, stopped before its snapshot.\n\n"
                f"Why: {why}.\n\nSyncs: {syncs}.\n\n"
                "No snapshot or export was made: the previous snapshot is still the latest. Fix what "
                "stopped it (for a held sync, check the vendor, then use the new data or discard it), "
                "then take a snapshot, or start the cycle again.\n\n"
                f"{where}"
            ),
        )
    coverages = snapshot["coverages"]
    under = sum(c["summary"]["under_licensed"] for c in coverages)
    over = sum(c["summary"]["over_licensed"] for c in coverages)
    lines = [
        f"trueup's cycle {cycle['id']}, started by {started}, took snapshot {snapshot['id']} at "
        f"{_when(snapshot['taken_at'])}.",
        "",
        "Per coverage (clients):",
        *(
            f"- {c['name']}: {c['summary']['under_licensed']} under-licensed"
            f"{_totals(c['summary'], 'under_licensed_price_gap', 'not billed')}, "
            f"{c['summary']['over_licensed']} over-licensed"
            f"{_totals(c['summary'], 'over_licensed_price_gap', 'overpaid')}, "
            f"{c['summary']['matched']} matched, {c['summary']['unmapped']} unmapped"
            for c in coverages
        ),
        "",
    ]
    gaps = sorted(
        (
            (row["variance"], row["client"], c["name"], row)
            for c in coverages
            for row in c.get("rows") or []
            if row["status"] == "under_licensed" and row["variance"] is not None
        ),
        key=lambda gap: (-gap[0], gap[1].casefold(), gap[2]),
    )[:GAPS_LISTED]
    if gaps:
        lines.append(f"The {len(gaps)} largest under-licensed gaps (devices more than licences):")
        lines += [
            f"{n}. {client} ({coverage}): {row['devices']} devices, {row['licenses']} licences, "
            f"{variance} under"
            + (
                f", {_money(row['amounts']['monthly_price_gap'], row['amounts']['currency'])} a month"
                if row.get("amounts")
                else ""
            )
            for n, (variance, client, coverage, row) in enumerate(gaps, 1)
        ]
    else:
        lines.append("No client is under-licensed.")
    lines += ["", "How fresh the data was:"]
    for source, synced in data_ages(snapshot["data_as_of"]).items():
        lines.append(
            f"- {display_name(source)}: synced {_when(synced)}, "
            f"{_age(synced, snapshot['taken_at'])} before the snapshot"
        )
    lines += [f"- Warning: {w}" for w in snapshot.get("warnings") or []]
    lines += ["", f"Syncs: {syncs}."]
    if cycle.get("export_keys"):
        lines += ["", "Exports (CSV, in the data bucket):", *(f"- {k}" for k in cycle["export_keys"])]
    elif cycle["exports"]["state"] == "failed":
        lines += ["", f"The exports failed: {cycle['exports']['reason']}. Export from the page instead."]
    lines += ["", where]
    return Notice(
        key=key,
        subject=_subject(
            f"trueup: {_when(snapshot['taken_at'])[:10]} reconciliation: "
            f"{under} under-licensed, {over} over-licensed"
            + (" (the exports failed)" if cycle["exports"]["state"] == "failed" else "")
        ),
        text="\n".join(lines),
    )


def _money(amount: str, currency: str) -> str:
    """ "$1,240.50", "EUR 7.00": plain text for any mail client."""
    value = Decimal(amount)
    digits = max(0, -int(value.as_tuple().exponent))
    text = f"{abs(value):,.{digits}f}"
    sign = "-" if value < 0 else ""
    return f"{sign}{'$' if currency == 'USD' else currency + ' '}{text}"


def _totals(summary: dict[str, Any], field: str, words: str) -> str:
    """ " ($131.46 a month not billed)", per currency; nothing without money."""
    amounts = [
        f"{_money(str(abs(Decimal(t[field]))), c)} a month {words}"
        for c, t in (summary.get("money") or {}).items()
        if Decimal(t[field]) != 0
    ]
    return f" ({'; '.join(amounts)})" if amounts else ""


def _subject(text: str) -> str:
    return text if len(text) <= SUBJECT_LIMIT else text[: SUBJECT_LIMIT - 1] + "…"


def _who(actor: dict[str, Any] | None) -> str:
    if not actor:
        return "a request"
    return str(actor.get("name") or actor.get("subject") or "a request")


def _when(moment: str) -> str:
    return datetime.fromisoformat(moment).astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")


def _age(earlier: str, later: str) -> str:
    minutes = max(
        0, int((datetime.fromisoformat(later) - datetime.fromisoformat(earlier)).total_seconds() // 60)
    )
    if minutes < 1:
        return "less than a minute"
    if minutes < 120:
        return f"{minutes} minute{'s' if minutes != 1 else ''}"
    hours = minutes // 60
    if hours < 48:
        return f"{hours} hours"
    return f"{hours // 24} days"


def tell_cycle(cycle_id: str, context: Any, now: datetime) -> dict[str, Any]:
    """The cycle's notification step ("Exports Ready" or "Cycle Stopped"): told once, then the cycle
    is finished. A cycle that stopped counts in the CyclesStopped metric (its alarm tells too)."""
    from trueup.observability import MetricUnit, emit_metrics
    from trueup.services.cycles import cycle_notified, get_cycle
    from trueup.services.snapshots import get_snapshot

    cycle = get_cycle(cycle_id)
    if cycle["notification"]["state"] != "running":
        return {"cycle_id": cycle_id, "told": False, "status": cycle["status"]}
    snapshot = get_snapshot(cycle["snapshot_id"]) if cycle["snapshot_id"] else None
    notice = cycle_report(cycle, snapshot, config().page_url)
    message_id = send_once(notice, context)
    finished = cycle_notified(cycle_id, now)
    metric = "CyclesSucceeded" if finished["status"] == "succeeded" else "CyclesStopped"
    emit_metrics({metric: (MetricUnit.Count, 1)})
    return {
        "cycle_id": cycle_id,
        "told": True,
        "status": finished["status"],
        "message_id": message_id,
        "subject": notice.subject,
    }
