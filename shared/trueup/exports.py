"""CSV exports of snapshots, written once to S3 and handed out as short-lived presigned links.

Snapshots never change, so one object per (snapshot, coverage, status filter) is enough: it is
written on the first request and reused after. Links are signed per request with Signature
Version 4 against the bucket's regional endpoint.
"""

from __future__ import annotations

import functools
import os
import tempfile
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError

from trueup import aws
from trueup.config import aws_resources
from trueup.domain.models import Status
from trueup.errors import InvalidInput
from trueup.reports.csv_report import write_csv
from trueup.snapshots import get_snapshot

DEFAULT_LINK_SECONDS = 15 * 60
MAX_LINK_SECONDS = 7 * 24 * 3600  # SigV4's limit


def link_lifetime() -> int:
    """EXPORT_LINK_SECONDS (default 15 minutes, at most 7 days)."""
    raw = os.environ.get("EXPORT_LINK_SECONDS", str(DEFAULT_LINK_SECONDS))
    try:
        seconds = int(raw)
    except ValueError:
        raise InvalidInput(f"EXPORT_LINK_SECONDS must be a whole number of seconds, got {raw!r}") from None
    if not 1 <= seconds <= MAX_LINK_SECONDS:
        raise InvalidInput(
            f"EXPORT_LINK_SECONDS must be between 1 and {MAX_LINK_SECONDS} (7 days), got {seconds}"
        )
    return seconds


@functools.cache
def _signing_client() -> Any:
    """An S3 client that signs with SigV4 (boto3 still defaults to V2 for presigning in some setups)."""
    region = os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or "us-east-1"
    local = os.environ.get("AWS_ENDPOINT_URL_S3") or os.environ.get("AWS_ENDPOINT_URL")
    if local:  # the local stand-in: path-style URLs on its own host
        config = Config(signature_version="s3v4", s3={"addressing_style": "path"})
        return boto3.session.Session().client("s3", region_name=region, endpoint_url=local, config=config)
    config = Config(signature_version="s3v4", s3={"addressing_style": "virtual"})
    return boto3.session.Session().client(
        "s3", region_name=region, endpoint_url=f"https://s3.{region}.amazonaws.com", config=config
    )


def reset_signing_client() -> None:
    _signing_client.cache_clear()


def export_key(snapshot_id: str, taken_at: datetime, coverage_id: str, statuses: set[Status] | None) -> str:
    suffix = "" if not statuses else "--" + "+".join(sorted(s.value for s in statuses))
    return f"exports/{taken_at:%Y}/{taken_at:%m}/{snapshot_id}/{coverage_id}{suffix}.csv"


def file_name(taken_at: datetime, coverage_id: str, statuses: set[Status] | None) -> str:
    suffix = "" if not statuses else "-" + "-".join(sorted(s.value.replace("_", "-") for s in statuses))
    return f"trueup-reconciliation-{taken_at:%Y-%m-%d}-{coverage_id}{suffix}.csv"


def export_snapshot(
    snapshot_id: str, coverage: str | None, statuses: set[Status] | None, now: datetime | None = None
) -> dict[str, Any]:
    """Write the CSV if it is not there yet; answer {url, expires_at, key}."""
    snapshot = get_snapshot(snapshot_id, coverage, statuses)
    if not snapshot["coverages"]:
        raise InvalidInput(f"snapshot {snapshot['id']} has no coverage to export")
    chosen = snapshot["coverages"][0]
    taken_at = datetime.fromisoformat(snapshot["taken_at"])
    key = export_key(snapshot["id"], taken_at, chosen["id"], statuses)
    name = file_name(taken_at, chosen["id"], statuses)
    bucket = aws_resources().bucket
    if not _exists(bucket, key):
        with tempfile.SpooledTemporaryFile(max_size=4 * 1024 * 1024) as spool:
            write_csv(spool, snapshot, chosen, chosen["rows"])
            spool.seek(0)
            aws.client("s3").upload_fileobj(
                spool,
                bucket,
                key,
                ExtraArgs={
                    "ContentType": "text/csv; charset=utf-8",
                    "ContentDisposition": f'attachment; filename="{name}"',
                },
            )
    lifetime = link_lifetime()
    url = _signing_client().generate_presigned_url(
        "get_object",
        Params={
            "Bucket": bucket,
            "Key": key,
            "ResponseContentDisposition": f'attachment; filename="{name}"',
            "ResponseContentType": "text/csv; charset=utf-8",
        },
        ExpiresIn=lifetime,
    )
    expires_at = (now or datetime.now(UTC)) + timedelta(seconds=lifetime)
    return {
        "url": url,
        "expires_at": expires_at.isoformat().replace("+00:00", "Z"),
        "key": key,
        "file_name": name,
        "rows": len(chosen["rows"]),
    }


def _exists(bucket: str, key: str) -> bool:
    try:
        aws.client("s3").head_object(Bucket=bucket, Key=key)
    except ClientError as exc:
        # Without s3:ListBucket (deliberately not granted) S3 answers 403 for a missing key: write it.
        if exc.response.get("Error", {}).get("Code") in {"403", "404", "NoSuchKey", "NotFound", "Forbidden"}:
            return False
        raise
    return True
