"""Snapshot rows in S3: one gzipped JSON document per coverage, written once and never changed.

A 10,000-client snapshot does not fit a DynamoDB item, so the rows live here and the table keeps only
metadata and summaries (`trueup.store.table`).
"""

from __future__ import annotations

import gzip
import json
from datetime import datetime
from typing import Any

from trueup import aws
from trueup.config import config


def coverage_key(snapshot_id: str, taken_at: datetime, coverage_id: str) -> str:
    """Where one coverage's rows of a snapshot live (a snapshot taken before kept every coverage in one
    document, `snapshots/<year>/<month>/<id>.json.gz`, which is still read)."""
    return f"snapshots/{taken_at:%Y}/{taken_at:%m}/{snapshot_id}/{coverage_id}.json.gz"


def history_key(snapshot_id: str, taken_at: datetime, coverage_id: str) -> str:
    """Where one coverage's client histories, as of a snapshot, live (trueup.domain.changes)."""
    return f"snapshots/{taken_at:%Y}/{taken_at:%m}/{snapshot_id}/history/{coverage_id}.json.gz"


def put_snapshot_document(key: str, snapshot: dict[str, Any]) -> None:
    aws.client("s3").put_object(
        Bucket=config().bucket,
        Key=key,
        Body=gzip.compress(json.dumps(snapshot).encode(), 6),
        ContentType="application/json",
        ContentEncoding="gzip",
    )


def read_snapshot_document(key: str) -> dict[str, Any]:
    body = aws.client("s3").get_object(Bucket=config().bucket, Key=key)["Body"].read()
    document: dict[str, Any] = json.loads(gzip.decompress(body))
    return document
