"""CSV exports in S3: written once under exports/YYYY/MM/<snapshot id>/, handed out as presigned links.

Links are signed per request with Signature Version 4 against the bucket's regional endpoint (or the
local stand-in's, where the local stack runs).
"""

from __future__ import annotations

import functools
from datetime import datetime
from typing import IO, Any

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError

from trueup import aws
from trueup.config import config
from trueup.domain.status import Status

CSV_CONTENT_TYPE = "text/csv; charset=utf-8"


def export_key(snapshot_id: str, taken_at: datetime, coverage_id: str, statuses: set[Status] | None) -> str:
    suffix = "" if not statuses else "--" + "+".join(sorted(s.value for s in statuses))
    return f"exports/{taken_at:%Y}/{taken_at:%m}/{snapshot_id}/{coverage_id}{suffix}.csv"


def evidence_export_key(snapshot_id: str, taken_at: datetime, coverage_id: str, client: str | None) -> str:
    """One row's evidence CSV (`client`: the row's key) or a whole coverage's (None)."""
    suffix = "" if client is None else "--" + client.replace("/", "_")
    return f"exports/{taken_at:%Y}/{taken_at:%m}/{snapshot_id}/evidence/{coverage_id}{suffix}.csv"


def audit_export_key(snapshot_id: str, taken_at: datetime) -> str:
    """The audit log's entries since the snapshot before this one, beside its report."""
    return f"exports/{taken_at:%Y}/{taken_at:%m}/{snapshot_id}/audit.csv"


def _head(key: str) -> dict[str, Any] | None:
    try:
        head: dict[str, Any] = aws.client("s3").head_object(Bucket=config().bucket, Key=key)
    except ClientError as exc:
        # Without s3:ListBucket (deliberately not granted) S3 answers 403 for a missing key: write it.
        if exc.response.get("Error", {}).get("Code") in {"403", "404", "NoSuchKey", "NotFound", "Forbidden"}:
            return None
        raise
    return head


def exists(key: str) -> bool:
    return _head(key) is not None


def lines_of(key: str) -> int | None:
    """How many lines an export written with `lines` holds, or None when it is not written yet."""
    head = _head(key)
    if head is None:
        return None
    return int(head.get("Metadata", {}).get("lines", "0"))


def upload(body: IO[bytes], key: str, file_name: str, lines: int | None = None) -> None:
    aws.client("s3").upload_fileobj(
        body,
        config().bucket,
        key,
        ExtraArgs={
            "ContentType": CSV_CONTENT_TYPE,
            "ContentDisposition": f'attachment; filename="{file_name}"',
            **({"Metadata": {"lines": str(lines)}} if lines is not None else {}),
        },
    )


@functools.cache
def _signing_client() -> Any:
    """An S3 client that signs with SigV4 (boto3 still defaults to V2 for presigning in some setups)."""
    settings = config()
    if settings.s3_endpoint_url:  # the local stand-in: path-style URLs on its own host
        signing = Config(signature_version="s3v4", s3={"addressing_style": "path"})
        endpoint = settings.s3_endpoint_url
    else:
        signing = Config(signature_version="s3v4", s3={"addressing_style": "virtual"})
        endpoint = f"https://s3.{settings.region}.amazonaws.com"
    return boto3.session.Session().client(
        "s3", region_name=settings.region, endpoint_url=endpoint, config=signing
    )


def reset_signing_client() -> None:
    _signing_client.cache_clear()


def presigned_link(key: str, file_name: str, seconds: int) -> str:
    url: str = _signing_client().generate_presigned_url(
        "get_object",
        Params={
            "Bucket": config().bucket,
            "Key": key,
            "ResponseContentDisposition": f'attachment; filename="{file_name}"',
            "ResponseContentType": CSV_CONTENT_TYPE,
        },
        ExpiresIn=seconds,
    )
    return url
