"""CSV exports of snapshots, written once to S3 and handed out as short-lived presigned links.

Snapshots never change, so one object per (snapshot, coverage, status filter) is enough: it is
written on the first request and reused after.
"""

from __future__ import annotations

import re
import tempfile
from datetime import UTC, datetime, timedelta
from typing import Any

from trueup.config import config
from trueup.domain.status import Status
from trueup.errors import NotFound
from trueup.observability import MetricUnit, emit_metrics
from trueup.reports.csv_report import write_csv_parts
from trueup.services.snapshots import get_snapshot
from trueup.store import export_files

ALL_COVERAGES = "all_coverages"  # no coverage's id: ids are lower-case words joined by hyphens


def file_name(taken_at: datetime, coverage_id: str, statuses: set[Status] | None) -> str:
    suffix = "" if not statuses else "-" + "-".join(sorted(s.value.replace("_", "-") for s in statuses))
    return f"trueup-reconciliation-{taken_at:%Y-%m-%d}-{coverage_id.replace('_', '-')}{suffix}.csv"


def export_snapshot(
    snapshot_id: str, coverage: str | None, statuses: set[Status] | None, now: datetime | None = None
) -> dict[str, Any]:
    """Write the CSV if it is not there yet; answer {url, expires_at, key, file_name, rows}."""
    snapshot = get_snapshot(snapshot_id, coverage, statuses)
    if not snapshot["coverages"]:
        raise NotFound(f"snapshot {snapshot['id']} has no coverage to export (its settings named none)")
    chosen = snapshot["coverages"][0]
    taken_at = datetime.fromisoformat(snapshot["taken_at"])
    key = export_files.export_key(snapshot["id"], taken_at, chosen["id"], statuses)
    name = file_name(taken_at, chosen["id"], statuses)
    _write_once(key, name, snapshot, [chosen])  # its rows are those of the statuses asked for
    return _link(key, name, len(chosen["rows"]), now)


def _link(key: str, name: str, rows: int, now: datetime | None) -> dict[str, Any]:
    """What an export answers: {url, expires_at, key, file_name, rows}, the link fresh."""
    lifetime = config().export_link_seconds
    expires_at = (now or datetime.now(UTC)) + timedelta(seconds=lifetime)
    return {
        "url": export_files.presigned_link(key, name, lifetime),
        "expires_at": expires_at.isoformat().replace("+00:00", "Z"),
        "key": key,
        "file_name": name,
        "rows": rows,
    }


def export_evidence(
    snapshot_id: str, coverage: str | None, client: str | None, now: datetime | None = None
) -> dict[str, Any]:
    """The evidence CSV of one row (`client`: its key) or of a whole coverage (None), written once;
    answers {url, expires_at, key, file_name, rows} (rows: the CSV's lines, devices and subscriptions)."""
    from trueup.reports.evidence_csv import write_evidence_csv
    from trueup.services.snapshots import evidence_documents

    snapshot, chosen, documents = evidence_documents(snapshot_id, coverage, client)
    taken_at = datetime.fromisoformat(snapshot["taken_at"])
    key = export_files.evidence_export_key(snapshot["id"], taken_at, chosen["id"], client)
    part = "" if client is None else "-" + re.sub(r"[^A-Za-z0-9]+", "-", client).strip("-")[:60]
    name = f"trueup-evidence-{taken_at:%Y-%m-%d}-{chosen['id']}{part}.csv"
    lines = export_files.lines_of(key)
    if lines is None:
        with tempfile.SpooledTemporaryFile(max_size=4 * 1024 * 1024) as spool:
            lines = write_evidence_csv(spool, documents, chosen["name"], snapshot["taken_at"])
            spool.seek(0)
            export_files.upload(spool, key, name, lines=lines)
        emit_metrics({"ExportsWritten": (MetricUnit.Count, 1), "ExportRows": (MetricUnit.Count, lines)})
    return _link(key, name, lines, now)


def export_audit(snapshot_id: str, now: datetime | None = None) -> dict[str, Any]:
    """The audit log's entries since the snapshot before this one (every entry up to it, for the
    first), as CSV beside its report, written once; answers as export_snapshot (rows: the entries)."""
    from trueup.services.snapshots import snapshot_summary

    snapshot = snapshot_summary(snapshot_id)
    taken_at = datetime.fromisoformat(snapshot["taken_at"])
    key = export_files.audit_export_key(snapshot["id"], taken_at)
    name = f"trueup-audit-{taken_at:%Y-%m-%d}.csv"
    return _link(key, name, _write_audit_once(key, name, snapshot["id"]), now)


def _write_audit_once(key: str, name: str, snapshot_id: str) -> int:
    from trueup.reports.audit_csv import write_audit_csv
    from trueup.store.table import TrueupTable

    lines = export_files.lines_of(key)
    if lines is not None:
        return lines
    table = TrueupTable()
    before = table.snapshot_before(snapshot_id)
    entries = table.audit_between(before["id"] if before else None, snapshot_id)
    with tempfile.SpooledTemporaryFile(max_size=4 * 1024 * 1024) as spool:
        lines = write_audit_csv(spool, entries)
        spool.seek(0)
        export_files.upload(spool, key, name, lines=lines)
    emit_metrics({"ExportsWritten": (MetricUnit.Count, 1), "ExportRows": (MetricUnit.Count, lines)})
    return lines


def export_every_coverage(snapshot_id: str) -> list[str]:
    """A cycle's exports: one CSV per coverage (every row), one with every coverage's rows, and the
    audit log's entries since the snapshot before. Each is written unless it is there already (a
    repeated event writes nothing twice); answers the keys, the all-coverages file and the audit last."""
    snapshot = get_snapshot(snapshot_id)
    taken_at = datetime.fromisoformat(snapshot["taken_at"])
    keys = []
    for coverage in snapshot["coverages"]:
        keys.append(export_files.export_key(snapshot["id"], taken_at, coverage["id"], None))
        _write_once(keys[-1], file_name(taken_at, coverage["id"], None), snapshot, [coverage])
    keys.append(export_files.export_key(snapshot["id"], taken_at, ALL_COVERAGES, None))
    _write_once(keys[-1], file_name(taken_at, ALL_COVERAGES, None), snapshot, snapshot["coverages"])
    audit = export_files.audit_export_key(snapshot["id"], taken_at)
    _write_audit_once(audit, f"trueup-audit-{taken_at:%Y-%m-%d}.csv", snapshot["id"])
    return [*keys, audit]


def _write_once(key: str, name: str, snapshot: dict[str, Any], coverages: list[dict[str, Any]]) -> None:
    if export_files.exists(key):
        return
    with tempfile.SpooledTemporaryFile(max_size=4 * 1024 * 1024) as spool:
        rows = write_csv_parts(spool, snapshot, [(c, c["rows"]) for c in coverages])
        spool.seek(0)
        export_files.upload(spool, key, name)
    emit_metrics({"ExportsWritten": (MetricUnit.Count, 1), "ExportRows": (MetricUnit.Count, rows)})
