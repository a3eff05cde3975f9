"""The DynamoDB items trueup keeps: runs, current-generation pointers, mappings, settings, snapshots.

One table, keyed by (pk, sk). Documents are stored as JSON strings in `doc` (no Decimal round trips);
the few attributes that conditions test are stored beside them. Every write that can race has a
condition expression.

  pk        sk                     what
  RUN       <run id>               a sync run (time-sortable id: newest last)
  CURRENT   pax8 | rmm             the current generation of a source
  MAPPING   <pax8 company id>      a manual mapping
  META      mappings               the mappings' version (every mapping change bumps it)
  SETTINGS  current                the settings document and its version
  SNAPSHOT  <snapshot id>          snapshot metadata and summaries (rows live in S3)
"""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Iterator
from typing import Any

from botocore.exceptions import ClientError

from trueup import aws
from trueup.config import config
from trueup.errors import Conflict, InvalidInput

Item = dict[str, Any]


def _s(value: str) -> dict[str, str]:
    return {"S": value}


def _doc(item: Item) -> Item:
    return json.loads(item["doc"]["S"])  # type: ignore[no-any-return]


def _conditional_failure(exc: ClientError) -> bool:
    code = exc.response.get("Error", {}).get("Code")
    return code in {"ConditionalCheckFailedException", "TransactionCanceledException"}


class TrueupTable:
    """Typed access to trueup's table; documents in and out are plain JSON-able dicts."""

    def __init__(self, name: str | None = None) -> None:
        self.name = name or config().table
        self._db = aws.client("dynamodb")

    # -- generic helpers ------------------------------------------------------------------------

    def _get(self, pk: str, sk: str) -> Item | None:
        answer = self._db.get_item(TableName=self.name, Key={"pk": _s(pk), "sk": _s(sk)}, ConsistentRead=True)
        item: Item | None = answer.get("Item")
        return item

    def _query(
        self, pk: str, *, newest_first: bool = False, limit: int | None = None, start_after: str | None = None
    ) -> tuple[list[Item], str | None]:
        kwargs: dict[str, Any] = {
            "TableName": self.name,
            "KeyConditionExpression": "pk = :pk",
            "ExpressionAttributeValues": {":pk": _s(pk)},
            "ScanIndexForward": not newest_first,
            "ConsistentRead": True,
        }
        if limit:
            kwargs["Limit"] = limit
        if start_after:
            kwargs["ExclusiveStartKey"] = {"pk": _s(pk), "sk": _s(start_after)}
        items: list[Item] = []
        while True:
            answer = self._db.query(**kwargs)
            items.extend(answer.get("Items", []))
            last = answer.get("LastEvaluatedKey")
            if not last or (limit and len(items) >= limit):
                return items, (last["sk"]["S"] if last else None)
            kwargs["ExclusiveStartKey"] = last

    # -- runs -----------------------------------------------------------------------------------

    def create_run(self, run: Item) -> None:
        item = {"pk": _s("RUN"), "sk": _s(run["id"]), "doc": _s(json.dumps(run))}
        self._db.put_item(TableName=self.name, Item=item, ConditionExpression="attribute_not_exists(pk)")

    def get_run(self, run_id: str) -> Item | None:
        item = self._get("RUN", run_id)
        return _doc(item) if item else None

    def list_runs(self, limit: int) -> list[Item]:
        items, _ = self._query("RUN", newest_first=True, limit=limit)
        return [_doc(i) for i in items[:limit]]

    def iter_runs(self) -> Iterator[Item]:
        items, _ = self._query("RUN")
        for item in items:
            yield _doc(item)

    def replace_run(self, run: Item, expected_doc: Item) -> bool:
        """Write `run` only if the stored run still equals `expected_doc` (optimistic update)."""
        try:
            self._db.put_item(
                TableName=self.name,
                Item={"pk": _s("RUN"), "sk": _s(run["id"]), "doc": _s(json.dumps(run))},
                ConditionExpression="doc = :expected",
                ExpressionAttributeValues={":expected": _s(json.dumps(expected_doc))},
            )
        except ClientError as exc:
            if _conditional_failure(exc):
                return False
            raise
        return True

    # -- current generations --------------------------------------------------------------------

    def get_current(self, source: str) -> Item | None:
        item = self._get("CURRENT", source)
        return _doc(item) if item else None

    def set_current(self, source: str, pointer: Item) -> bool:
        """Make a generation current unless a newer one (by sync start) already is. False if refused."""
        try:
            self._db.put_item(
                TableName=self.name,
                Item={
                    "pk": _s("CURRENT"),
                    "sk": _s(source),
                    "doc": _s(json.dumps(pointer)),
                    "started_at": _s(pointer["started_at"]),
                },
                ConditionExpression="attribute_not_exists(pk) OR started_at < :started",
                ExpressionAttributeValues={":started": _s(pointer["started_at"])},
            )
        except ClientError as exc:
            if _conditional_failure(exc):
                return False
            raise
        return True

    # -- mappings -------------------------------------------------------------------------------

    def manual_mappings(self) -> tuple[dict[str, list[str]], int]:
        """Every manual mapping (company id -> organization ids) and the mappings' version."""
        records, version = self.manual_mapping_records()
        return {cid: doc["rmm_organization_ids"] for cid, doc in records.items()}, version

    def manual_mapping_records(self) -> tuple[dict[str, Item], int]:
        """Every manual mapping as stored (organization ids, when and by whom) and the mappings' version."""
        items, _ = self._query("MAPPING")
        meta = self._get("META", "mappings")
        version = int(meta["version"]["N"]) if meta else 0
        return {i["sk"]["S"]: _doc(i) for i in items}, version

    def write_mapping(self, company_id: str, doc: Item | None, expected_version: int) -> None:
        """Set (doc) or remove (None) a manual mapping, if nothing changed since `expected_version`."""
        key = {"pk": _s("MAPPING"), "sk": _s(company_id)}
        change: Item = (
            {"Put": {"TableName": self.name, "Item": {**key, "doc": _s(json.dumps(doc))}}}
            if doc is not None
            else {"Delete": {"TableName": self.name, "Key": key}}
        )
        version_update: Item = {
            "Update": {
                "TableName": self.name,
                "Key": {"pk": _s("META"), "sk": _s("mappings")},
                "UpdateExpression": "SET version = :next",
                "ConditionExpression": "attribute_not_exists(version) OR version = :expected"
                if expected_version == 0
                else "version = :expected",
                "ExpressionAttributeValues": {
                    ":next": {"N": str(expected_version + 1)},
                    ":expected": {"N": str(expected_version)},
                },
            }
        }
        try:
            self._db.transact_write_items(TransactItems=[version_update, change])
        except ClientError as exc:
            if _conditional_failure(exc):
                raise Conflict("the mappings changed while this request was handled; try again") from exc
            raise

    # -- settings -------------------------------------------------------------------------------

    def get_settings(self) -> tuple[Item | None, int]:
        doc, version, _ = self.get_settings_record()
        return doc, version

    def get_settings_record(self) -> tuple[Item | None, int, Item | None]:
        """The settings document, its version, and {updated_at, updated_by} of the last change (or None)."""
        item = self._get("SETTINGS", "current")
        if item is None:
            return None, 0, None
        changed = json.loads(item["changed"]["S"]) if "changed" in item else None
        return _doc(item), int(item["version"]["N"]), changed

    def put_settings(self, doc: Item, expected_version: int, changed: Item | None = None) -> int:
        condition = "attribute_not_exists(pk)" if expected_version == 0 else "version = :expected"
        values = {":expected": {"N": str(expected_version)}} if expected_version else {}
        try:
            self._db.put_item(
                TableName=self.name,
                Item={
                    "pk": _s("SETTINGS"),
                    "sk": _s("current"),
                    "doc": _s(json.dumps(doc)),
                    "version": {"N": str(expected_version + 1)},
                    **({"changed": _s(json.dumps(changed))} if changed is not None else {}),
                },
                ConditionExpression=condition,
                **({"ExpressionAttributeValues": values} if values else {}),
            )
        except ClientError as exc:
            if _conditional_failure(exc):
                raise Conflict("the settings changed while this request was handled; try again") from exc
            raise
        return expected_version + 1

    # -- snapshots ------------------------------------------------------------------------------

    def put_snapshot(self, meta: Item) -> None:
        self._db.put_item(
            TableName=self.name,
            Item={"pk": _s("SNAPSHOT"), "sk": _s(meta["id"]), "doc": _s(json.dumps(meta))},
            ConditionExpression="attribute_not_exists(pk)",
        )

    def get_snapshot(self, snapshot_id: str) -> Item | None:
        item = self._get("SNAPSHOT", snapshot_id)
        return _doc(item) if item else None

    def list_snapshots(self, limit: int, cursor: str | None) -> tuple[list[Item], str | None]:
        """Newest first; the cursor says where the previous page ended."""
        start = _decode_cursor(cursor) if cursor else None
        items, _ = self._query("SNAPSHOT", newest_first=True, limit=limit + 1, start_after=start)
        page = items[:limit]
        next_cursor = _encode_cursor(page[-1]["sk"]["S"]) if len(items) > limit else None
        return [_doc(i) for i in page], next_cursor

    def latest_snapshot(self) -> Item | None:
        items, _ = self._query("SNAPSHOT", newest_first=True, limit=1)
        return _doc(items[0]) if items else None


def _encode_cursor(sk: str) -> str:
    return base64.urlsafe_b64encode(sk.encode()).decode().rstrip("=")


_SORT_KEY = re.compile(r"^\d{8}T\d{9}Z-[0-9a-f]{6}$")


def _decode_cursor(cursor: str) -> str:
    try:
        decoded = base64.b64decode(cursor + "=" * (-len(cursor) % 4), altchars=b"-_", validate=True).decode()
    except (ValueError, UnicodeDecodeError):
        decoded = ""
    if not _SORT_KEY.match(decoded):
        raise InvalidInput(f"cursor {cursor!r} is not one this API gave out")
    return decoded
