"""Sync generations in S3: written whole, read back whole, and refused when damaged."""

from __future__ import annotations

import gzip
from collections.abc import Iterator

import boto3
import pytest
from moto import mock_aws

from tests.engine_builders import SYNCED, devices, org
from trueup import aws
from trueup.domain.models import Device, Organization, SkippedRecord
from trueup.store.generations import (
    CorruptGeneration,
    GenerationWriter,
    StoredGeneration,
    iter_rmm,
    mark_superseded,
    read_rmm_organizations,
)


@pytest.fixture
def bucket(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    for name, value in {
        "AWS_ACCESS_KEY_ID": "t",
        "AWS_SECRET_ACCESS_KEY": "t",
        "AWS_DEFAULT_REGION": "us-east-1",
        "TRUEUP_TABLE": "t",
        "TRUEUP_BUCKET": "gen-test",
        "TRUEUP_EVENT_BUS": "b",
    }.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    aws.reset_clients()
    with mock_aws():
        boto3.client("s3", region_name="us-east-1").create_bucket(Bucket="gen-test")
        yield "gen-test"
    aws.reset_clients()


def write_rmm_stored() -> StoredGeneration:
    writer = GenerationWriter("rmm", "g1", SYNCED, rmm_source="ninjaone")
    writer.add_all([org(1, "Acme"), org(2, "Bolt")])
    writer.add_all(devices(1, 3) + devices(2, 2, seen_days_ago=None))
    writer.add(
        SkippedRecord(
            source="ninjaone", kind="device", id="ninjaone:9", reason="bad", organization_id="ninjaone:2"
        )
    )
    return writer.upload()


def write_rmm() -> str:
    return write_rmm_stored().key


def test_a_generation_reads_back_exactly_what_was_written(bucket: str) -> None:
    key = write_rmm()
    records = list(iter_rmm(key))
    kinds = [Organization] * 2 + [Device] * 5 + [SkippedRecord]
    assert all(isinstance(r, kind) for r, kind in zip(records, kinds, strict=True))
    assert records[6].last_seen is None and records[2].last_seen is not None  # type: ignore[union-attr]
    assert [o.name for o in read_rmm_organizations(key, None)] == ["Acme", "Bolt"]


def test_the_parties_are_kept_apart_and_read_without_the_generation(bucket: str) -> None:
    stored = write_rmm_stored()
    assert stored.parties_key == "generations/rmm/ninjaone/g1.parties.json.gz"
    assert [o.name for o in read_rmm_organizations(stored.key, stored.parties_key)] == ["Acme", "Bolt"]
    # Only the parties are read: the generation itself may be gone (it is not, but it is not asked for).
    s3 = boto3.client("s3", region_name="us-east-1")
    s3.delete_object(Bucket=bucket, Key=stored.key)
    assert [o.id for o in read_rmm_organizations(stored.key, stored.parties_key)] == [
        "ninjaone:1",
        "ninjaone:2",
    ]
    s3.put_object(Bucket=bucket, Key=stored.parties_key, Body=gzip.compress(b"[1, 2]"))
    with pytest.raises(CorruptGeneration, match="not trueup parties"):
        read_rmm_organizations(stored.key, stored.parties_key)


def test_a_superseded_generation_and_its_parties_are_tagged_for_expiry(bucket: str) -> None:
    stored = write_rmm_stored()
    mark_superseded(stored.key, stored.parties_key)
    s3 = boto3.client("s3", region_name="us-east-1")
    for key in (stored.key, stored.parties_key):
        assert s3.get_object_tagging(Bucket=bucket, Key=key)["TagSet"] == [
            {"Key": "trueup-superseded", "Value": "true"}
        ]


def test_a_truncated_or_altered_generation_is_refused(bucket: str) -> None:
    key = write_rmm()
    s3 = boto3.client("s3", region_name="us-east-1")
    lines = gzip.decompress(s3.get_object(Bucket=bucket, Key=key)["Body"].read()).splitlines(keepends=True)
    s3.put_object(Bucket=bucket, Key="cut", Body=gzip.compress(b"".join(lines[:-3])))
    with pytest.raises(CorruptGeneration, match="truncated"):
        list(iter_rmm("cut"))
    s3.put_object(Bucket=bucket, Key="half", Body=gzip.compress(b"".join(lines))[:-20])
    with pytest.raises(CorruptGeneration):
        list(iter_rmm("half"))
    s3.put_object(Bucket=bucket, Key="foreign", Body=gzip.compress(b'{"hello": 1}\n'))
    with pytest.raises(CorruptGeneration, match="not a trueup generation"):
        list(iter_rmm("foreign"))
