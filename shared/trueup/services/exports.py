"""CSV exports of snapshots, written once to S3 and handed out as short-lived presigned links.

Snapshots never change, so one object per (snapshot, coverage, status filter) is enough: it is
written on the first request and reused after.
"""

from __future__ import annotations

import tempfile
from datetime import UTC, datetime, timedelta
from typing import Any

from trueup.config import config
from trueup.domain.status import Status
from trueup.errors import NotFound
from trueup.observability import MetricUnit, emit_metrics
from trueup.reports.csv_report import write_csv
from trueup.services.snapshots import get_snapshot
from trueup.store import export_files


def file_name(taken_at: datetime, coverage_id: str, statuses: set[Status] | None) -> str:
    suffix = "" if not statuses else "-" + "-".join(sorted(s.value.replace("_", "-") for s in statuses))
    return f"trueup-reconciliation-{taken_at:%Y-%m-%d}-{coverage_id}{suffix}.csv"


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
    if not export_files.exists(key):
        with tempfile.SpooledTemporaryFile(max_size=4 * 1024 * 1024) as spool:
            write_csv(spool, snapshot, chosen, chosen["rows"])
            spool.seek(0)
            export_files.upload(spool, key, name)
        emit_metrics(
            {"ExportsWritten": (MetricUnit.Count, 1), "ExportRows": (MetricUnit.Count, len(chosen["rows"]))}
        )
    lifetime = config().export_link_seconds
    url = export_files.presigned_link(key, name, lifetime)
    expires_at = (now or datetime.now(UTC)) + timedelta(seconds=lifetime)
    return {
        "url": url,
        "expires_at": expires_at.isoformat().replace("+00:00", "Z"),
        "key": key,
        "file_name": name,
        "rows": len(chosen["rows"]),
    }
