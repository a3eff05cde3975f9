"""An RMM organization belongs to one company at most, even when two requests race.

Each mapping write claims the organizations it gains (CLAIM items) in the same DynamoDB transaction
as the mapping, on condition that no other company holds them. The race is made here by hand: both
requests read before either writes, which is exactly what two concurrent PUTs can do.
"""

from __future__ import annotations

import boto3
import pytest

from tests.aws_fixtures import REGION
from trueup.errors import Conflict
from trueup.store.table import TrueupTable


def mapping(*organizations: str) -> dict[str, object]:
    return {
        "rmm_organization_ids": list(organizations),
        "updated_at": "2026-12-01T00:00:00Z",
        "updated_by": None,
    }


def claims(table: TrueupTable) -> dict[str, str]:
    items = boto3.client("dynamodb", region_name=REGION).query(
        TableName=table.name,
        KeyConditionExpression="pk = :pk",
        ExpressionAttributeValues={":pk": {"S": "CLAIM"}},
    )["Items"]
    return {i["sk"]["S"]: i["company"]["S"] for i in items}


def test_two_writes_that_read_before_either_wrote_cannot_both_take_an_organization(
    table: TrueupTable,
) -> None:
    seen_by_a = table.manual_mapping_records()
    seen_by_b = table.manual_mapping_records()  # both see org-1 free
    table.write_mapping("A", mapping("org-1"), seen_by_a.get("A"), {})
    with pytest.raises(Conflict, match="org-1"):
        table.write_mapping("B", mapping("org-1", "org-2"), seen_by_b.get("B"), {"org-1": "Alpha"})
    # B wrote nothing: no empty manual mapping, no claim of org-2.
    assert table.manual_mappings() == {"A": ["org-1"]}
    assert claims(table) == {"org-1": "A"}


def test_different_organizations_never_conflict_and_a_release_frees_one(table: TrueupTable) -> None:
    seen = table.manual_mapping_records()
    table.write_mapping("A", mapping("org-1"), seen.get("A"), {})
    table.write_mapping("B", mapping("org-2"), seen.get("B"), {})  # read before A wrote: still fine
    records = table.manual_mapping_records()
    table.write_mapping("A", mapping("org-3"), records["A"], {})  # A lets org-1 go
    table.write_mapping("B", mapping("org-2", "org-1"), records["B"], {})
    assert claims(table) == {"org-1": "B", "org-2": "B", "org-3": "A"}
    records = table.manual_mapping_records()
    table.write_mapping("B", None, records["B"], {})  # back to automatic: its claims go with it
    assert claims(table) == {"org-3": "A"}


def test_a_second_write_of_the_same_company_from_a_stale_read_is_refused(table: TrueupTable) -> None:
    stale = table.manual_mapping_records()
    table.write_mapping("A", mapping("org-1"), stale.get("A"), {})
    with pytest.raises(Conflict, match="changed while this request was handled"):
        table.write_mapping("A", mapping("org-2"), stale.get("A"), {})
    assert table.manual_mappings() == {"A": ["org-1"]}


def test_a_mapping_written_before_claims_existed_claims_its_organizations_when_next_changed(
    table: TrueupTable,
) -> None:
    db = boto3.client("dynamodb", region_name=REGION)
    db.put_item(
        TableName=table.name,
        Item={"pk": {"S": "MAPPING"}, "sk": {"S": "A"}, "doc": {"S": '{"rmm_organization_ids": ["org-1"]}'}},
    )
    records = table.manual_mapping_records()
    assert records["A"]["version"] == 0
    table.write_mapping("A", mapping("org-1", "org-2"), records["A"], {})
    assert claims(table) == {"org-1": "A", "org-2": "A"}
