"""Snapshot documents in S3: every row of every coverage, gzipped JSON, written once and never changed.

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


def rows_key(snapshot_id: str, taken_at: datetime) -> str:
    return f"snapshots/{taken_at:%Y}/{taken_at:%m}/{snapshot_id}.json.gz"


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
