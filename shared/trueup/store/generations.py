"""Sync generations: complete, immutable sets of normalized records, stored as gzipped JSON Lines in S3.

A generation is written to a temporary spool file as records stream in (memory stays flat however
large the inventory), uploaded as one object, and only then made current by a conditional write in
DynamoDB (see `trueup.store.table`). Its first line is a header and its last line a footer with the
record counts, so a truncated or foreign object is refused when read rather than half-used.
"""

from __future__ import annotations

import gzip
import io
import json
import tempfile
from collections.abc import Generator, Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import IO, Any

from boto3.s3.transfer import TransferConfig
from pydantic import BaseModel, ConfigDict

from trueup import aws
from trueup.config import config
from trueup.domain.models import (
    Company,
    Device,
    Organization,
    Pax8Data,
    Product,
    SkippedRecord,
    Subscription,
)
from trueup.sources import generation_folder, is_rmm

FORMAT = 1
# Two 8 MB parts in flight at most: boto3's default (10) buffers up to 80 MB of a large generation.
_UPLOAD = TransferConfig(multipart_chunksize=8 * 1024 * 1024, max_concurrency=2)
TAG = "_t"  # each line's record type (records have a `kind` field of their own)
# "pax8" or one RMM source ("ninjaone", "datto": trueup.sources)
GenerationSource = str
_KINDS: dict[str, type[BaseModel]] = {
    "company": Company,
    "product": Product,
    "subscription": Subscription,
    "organization": Organization,
    "device": Device,
    "skipped": SkippedRecord,
}
_KIND_OF = {model: kind for kind, model in _KINDS.items()}


# A generation that is no longer current is tagged so; the bucket's lifecycle rule deletes tagged
# generations GenerationRetentionDays after they were written (template.yaml). Untagged, the current
# one is never deleted.
SUPERSEDED_TAG = {"Key": "trueup-superseded", "Value": "true"}


def mark_superseded(key: str, parties: str | None) -> None:
    """Tag a generation that is not (or no longer) current, and its parties if it has them, for the
    lifecycle rule to delete."""
    for each in (key, parties) if parties else (key,):
        aws.client("s3").put_object_tagging(
            Bucket=config().bucket, Key=each, Tagging={"TagSet": [SUPERSEDED_TAG]}
        )


class CorruptGeneration(RuntimeError):
    """A stored generation that cannot be read whole (truncated, foreign or of an unknown format)."""


def generation_key(source: GenerationSource, generation: str) -> str:
    return f"generations/{generation_folder(source)}/{generation}.jsonl.gz"


def parties_key(key: str) -> str:
    """Where a generation's parties (its Pax8 companies or RMM organizations) are kept apart: mapping
    needs only them, and reading them from the generation means reading past every subscription.
    The current pointer names them (a generation written before has none, and is read whole)."""
    return key.removesuffix(".jsonl.gz") + ".parties.json.gz"


# The record kinds that are a generation's parties: who is billed, and where devices belong.
_PARTY_KINDS = {"company": Company, "organization": Organization}


@dataclass(frozen=True)
class StoredGeneration:
    source: GenerationSource
    generation: str
    key: str
    synced_at: datetime
    counts: dict[str, int]  # records per kind, "skipped" included
    parties_key: str  # its companies or organizations, apart (`parties_key`)


class GenerationWriter:
    """Streams records into a gzip spool, then uploads it: `with GenerationWriter(...) as w: w.add(...)`."""

    def __init__(
        self, source: GenerationSource, generation: str, synced_at: datetime, rmm_source: str | None = None
    ):
        if is_rmm(source):
            rmm_source = source
        elif source == "rmm" and rmm_source:  # the one RMM of data written before there could be several
            source = rmm_source
        self.source = source
        self.generation = generation
        self.synced_at = synced_at
        self.counts: dict[str, int] = {}
        self.skipped: list[dict[str, Any]] = []  # the first skipped records, for the run's report
        # An RMM's: the other RMMs whose device names it read serials for (None: one RMM in use)
        self.matched_against: list[str] | None = None
        self.parties: list[dict[str, Any]] = []  # companies or organizations (a few thousand, small)
        # Spills to disk past 8 MB: a million devices never sit in memory.
        self._spool: IO[bytes] = tempfile.SpooledTemporaryFile(max_size=8 * 1024 * 1024)  # noqa: SIM115
        self._gzip = gzip.GzipFile(fileobj=self._spool, mode="wb", compresslevel=5)
        header = {
            TAG: "header",
            "format": FORMAT,
            "source": "rmm" if rmm_source else source,
            "generation": generation,
            "synced_at": synced_at.isoformat(),
            "rmm_source": rmm_source,
        }
        self._line(header)

    def _line(self, payload: dict[str, Any]) -> None:
        self._gzip.write(json.dumps(payload, separators=(",", ":")).encode() + b"\n")

    def add(self, record: BaseModel) -> None:
        kind = _KIND_OF[type(record)]
        self.counts[kind] = self.counts.get(kind, 0) + 1
        if isinstance(record, SkippedRecord) and len(self.skipped) < 100:
            self.skipped.append({"kind": record.kind, "id": record.id, "reason": record.reason})
        line = {**record.model_dump(mode="json"), TAG: kind}
        if kind in _PARTY_KINDS:
            self.parties.append(line)
        self._line(line)

    def add_all(self, records: Iterable[BaseModel]) -> None:
        for record in records:
            self.add(record)

    def upload(self) -> StoredGeneration:
        """Close the stream and put the object; nothing is current until the caller says so."""
        self._line({TAG: "footer", "counts": self.counts})
        self._gzip.close()
        self._spool.seek(0)
        key = generation_key(self.source, self.generation)
        # The parties first: whoever finds the generation finds them (nothing is current before both).
        aws.client("s3").put_object(
            Bucket=config().bucket,
            Key=parties_key(key),
            Body=gzip.compress(json.dumps({"format": FORMAT, "parties": self.parties}).encode(), 5),
            ContentType="application/json",
            ContentEncoding="gzip",
        )
        aws.client("s3").upload_fileobj(
            self._spool,
            config().bucket,
            key,
            ExtraArgs={"ContentType": "application/x-ndjson", "ContentEncoding": "gzip"},
            Config=_UPLOAD,
        )
        self._spool.close()
        return StoredGeneration(
            self.source, self.generation, key, self.synced_at, dict(self.counts), parties_key(key)
        )

    def discard(self) -> None:
        self._gzip.close()
        self._spool.close()


class _StoredDevice(Device):
    # A device line carries the line tag too; validating straight from the JSON bytes is the fast path.
    model_config = ConfigDict(frozen=True, extra="ignore")


_DEVICE_SUFFIX = f',"{TAG}":"device"}}'.encode()


def read_lines(key: str, skip: frozenset[str] = frozenset()) -> Generator[dict[str, Any] | Device]:
    """Every record line of a stored generation (header and footer checked, not yielded).

    Device lines (millions in a large RMM) come back as `Device` objects validated straight from
    their bytes; every other line as its dict. Lines of the kinds in `skip` are counted (the footer
    still checks the whole) but neither decoded nor yielded.
    """
    skipped_suffixes = {kind: f',"{TAG}":"{kind}"}}'.encode() for kind in skip}
    body = aws.client("s3").get_object(Bucket=config().bucket, Key=key)["Body"]
    counts: dict[str, int] = {}
    devices = 0
    header_seen: Any = None
    footer: Any = None
    with gzip.GzipFile(fileobj=body, mode="rb") as stream:
        try:
            for raw in io.BufferedReader(stream, buffer_size=1 << 20):
                if header_seen is not None and footer is None:
                    end = raw.rstrip()
                    if end.endswith(_DEVICE_SUFFIX):
                        devices += 1
                        yield _StoredDevice.model_validate_json(raw)
                        continue
                    passed = next(
                        (kind for kind, suffix in skipped_suffixes.items() if end.endswith(suffix)), None
                    )
                    if passed is not None:
                        counts[passed] = counts.get(passed, 0) + 1
                        continue
                line = json.loads(raw)
                kind = line.get(TAG)
                if header_seen is None:
                    if kind != "header" or line.get("format") != FORMAT:
                        raise CorruptGeneration(f"{key}: not a trueup generation of format {FORMAT}")
                    header_seen = line
                    continue
                if footer is not None:
                    raise CorruptGeneration(f"{key}: data after the footer")
                if kind == "footer":
                    footer = line
                    continue
                counts[kind] = counts.get(kind, 0) + 1
                yield line
        except (OSError, EOFError, ValueError) as exc:
            raise CorruptGeneration(f"{key}: unreadable ({exc})") from exc
    if devices:
        counts["device"] = devices
    if footer is None or footer.get("counts") != counts:
        raise CorruptGeneration(f"{key}: truncated (no footer, or counts differ)")


def read_pax8(key: str, synced_at: datetime) -> Pax8Data:
    companies: list[Company] = []
    products: list[Product] = []
    subscriptions: list[Subscription] = []
    skipped: list[SkippedRecord] = []
    target: dict[str, tuple[type[BaseModel], list[Any]]] = {
        "company": (Company, companies),
        "product": (Product, products),
        "subscription": (Subscription, subscriptions),
        "skipped": (SkippedRecord, skipped),
    }
    for line in read_lines(key):
        if isinstance(line, Device):
            raise CorruptGeneration(f"{key}: a device in a Pax8 generation")
        model, into = target[line.pop(TAG)]
        into.append(model.model_validate(line))
    return Pax8Data(
        companies=companies,
        products=products,
        subscriptions=subscriptions,
        skipped=skipped,
        synced_at=synced_at,
    )


def read_pax8_companies(key: str, parties: str | None) -> list[Company]:
    """Only the companies (what mapping needs), from the generation's `parties` when it has them."""
    stored = _read_parties(parties) if parties else None
    if stored is not None:
        return [Company.model_validate(line) for line in stored if line.pop(TAG) == "company"]
    companies = []  # a generation written before parties were kept apart: read past the rest
    for line in read_lines(key, skip=frozenset({"subscription", "product"})):
        if isinstance(line, Device):
            raise CorruptGeneration(f"{key}: a device in a Pax8 generation")
        if line.pop(TAG) == "company":
            companies.append(Company.model_validate(line))
    return companies


def read_rmm_organizations(key: str, parties: str | None) -> list[Organization]:
    """Only the organizations: enough for mapping, without reading devices (nor, with `parties`, the
    generation at all)."""
    stored = _read_parties(parties) if parties else None
    if stored is not None:
        return [Organization.model_validate(line) for line in stored if line.pop(TAG) == "organization"]
    organizations = []  # written before parties were kept apart: they come before the devices
    for line in read_lines_until_devices(key):
        if line.pop(TAG) == "organization":
            organizations.append(Organization.model_validate(line))
    return organizations


def _read_parties(key: str) -> list[dict[str, Any]]:
    """A generation's parties as stored beside it (the current pointer names them)."""
    body = aws.client("s3").get_object(Bucket=config().bucket, Key=key)["Body"].read()
    try:
        document = json.loads(gzip.decompress(body))
    except (OSError, EOFError, ValueError) as exc:
        raise CorruptGeneration(f"{key}: unreadable ({exc})") from exc
    if not isinstance(document, dict) or document.get("format") != FORMAT:
        raise CorruptGeneration(f"{key}: not trueup parties of format {FORMAT}")
    parties: list[dict[str, Any]] = document["parties"]
    return parties


def read_lines_until_devices(key: str) -> Generator[dict[str, Any]]:
    lines = read_lines(key)
    for line in lines:
        if isinstance(line, Device):
            lines.close()
            return
        yield line


def iter_rmm(key: str) -> Iterator[Organization | Device | SkippedRecord]:
    """Every record of an RMM generation, streamed (memory flat)."""
    for line in read_lines(key):
        if isinstance(line, Device):
            yield line
            continue
        kind = line.pop(TAG)
        if kind == "organization":
            yield Organization.model_validate(line)
        elif kind == "skipped":
            yield SkippedRecord.model_validate(line)
        else:
            raise CorruptGeneration(f"{key}: unexpected {kind!r} record in an RMM generation")
