"""The local stack's state on disk: what the tables and buckets hold, saved after every write.

moto keeps everything in memory, so the stack saves the items of every table and the objects of
every bucket (the template's own resources) after each invocation that may have written (before
the HTTP response goes out; after each event), and puts them back on start. Saving what the
resources hold, rather than replaying moto's request log, keeps the state as small as the data
(nothing to compact) and independent of moto's internals.

Layout of the state directory:

    state.json          {"format", "saved_at", "tables": {logical id: [items]},
                         "buckets": {logical id: {key: object entry}}}
    blobs/ab/abcdef...  object contents, named by their SHA-256 (written once, shared by equal objects)

Crash safety: a blob is written to a temporary file, fsynced and renamed before any state.json
refers to it; state.json is replaced the same way (tmp, fsync, rename, fsync of the directory), so
a process killed at any moment leaves the previous or the new state, complete. Blobs no state
refers to any more are removed after the new state is in place, and leftovers of a killed save
(temporary files, blobs of a state never committed) are swept on start.

Consistency: a save reads the tables first and the buckets second. trueup writes an S3 object
before the DynamoDB item that points at it, so every pointer saved has its object saved too.
Only the current version of each object is kept (versioning history is not).
"""

from __future__ import annotations

import base64
import contextlib
import dataclasses
import hashlib
import json
import logging
import os
import threading
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from infra.local.aws_standin import WriteGate

log = logging.getLogger("infra.local.persistence")

FORMAT = 1
STATE_FILE = "state.json"
BLOBS = "blobs"
_TMP_SUFFIX = ".tmp"

Item = dict[str, Any]  # a DynamoDB item in the low-level JSON form ({"S": ...}); binaries as base64


class StateError(RuntimeError):
    """The state directory cannot be read or written; the message names the file."""


@dataclass(frozen=True)
class StoredObject:
    blob: str  # SHA-256 of the content
    size: int
    etag: str  # the ETag moto gave the object, to notice when it changes
    content_type: str | None = None
    content_encoding: str | None = None
    cache_control: str | None = None
    content_disposition: str | None = None
    content_language: str | None = None
    metadata: Mapping[str, str] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"blob": self.blob, "size": self.size, "etag": self.etag}
        for name in (
            "content_type",
            "content_encoding",
            "cache_control",
            "content_disposition",
            "content_language",
        ):
            value = getattr(self, name)
            if value is not None:
                out[name] = value
        if self.metadata:
            out["metadata"] = dict(self.metadata)
        return out

    @classmethod
    def from_json(cls, raw: Mapping[str, Any]) -> StoredObject:
        return cls(
            blob=raw["blob"],
            size=int(raw["size"]),
            etag=raw.get("etag", ""),
            content_type=raw.get("content_type"),
            content_encoding=raw.get("content_encoding"),
            cache_control=raw.get("cache_control"),
            content_disposition=raw.get("content_disposition"),
            content_language=raw.get("content_language"),
            metadata=dict(raw.get("metadata") or {}),
        )


@dataclass
class SavedState:
    tables: dict[str, list[Item]] = field(default_factory=dict)
    buckets: dict[str, dict[str, StoredObject]] = field(default_factory=dict)
    saved_at: str | None = None

    def blobs(self) -> set[str]:
        return {entry.blob for objects in self.buckets.values() for entry in objects.values()}

    def to_json(self) -> dict[str, Any]:
        return {
            "format": FORMAT,
            "saved_at": self.saved_at,
            "tables": self.tables,
            "buckets": {
                bucket: {key: entry.to_json() for key, entry in sorted(objects.items())}
                for bucket, objects in self.buckets.items()
            },
        }

    @classmethod
    def from_json(cls, raw: Mapping[str, Any]) -> SavedState:
        if raw.get("format") != FORMAT:
            raise ValueError(f"unknown state format {raw.get('format')!r} (expected {FORMAT})")
        return cls(
            tables={name: list(items) for name, items in raw.get("tables", {}).items()},
            buckets={
                bucket: {key: StoredObject.from_json(entry) for key, entry in objects.items()}
                for bucket, objects in raw.get("buckets", {}).items()
            },
            saved_at=raw.get("saved_at"),
        )


def _fsync_directory(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_atomically(path: Path, data: bytes) -> None:
    """Replace `path` with `data` so that a crash leaves either the old or the new file, whole."""
    tmp = path.with_name(f"{path.name}.{os.getpid()}.{threading.get_ident()}{_TMP_SUFFIX}")
    try:
        with open(tmp, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise
    _fsync_directory(path.parent)


class StateDirectory:
    """The files: state.json and the content-addressed blobs."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.blobs = root / BLOBS
        self.state_file = root / STATE_FILE

    def ensure(self) -> None:
        self.blobs.mkdir(parents=True, exist_ok=True)

    def load(self) -> SavedState | None:
        try:
            raw = self.state_file.read_bytes()
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise StateError(f"cannot read {self.state_file}: {exc}") from exc
        try:
            state = SavedState.from_json(json.loads(raw))
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise StateError(
                f"{self.state_file} is not a state this version of trueup can read ({exc}); "
                "move it away to start empty"
            ) from exc
        missing = sorted(b for b in state.blobs() if not self.blob_path(b).is_file())
        if missing:
            raise StateError(f"{self.state_file} refers to {len(missing)} missing blob(s), e.g. {missing[0]}")
        return state

    def blob_path(self, digest: str) -> Path:
        return self.blobs / digest[:2] / digest

    def put_blob(self, data: bytes) -> str:
        digest = hashlib.sha256(data).hexdigest()
        path = self.blob_path(digest)
        if not path.is_file():
            path.parent.mkdir(parents=True, exist_ok=True)
            write_atomically(path, data)
        return digest

    def read_blob(self, digest: str) -> bytes:
        return self.blob_path(digest).read_bytes()

    def commit(self, state: SavedState) -> None:
        data = json.dumps(state.to_json(), separators=(",", ":"), sort_keys=True).encode()
        write_atomically(self.state_file, data)

    def remove_blobs(self, digests: set[str]) -> None:
        for digest in digests:
            with contextlib.suppress(FileNotFoundError):
                self.blob_path(digest).unlink()

    def sweep(self, keep: set[str]) -> int:
        """Remove temporary files and blobs outside `keep` (leftovers of an interrupted save)."""
        removed = 0
        for path in self._files():
            if path.name.endswith(_TMP_SUFFIX) or (
                path.parent.parent == self.blobs and path.name not in keep
            ):
                with contextlib.suppress(FileNotFoundError):
                    path.unlink()
                    removed += 1
        return removed

    def _files(self) -> Iterator[Path]:
        if self.root.is_dir():
            yield from (p for p in self.root.iterdir() if p.is_file() and p.name.endswith(_TMP_SUFFIX))
        if self.blobs.is_dir():
            for folder in self.blobs.iterdir():
                if folder.is_dir():
                    yield from (p for p in folder.iterdir() if p.is_file())


# ------------------------------------------------------------------------------- DynamoDB items
def encode_item(value: Any) -> Any:
    """A low-level DynamoDB value as JSON: binaries (bytes from boto3) become base64 strings."""
    if isinstance(value, dict):
        out: dict[str, Any] = {}
        for kind, inner in value.items():
            if kind == "B":
                out[kind] = base64.b64encode(inner).decode("ascii")
            elif kind == "BS":
                out[kind] = [base64.b64encode(b).decode("ascii") for b in inner]
            elif kind == "M":
                out[kind] = {k: encode_item(v) for k, v in inner.items()}
            elif kind == "L":
                out[kind] = [encode_item(v) for v in inner]
            else:
                out[kind] = inner
        return out
    return value


def decode_item(value: Any) -> Any:
    if isinstance(value, dict):
        out: dict[str, Any] = {}
        for kind, inner in value.items():
            if kind == "B":
                out[kind] = base64.b64decode(inner)
            elif kind == "BS":
                out[kind] = [base64.b64decode(b) for b in inner]
            elif kind == "M":
                out[kind] = {k: decode_item(v) for k, v in inner.items()}
            elif kind == "L":
                out[kind] = [decode_item(v) for v in inner]
            else:
                out[kind] = inner
        return out
    return value


@dataclass(frozen=True)
class RestoreSummary:
    items: int
    objects: int
    saved_at: str | None


class AwsState:
    """Saves the stand-in's tables and buckets to a `StateDirectory` and restores them.

    `tables` and `buckets` map template logical ids to the physical names in the stand-in, so a
    state survives a change of local naming. Thread-safe: concurrent `save()` calls coalesce, and
    each returns only once a save that began after its call has been committed.

    With the stand-in's `WriteGate`, a save reads while no write is in progress (new ones wait), so it
    knows exactly which writes it holds, and `save_if_changed()` saves only when a write came since:
    the stack calls it before every answer, so no answer shows what is not yet on disk.
    """

    def __init__(
        self,
        directory: StateDirectory,
        dynamodb: Any,
        s3: Any,
        tables: Mapping[str, str],
        buckets: Mapping[str, str],
        gate: WriteGate | None = None,
    ) -> None:
        self.directory = directory
        self._dynamodb = dynamodb
        self._s3 = s3
        self._tables = dict(tables)
        self._buckets = dict(buckets)
        self._gate = gate
        self._saved_version = 0  # writes the last committed save holds (with a gate)
        self._save_lock = threading.Lock()
        self._counter_lock = threading.Lock()
        self._requested = 0
        self._saved = 0
        self._current = SavedState()
        self.saves = 0  # committed saves, for tests and logs

    def restore(self) -> RestoreSummary:
        """Put the saved state into the (empty, just created) tables and buckets."""
        self.directory.ensure()
        state = self.directory.load() or SavedState()
        swept = self.directory.sweep(state.blobs())
        if swept:
            log.info("removed %d leftover file(s) of an interrupted save", swept)
        items = objects = 0
        for logical_id, saved_items in state.tables.items():
            table = self._tables.get(logical_id)
            if table is None:
                log.warning("the saved state has table %s, which the template no longer declares", logical_id)
                continue
            self._put_items(table, saved_items)
            items += len(saved_items)
        restored_buckets: dict[str, dict[str, StoredObject]] = {}
        for logical_id, entries in state.buckets.items():
            bucket = self._buckets.get(logical_id)
            if bucket is None:
                log.warning(
                    "the saved state has bucket %s, which the template no longer declares", logical_id
                )
                continue
            restored: dict[str, StoredObject] = {}
            for key, entry in entries.items():
                answer = self._s3.put_object(
                    Bucket=bucket, Key=key, Body=self.directory.read_blob(entry.blob), **_put_args(entry)
                )
                # moto computes its own ETag (a multipart upload's differs); remember it, so the
                # next save does not take every restored object for a changed one.
                restored[key] = dataclasses.replace(entry, etag=answer["ETag"])
                objects += 1
            restored_buckets[logical_id] = restored
        self._current = SavedState(tables=state.tables, buckets=restored_buckets, saved_at=state.saved_at)
        if self._gate is not None:
            self._saved_version = self._gate.version  # what was just put back is what is on disk
        return RestoreSummary(items, objects, state.saved_at)

    def save(self) -> None:
        with self._counter_lock:
            self._requested += 1
            ticket = self._requested
        with self._save_lock:
            if self._saved >= ticket:
                return  # a save that started after this call's writes has already committed them
            with self._counter_lock:
                covers = self._requested
            if self._gate is None:
                self._save_now()
            else:
                with self._gate.quiescent() as version:
                    self._save_now()
                self._saved_version = version
            self._saved = covers

    def save_if_changed(self) -> bool:
        """Save if anything was written since the last save (every time, without a gate). True if saved."""
        if self._gate is not None and self._gate.version <= self._saved_version:
            return False
        self.save()
        return True

    def _save_now(self) -> None:
        # Tables before buckets: see the module docstring (pointers never outrun their objects).
        tables = {logical_id: self._scan(table) for logical_id, table in self._tables.items()}
        buckets = {
            logical_id: self._objects(logical_id, bucket) for logical_id, bucket in self._buckets.items()
        }
        state = SavedState(tables=tables, buckets=buckets, saved_at=datetime.now(UTC).isoformat())
        previous = self._current
        self.directory.commit(state)
        self._current = state
        self.saves += 1
        self.directory.remove_blobs(previous.blobs() - state.blobs())

    def _scan(self, table: str) -> list[Item]:
        items: list[Item] = []
        for page in self._dynamodb.get_paginator("scan").paginate(TableName=table, ConsistentRead=True):
            items.extend({name: encode_item(value) for name, value in item.items()} for item in page["Items"])
        return items

    def _objects(self, logical_id: str, bucket: str) -> dict[str, StoredObject]:
        known = self._current.buckets.get(logical_id, {})
        out: dict[str, StoredObject] = {}
        for page in self._s3.get_paginator("list_objects_v2").paginate(Bucket=bucket):
            for listed in page.get("Contents", []):
                key, etag, size = listed["Key"], listed["ETag"], listed["Size"]
                entry = known.get(key)
                if entry is not None and entry.etag == etag and entry.size == size:
                    out[key] = entry
                    continue
                try:
                    answer = self._s3.get_object(Bucket=bucket, Key=key)
                except self._s3.exceptions.NoSuchKey:
                    continue  # deleted since the listing
                data = answer["Body"].read()
                out[key] = StoredObject(
                    blob=self.directory.put_blob(data),
                    size=len(data),
                    etag=answer["ETag"],
                    content_type=answer.get("ContentType"),
                    content_encoding=answer.get("ContentEncoding"),
                    cache_control=answer.get("CacheControl"),
                    content_disposition=answer.get("ContentDisposition"),
                    content_language=answer.get("ContentLanguage"),
                    metadata=dict(answer.get("Metadata") or {}),
                )
        return out

    def _put_items(self, table: str, items: list[Item]) -> None:
        for start in range(0, len(items), 25):
            requests: list[dict[str, Any]] = [
                {"PutRequest": {"Item": {name: decode_item(value) for name, value in item.items()}}}
                for item in items[start : start + 25]
            ]
            pending: dict[str, Any] = {table: requests}
            for _ in range(10):
                answer = self._dynamodb.batch_write_item(RequestItems=pending)
                pending = answer.get("UnprocessedItems") or {}
                if not pending:
                    break
            else:
                raise StateError(
                    f"could not restore the items of table {table}: the stand-in kept refusing them"
                )


def _put_args(entry: StoredObject) -> dict[str, Any]:
    args: dict[str, Any] = {}
    for name, arg in (
        ("content_type", "ContentType"),
        ("content_encoding", "ContentEncoding"),
        ("cache_control", "CacheControl"),
        ("content_disposition", "ContentDisposition"),
        ("content_language", "ContentLanguage"),
    ):
        value = getattr(entry, name)
        if value is not None:
            args[arg] = value
    if entry.metadata:
        args["Metadata"] = dict(entry.metadata)
    return args
