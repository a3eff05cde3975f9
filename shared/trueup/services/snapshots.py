"""Snapshots: the reconciliation of the current generations, frozen at the moment it was taken.

Rows go to S3 (a 10,000-client snapshot does not fit a DynamoDB item); metadata and summaries go to
DynamoDB so that listing snapshots reads only those. A snapshot never changes once written.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterator
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, Literal

from trueup.config import config
from trueup.domain.names import folded, natural
from trueup.domain.status import Status
from trueup.errors import Conflict, InvalidInput, NotFound
from trueup.ids import new_id
from trueup.store.snapshot_files import (
    coverage_key,
    history_key,
    put_snapshot_document,
    read_snapshot_document,
)
from trueup.store.table import TrueupTable

Trigger = Literal["api", "schedule"]
Snapshot = dict[str, Any]


class NoCurrentData(Conflict):
    """A snapshot needs a current generation of every source."""


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def fits_in_a_request() -> bool:
    """Whether a snapshot of the current data can be answered within one HTTP request: beyond the
    configured number of devices (template.yaml's SnapshotWaitDevices), with its evidence, it may not
    be taken within API Gateway's 30 seconds (`make bench` prints what it takes; README "Scale")."""
    from trueup.services.current_generations import current_rmm

    return current_rmm(TrueupTable()).devices <= config().snapshot_wait_devices


def take_snapshot(trigger: Trigger, now: datetime, by: dict[str, Any] | None = None) -> Snapshot:
    """Reconcile the current Pax8 and RMM generations under the current settings and store the result.

    `by`: who took it (None for the schedule)."""
    snapshot, meta = reconcile_current(trigger, now, by)
    TrueupTable().put_snapshot(meta)
    announce(snapshot, must_reach=False)
    return snapshot


def reconcile_current(
    trigger: Trigger, now: datetime, by: dict[str, Any] | None, cycle_id: str | None = None
) -> tuple[Snapshot, Snapshot]:
    """The snapshot of the current data, its rows written to S3: (the snapshot, the item that
    records it). Nothing lists it until that item is stored."""
    # Only taking a snapshot runs the engine and reads generations; reading snapshots (the export
    # function, GET /snapshots) never loads either.
    from trueup.domain.changes import with_changes
    from trueup.domain.freshness import data_age_warnings
    from trueup.domain.mapping import map_clients
    from trueup.domain.reconcile import merge_rows, reconcile, tally_rmm
    from trueup.domain.review import billable_organizations
    from trueup.services.current_generations import current_rmm
    from trueup.services.evidence import EvidenceCollector
    from trueup.services.reconciliation_settings import load_settings
    from trueup.services.review import load_review
    from trueup.sources import display_name
    from trueup.store.generations import read_pax8

    table = TrueupTable()
    pax8_ptr, rmm_data = table.get_current("pax8"), current_rmm(table)
    missing = ([] if pax8_ptr else ["pax8"]) + list(rmm_data.missing)
    if missing:
        names = " and ".join(display_name(m) for m in missing)
        raise NoCurrentData(f"no {names} data yet: sync first (POST /syncs), then take the snapshot")
    assert pax8_ptr is not None
    settings, _ = load_settings(table)
    manual = table.manual_mappings()
    review = load_review(table)

    pax8 = read_pax8(pax8_ptr["key"], datetime.fromisoformat(pax8_ptr["synced_at"]))
    rmm_synced = rmm_data.synced_at
    rmm_synced_by_source = rmm_data.synced_at_by_source()
    # The mapping first (organizations only), so that each device can be put aside under its row as
    # the one pass over the devices counts them.
    # Ignored organizations are no one's: left out of the mapping, the rows and the evidence.
    organizations = billable_organizations(rmm_data.organizations(), review)
    mapping = map_clients(pax8.companies, organizations, manual, with_suggestions=False)
    collector = (
        EvidenceCollector(pax8, organizations, mapping, rules=review.rules)
        if config().snapshot_evidence
        else None
    )
    try:
        rmm = tally_rmm(
            "+".join(rmm_data.pointers),
            rmm_data.records(),
            rmm_synced_by_source,
            settings.stale_after_days,
            each_device=collector.put_aside if collector else None,
            rules=review.rules,
            rows_across_sources=merge_rows(mapping),
            source_names={source: display_name(source) for source in rmm_data.pointers},
        )
        result = reconcile(pax8, rmm, settings, manual, mapping=mapping, review=review, as_of=now)
        snapshot_id = new_id(now)
        # What changed since the snapshot taken just before this one, whatever started it.
        before = table.latest_snapshot()
        coverages, histories = with_changes(
            result.coverages, _histories_of(before), snapshot_id, _iso(now), before["id"] if before else None
        )
        snapshot: Snapshot = {
            "id": snapshot_id,
            "taken_at": _iso(now),
            "trigger": trigger,
            "taken_by": by,
            **({"cycle_id": cycle_id} if cycle_id else {}),
            "data_as_of": {
                "pax8": pax8_ptr["synced_at"],
                "rmm": _iso(rmm_synced),
                "rmm_sources": {source: p["synced_at"] for source, p in rmm_data.pointers.items()},
            },
            "generations": {
                "pax8": pax8_ptr["generation"],
                **{source: p["generation"] for source, p in rmm_data.pointers.items()},
            },
            "settings": settings.model_dump(mode="json"),  # coverages null: the proposal was used
            "coverages": [c.model_dump(mode="json") for c in coverages],
            # Snapshot-wide: data older than the settings allow (each row's own warnings are on the row).
            "warnings": [
                *result.warnings,
                *_unmatched_warnings(rmm_data.pointers),
                *data_age_warnings(
                    now,
                    {"pax8": pax8.synced_at, **rmm_synced_by_source},
                    settings.stale_data_hours,
                ),
            ],
        }
        # Each coverage's rows apart: a page of one coverage, or its export, reads that coverage only.
        keys, history_keys = {}, {}
        for coverage in snapshot["coverages"]:
            keys[coverage["id"]] = coverage_key(snapshot_id, now, coverage["id"])
            put_snapshot_document(keys[coverage["id"]], coverage)
            history_keys[coverage["id"]] = history_key(snapshot_id, now, coverage["id"])
            put_snapshot_document(history_keys[coverage["id"]], histories[coverage["id"]])
        evidence_keys = (
            {"evidence_keys": collector.write(snapshot_id, now, snapshot["coverages"], settings)}
            if collector
            else {}
        )
        return snapshot, {
            **summary_of(snapshot),
            "coverage_keys": keys,
            "history_keys": history_keys,
            **evidence_keys,
        }
    finally:
        if collector:
            collector.close()


def _unmatched_warnings(pointers: dict[str, dict[str, Any]]) -> list[str]:
    """An RMM whose serial numbers are read by device name, synced before another RMM in use had
    data: a machine in both may be counted twice until its next sync (which reads the other's names)."""
    from trueup.sources import display_name

    warnings = []
    for source, pointer in pointers.items():
        matched = pointer.get("matched_against")
        if matched is None:
            continue
        unread = [other for other in pointers if other != source and other not in matched]
        if unread:
            others = " and ".join(display_name(other) for other in unread)
            warnings.append(
                f"{display_name(source)} was synced before {others} had data, so a machine in both may be "
                f"counted twice until {display_name(source)} is synced again."
            )
    return warnings


def _histories_of(meta: Snapshot | None) -> dict[str, Any]:
    """The client histories as of a snapshot, per coverage id: its own, or (a snapshot taken before
    histories were kept) made from its rows."""
    from trueup.domain.changes import history_from_rows

    if meta is None:
        return {}
    if "history_keys" in meta:
        return {cid: read_snapshot_document(key) for cid, key in meta["history_keys"].items()}
    return {
        c["id"]: history_from_rows(_rows(meta, c["id"]), meta["id"], meta["taken_at"])
        for c in meta["coverages"]
    }


def announce(snapshot: Snapshot, must_reach: bool) -> None:
    """Once stored: its metrics, and "Snapshot Created" on the bus. `must_reach`: a cycle's exports
    wait on the event, so failing to publish it fails the step (and is retried); nobody waits on a
    person's snapshot's event, so its answer is not turned into an error when the bus is down."""
    from trueup import events
    from trueup.observability import MetricUnit, emit_metrics, logger

    emit_metrics({"SnapshotsTaken": (MetricUnit.Count, 1)}, trigger=snapshot["trigger"])
    for status in Status:  # one series per status: the gaps month after month, in one chart
        rows = sum(c["summary"][status.value] for c in snapshot["coverages"])
        emit_metrics({"SnapshotRows": (MetricUnit.Count, rows)}, status=status.value)
    created = events.SnapshotCreated(
        snapshot_id=snapshot["id"],
        taken_at=snapshot["taken_at"],
        trigger=snapshot["trigger"],
        cycle_id=snapshot.get("cycle_id"),
    )
    try:
        events.publish([created])
    except Exception:
        if must_reach:
            raise
        logger.exception("the snapshot is stored; telling the bus failed", extra={"id": snapshot["id"]})


# A snapshot never changes once written: a warm function keeps the last few coverages it read, so
# that the pages of a large snapshot, and each sort or search of it, read and parse them once.
_read: OrderedDict[str, Any] = OrderedDict()
_KEPT = 4
_STORAGE_KEYS = (
    "rows_key",
    "coverage_keys",
    "history_keys",
    "evidence_keys",
)  # where the rows are: the table's, not the API's


def _stored(key: str) -> Any:
    if key in _read:
        _read.move_to_end(key)
        return _read[key]
    document = read_snapshot_document(key)
    _read[key] = document
    while len(_read) > _KEPT:
        _read.popitem(last=False)
    return document


def _meta(snapshot_id: str) -> Snapshot:
    """The snapshot's item ("latest": the newest): everything but the rows, and where they are."""
    table = TrueupTable()
    if snapshot_id == "latest":
        meta = table.latest_snapshot()
        if meta is None:
            raise NotFound("no snapshot yet: take one with POST /snapshots")
    else:
        meta = table.get_snapshot(snapshot_id)
        if meta is None:
            raise NotFound(f"no snapshot {snapshot_id!r}")
    return meta


def _public(meta: Snapshot) -> Snapshot:
    return {k: v for k, v in meta.items() if k not in _STORAGE_KEYS}


def _rows(meta: Snapshot, coverage_id: str) -> list[dict[str, Any]]:
    """One coverage's rows: its own object, or (a snapshot stored whole, before) the whole document."""
    if "coverage_keys" in meta:
        rows: list[dict[str, Any]] = _stored(meta["coverage_keys"][coverage_id])["rows"]
        return rows
    whole = _stored(meta["rows_key"])
    return next(c["rows"] for c in whole["coverages"] if c["id"] == coverage_id)


def _coverage(snapshot: Snapshot, coverage: str) -> dict[str, Any]:
    for listed in snapshot["coverages"]:
        if listed["id"] == coverage:
            found: dict[str, Any] = listed
            return found
    known = ", ".join(c["id"] for c in snapshot["coverages"]) or "none"
    raise NotFound(f"snapshot {snapshot['id']} has no coverage {coverage!r}; it has: {known}")


def snapshot_summary(snapshot_id: str) -> Snapshot:
    """The snapshot without its rows (every coverage's summary): what POST /snapshots answers."""
    return _public(_meta(snapshot_id))


def summary_of(snapshot: Snapshot) -> Snapshot:
    """The snapshot without rows: what lists and the DynamoDB item hold."""
    return {
        **{k: v for k, v in snapshot.items() if k != "coverages"},
        "coverages": [{k: v for k, v in c.items() if k != "rows"} for c in snapshot["coverages"]],
    }


def list_snapshots(limit: int, cursor: str | None) -> tuple[list[Snapshot], str | None]:
    items, next_cursor = TrueupTable().list_snapshots(limit, cursor)
    return [_public(item) for item in items], next_cursor


_ONE = "(under_licensed|unmapped|over_licensed|matched)"
# What ?status= accepts (the API's description says so): statuses, comma-separated; empty for all.
STATUS_LIST_PATTERN = rf"^( *{_ONE} *(, *{_ONE} *)*)?$"


def parse_statuses(value: str | None) -> set[Status] | None:
    if value is None or not value.strip():
        return None
    known = {s.value: s for s in Status}
    wanted = [part.strip() for part in value.split(",") if part.strip()]
    unknown = [w for w in wanted if w not in known]
    if unknown:
        raise InvalidInput(f"unknown status {', '.join(unknown)}; use {', '.join(known)} (comma-separated)")
    return {known[w] for w in wanted}


def get_snapshot(
    snapshot_id: str, coverage: str | None = None, statuses: set[Status] | None = None
) -> Snapshot:
    """A whole snapshot ("latest" for the newest), optionally one coverage and some statuses only."""
    meta = _meta(snapshot_id)
    chosen = [_coverage(meta, coverage)] if coverage is not None else meta["coverages"]
    wanted = {s.value for s in statuses} if statuses is not None else None
    coverages = [
        {**c, "rows": [r for r in _rows(meta, c["id"]) if wanted is None or r["status"] in wanted]}
        for c in chosen
    ]
    return {**_public(meta), "coverages": coverages}


_CHANGE = "(new|closed|changed|same|first)"
CHANGE_LIST_PATTERN = rf"^( *{_CHANGE} *(, *{_CHANGE} *)*)?$"


def parse_changes(value: str | None) -> set[str] | None:
    """?change=new,closed: rows with these changes since the snapshot before; empty for all."""
    if value is None or not value.strip():
        return None
    from trueup.domain.models import Change

    known = {c.value for c in Change}
    wanted = {part.strip() for part in value.split(",") if part.strip()}
    unknown = sorted(wanted - known)
    if unknown:
        raise InvalidInput(f"unknown change {', '.join(unknown)}; use {', '.join(c.value for c in Change)}")
    return wanted


DECISION_FILTERS = ("will_bill", "will_adjust", "dismissed", "muted", "undecided", "lapsed")
_DECISION = f"({'|'.join(DECISION_FILTERS)})"
DECISION_LIST_PATTERN = rf"^( *{_DECISION} *(, *{_DECISION} *)*)?$"


def parse_decisions(value: str | None) -> set[str] | None:
    """?decision=dismissed,muted: rows whose decision in effect is one of these kinds; `undecided`: rows
    with none in effect (none, or a lapsed one); `lapsed`: rows whose decision lapsed."""
    if value is None or not value.strip():
        return None
    wanted = {part.strip() for part in value.split(",") if part.strip()}
    unknown = sorted(wanted - set(DECISION_FILTERS))
    if unknown:
        raise InvalidInput(f"unknown decision {', '.join(unknown)}; use {', '.join(DECISION_FILTERS)}")
    return wanted


def _decision_filters(row: dict[str, Any]) -> set[str]:
    """Which ?decision= filters a row matches."""
    decision: dict[str, Any] | None = row.get("decision")
    if decision is None:
        return {"undecided"}
    if decision["lapsed"]:
        return {"undecided", "lapsed"}
    return {decision["kind"]}


def client_history(key: str, coverage: str | None, snapshot_id: str = "latest") -> dict[str, Any]:
    """One client's figures in one coverage (None: the snapshot's first) over the last snapshots up
    to `snapshot_id`, oldest first: read from that snapshot's history, never from earlier snapshots."""
    from trueup.domain.changes import history_from_rows

    meta = _meta(snapshot_id)
    if coverage is None:
        if not meta["coverages"]:
            raise NotFound(f"snapshot {meta['id']} has no coverage")
        coverage = meta["coverages"][0]["id"]
    _coverage(meta, coverage)
    if "history_keys" in meta:
        history = _stored(meta["history_keys"][coverage])
    else:
        history = history_from_rows(_rows(meta, coverage), meta["id"], meta["taken_at"])
    if key not in history:
        raise NotFound(f"client {key!r} has no row in coverage {coverage!r} up to snapshot {meta['id']}")
    return {"key": key, "coverage": coverage, "snapshot_id": meta["id"], "points": history[key]}


def latest_coverage_ids() -> set[str] | None:
    """The coverages a rule may name: the latest snapshot's and the settings' (None: neither has any
    yet, so none can be checked)."""
    from trueup.services.reconciliation_settings import load_settings

    table = TrueupTable()
    meta = table.latest_snapshot()
    known = {c["id"] for c in meta["coverages"]} if meta else set()
    known |= {c.id for c in load_settings(table)[0].coverages or ()}
    return known or None


def latest_row(coverage: str, key: str) -> tuple[str, dict[str, Any]]:
    """(the latest snapshot's id, its row of client `key` in `coverage`), or NotFound saying which."""
    meta = _meta("latest")
    _coverage(meta, coverage)
    for row in _rows(meta, coverage):
        if (row["pax8_company_id"] or row["rmm_organization_ids"][0]) == key:
            return meta["id"], row
    raise NotFound(
        f"client {key!r} has no row in coverage {coverage!r} of the latest snapshot ({meta['id']}); "
        "key: the row's Pax8 company id, or the RMM organization id of an unmapped organization"
    )


def row_evidence(
    snapshot_id: str,
    coverage: str | None,
    key: str,
    sort: tuple[str, bool],
    start: int = 0,
    limit: int = 500,
) -> dict[str, Any]:
    """One row's evidence, frozen with the snapshot: its subscriptions and a page of its devices."""
    from trueup.services import evidence

    meta, chosen, index = _evidence_index(snapshot_id, coverage)
    return evidence.row_evidence(meta, chosen["id"], key, index, sort, start, limit)


def evidence_documents(
    snapshot_id: str, coverage: str | None, key: str | None
) -> tuple[Snapshot, dict[str, Any], Iterator[dict[str, Any]]]:
    """(the snapshot, the coverage, its rows' stored evidence): one row's (`key`), or every row's
    streamed in the clients' order (None)."""
    from trueup.services import evidence
    from trueup.store import evidence_files

    meta, chosen, index = _evidence_index(snapshot_id, coverage)
    if key is None:
        return meta, chosen, evidence_files.iter_rows(evidence.evidence_of(meta, chosen["id"])["data"])
    return meta, chosen, iter([evidence.read_row(meta, chosen["id"], key, index)])


def _evidence_index(
    snapshot_id: str, coverage: str | None
) -> tuple[Snapshot, dict[str, Any], dict[str, list[int]]]:
    from trueup.services import evidence

    meta = _meta(snapshot_id)
    if coverage is None and not meta["coverages"]:
        raise NotFound(f"snapshot {meta['id']} has no coverage")
    chosen = _coverage(meta, coverage) if coverage is not None else meta["coverages"][0]
    keys = evidence.evidence_of(meta, chosen["id"])
    index: dict[str, list[int]] = _stored(keys["index"])["rows"]
    return meta, chosen, index


# What ?sort= accepts: a column, "-" first for descending; no sort is the snapshot's own order.
SORT_KEYS = ("client", "devices", "licenses", "variance", "status", "monthly")
SORT_PATTERN = rf"^-?({'|'.join(SORT_KEYS)})?$"
DEFAULT_PAGE_ROWS = 500
MAX_PAGE_ROWS = 2000
_STATUS_RANK = {"under_licensed": 0, "unmapped": 1, "over_licensed": 2, "matched": 3}


def parse_sort(value: str | None) -> tuple[str, bool] | None:
    """(column, descending) from ?sort=, or None for the snapshot's own order."""
    if value is None or not value.strip() or value.strip() == "-":
        return None
    text = value.strip()
    key = text.removeprefix("-")
    if key not in SORT_KEYS:
        raise InvalidInput(
            f"unknown sort {value!r}; use one of {', '.join(SORT_KEYS)}, with - for descending"
        )
    return key, text.startswith("-")


def _set_aside(row: dict[str, Any]) -> bool:
    """Whether a decision in effect sets the row aside from the cards (dismissed or muted)."""
    decision: dict[str, Any] | None = row.get("decision")
    return decision is not None and not decision["lapsed"] and decision["kind"] in ("dismissed", "muted")


def _sorted(rows: list[dict[str, Any]], sort: tuple[str, bool] | None) -> list[dict[str, Any]]:
    """Rows by a column; "no data" (null) stays at the bottom either way, ties keep the stored order."""
    if sort is None:
        return rows
    key, descending = sort

    def value(row: dict[str, Any]) -> Any:
        if key == "status":
            return _STATUS_RANK.get(row["status"], len(_STATUS_RANK))
        if key == "client":
            return natural(row["client"])
        if key == "monthly":  # the monthly price gap; a row without amounts has no value
            amounts = row.get("amounts")
            return Decimal(amounts["monthly_price_gap"]) if amounts else None
        return row[key]

    present = [r for r in rows if value(r) is not None]
    missing = [r for r in rows if value(r) is None]
    return sorted(present, key=value, reverse=descending) + missing  # sorted() is stable either way


def snapshot_page(
    snapshot_id: str,
    coverage: str | None = None,
    statuses: set[Status] | None = None,
    *,
    sort: tuple[str, bool] | None = None,
    search: str | None = None,
    changes: set[str] | None = None,
    set_aside: bool | None = None,
    decisions: set[str] | None = None,
    start: int = 0,
    limit: int = DEFAULT_PAGE_ROWS,
) -> Snapshot:
    """A snapshot with one coverage's rows, a page at a time (the first coverage when none is named).

    Every coverage is listed with its summary; only the one asked for carries `rows` (this page of the
    rows that match `statuses`, `search` and `changes`, in `sort` order) and `rows_total` (how many match in
    all). `next_cursor` continues the page, null on the last one."""
    meta = _meta(snapshot_id)
    chosen = _coverage(meta, coverage) if coverage is not None else next(iter(meta["coverages"]), None)
    coverages = []
    next_cursor = None
    for listed in meta["coverages"]:
        entry = dict(listed)
        if chosen is not None and listed["id"] == chosen["id"]:
            needle = folded(search.strip()) if search and search.strip() else None
            wanted = {s.value for s in statuses} if statuses is not None else None
            rows = [
                row
                for row in _rows(meta, listed["id"])
                if (wanted is None or row["status"] in wanted)
                and (needle is None or needle in folded(row["client"]))
                and (changes is None or row.get("change") in changes)
                and (set_aside is None or _set_aside(row) is set_aside)
                and (decisions is None or not decisions.isdisjoint(_decision_filters(row)))
            ]
            ordered = _sorted(rows, sort)
            entry["rows"] = ordered[start : start + limit]
            entry["rows_total"] = len(ordered)
            if start + limit < len(ordered):
                next_cursor = str(start + limit)
        coverages.append(entry)
    return {**_public(meta), "coverages": coverages, "next_cursor": next_cursor}
