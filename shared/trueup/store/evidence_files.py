"""Snapshot evidence in S3: per coverage, one object of gzip members (one per row) and a small index.

Evidence is written once with its snapshot and never changed. Tens of thousands of rows are not
tens of thousands of objects: each coverage's rows go, one gzip member each, into one object, and
its index says where each row's member starts and how long it is, so that one row is read with one
ranged GET. Read whole, the object is JSON Lines (a gzip reader joins the members): a coverage's
evidence CSV streams it without the index.

On the way there, the devices (a million in a large RMM) wait on local disk (`DeviceSpill`), in
buckets of rows, so that memory holds one bucket at a time.
"""

from __future__ import annotations

import gzip
import json
import os
import tempfile
from collections import defaultdict
from collections.abc import Iterator, Sequence
from datetime import datetime
from typing import IO, Any

from boto3.s3.transfer import TransferConfig

from trueup import aws
from trueup.config import config
from trueup.errors import NotFound

_UPLOAD = TransferConfig(multipart_chunksize=8 * 1024 * 1024, max_concurrency=2)
INDEX_FORMAT = 1


def evidence_keys(snapshot_id: str, taken_at: datetime, coverage_id: str) -> dict[str, str]:
    base = f"snapshots/{taken_at:%Y}/{taken_at:%m}/{snapshot_id}/evidence/{coverage_id}"
    return {"data": f"{base}.jsonl.gz", "index": f"{base}.index.json.gz"}


class DeviceSpill:
    """Device entries put aside on local disk by row, in `buckets` files by the rows' order.

    `order`: every row key in the order the evidence is written (the clients' names): the first
    keys go to the first bucket, and so on, so that reading the buckets in turn meets the rows in
    that order with only one bucket in memory."""

    def __init__(self, order: Sequence[str], buckets: int = 64):
        self._dir = tempfile.TemporaryDirectory(prefix="trueup-evidence-")
        self.buckets = max(1, min(buckets, len(order)))
        self.bucket_of = {key: i * self.buckets // max(1, len(order)) for i, key in enumerate(order)}
        self._files: dict[int, IO[bytes]] = {}
        self.devices = 0

    def place(self, key: str) -> tuple[int, bytes] | None:
        """Where row `key`'s devices go: (its bucket, the start of each of its lines); None: no row."""
        bucket = self.bucket_of.get(key)
        return None if bucket is None else (bucket, key.encode() + b"\t")

    def add(self, place: tuple[int, bytes], tag: bytes, fragment: bytes) -> None:
        """One device of the row at `place`; `tag` is what the writer needs besides its fragment
        (short, no tab). Millions of devices pass here: what can be worked out once per row is."""
        bucket, start = place
        handle = self._files.get(bucket)
        if handle is None:
            handle = self._files[bucket] = open(  # noqa: SIM115 (closed in close())
                os.path.join(self._dir.name, f"{bucket}"), "ab", buffering=256 * 1024
            )
        handle.write(start + tag + b"\t" + fragment + b"\n")
        self.devices += 1

    def bucket(self, bucket: int) -> dict[str, list[tuple[bytes, bytes]]]:
        """One bucket's devices by row key: [(tag, fragment)], then the bucket's file is removed."""
        handle = self._files.pop(bucket, None)
        rows: dict[str, list[tuple[bytes, bytes]]] = defaultdict(list)
        if handle is None:
            return rows
        handle.close()
        path = os.path.join(self._dir.name, f"{bucket}")
        with open(path, "rb") as stored:
            for line in stored:
                key, tag, fragment = line.rstrip(b"\n").split(b"\t", 2)
                rows[key.decode()].append((tag, fragment))
        os.remove(path)
        return rows

    def close(self) -> None:
        for handle in self._files.values():
            handle.close()
        self._files.clear()
        self._dir.cleanup()

    def __enter__(self) -> DeviceSpill:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()


class EvidenceWriter:
    """One coverage's evidence: rows appended as gzip members to a local file, then uploaded with
    its index."""

    def __init__(self, keys: dict[str, str]):
        self.keys = keys
        self._file = tempfile.TemporaryFile()  # noqa: SIM115 (closed in upload() / discard())
        self._offset = 0
        self.index: dict[str, list[int]] = {}  # row key -> [offset, length, devices, subscriptions]

    def add(self, key: str, document: bytes, devices: int, subscriptions: int) -> None:
        member = gzip.compress(document, compresslevel=2, mtime=0)  # fast: thousands of rows
        self._file.write(member)
        self.index[key] = [self._offset, len(member), devices, subscriptions]
        self._offset += len(member)

    def upload(self) -> dict[str, str]:
        s3 = aws.client("s3")
        self._file.seek(0)
        s3.upload_fileobj(
            self._file,
            config().bucket,
            self.keys["data"],
            ExtraArgs={"ContentType": "application/x-ndjson"},  # no ContentEncoding: read by range
            Config=_UPLOAD,
        )
        self._file.close()
        index = {"format": INDEX_FORMAT, "rows": self.index}
        s3.put_object(
            Bucket=config().bucket,
            Key=self.keys["index"],
            Body=gzip.compress(json.dumps(index, separators=(",", ":")).encode(), 6),
            ContentType="application/json",
            ContentEncoding="gzip",
        )
        return self.keys

    def discard(self) -> None:
        self._file.close()


def read_index(key: str) -> dict[str, list[int]]:
    body = aws.client("s3").get_object(Bucket=config().bucket, Key=key)["Body"].read()
    index: dict[str, Any] = json.loads(gzip.decompress(body))
    rows: dict[str, list[int]] = index["rows"]
    return rows


def read_row(data_key: str, entry: Sequence[int]) -> dict[str, Any]:
    """One row's evidence: one ranged GET of its member."""
    offset, length = entry[0], entry[1]
    response = aws.client("s3").get_object(
        Bucket=config().bucket, Key=data_key, Range=f"bytes={offset}-{offset + length - 1}"
    )
    document: dict[str, Any] = json.loads(gzip.decompress(response["Body"].read()))
    return document


def iter_rows(data_key: str) -> Iterator[dict[str, Any]]:
    """Every row's evidence of a coverage, in stored order, streamed (one row in memory at a time)."""
    try:
        body = aws.client("s3").get_object(Bucket=config().bucket, Key=data_key)["Body"]
    except aws.client("s3").exceptions.NoSuchKey as exc:
        raise NotFound(f"no evidence at {data_key}") from exc
    with gzip.GzipFile(fileobj=body, mode="rb") as stream:
        for line in stream:
            yield json.loads(line)
