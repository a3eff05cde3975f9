"""The DynamoDB items trueup keeps: runs, current-generation pointers, mappings, settings, snapshots.

One table, keyed by (pk, sk). Documents are stored as JSON strings in `doc` (no Decimal round trips);
the few attributes that conditions test are stored beside them. Every write that can race has a
condition expression.

  pk        sk                     what
  RUN       <run id>               a sync run (time-sortable id: newest last)
  CURRENT   pax8 | rmm             the current generation of a source
  MAPPING   <pax8 company id>      a manual mapping, with its own version
  CLAIM     <rmm organization id>  which company's manual mapping holds the organization: written in
                                   the same transaction as the mapping, on condition that no other
                                   company holds it, so an organization is never in two companies
  SETTINGS  current                the settings document and its version
  SNAPSHOT  <snapshot id>          snapshot metadata and summaries (rows live in S3)
  LEASE     pax8 | rmm             the run whose sync of that source is running (one at a time)
  IDEMPOTENCY <key hash>           Powertools Idempotency records (trueup.api.idempotency; TTL)
  CYCLE     <cycle id>             a monthly cycle: its steps' states (trueup.domain.cycles)
  FIRING    <schedule>/<time>      one firing of a schedule, claimed once (Scheduler delivers at least
                                   once); what it started (TTL)
  SUGGESTIONS <pax8 gen>/<rmm gen> where the mapping suggestions worked out for that pair of
                                   generations are (trueup.store.suggestion_files; TTL)
  DECISION  <coverage>/<row key>   a decision on a client's gap in one coverage, with its version
  REVIEW    IGNORED#<org id>       what else people decided, each with its version: an RMM
            REJECTED#<company id>#<org id>   organization that is not billable, a rejected mapping
            TERMS#<coverage>/<row key>       suggestion, a client's terms in a coverage, an exclusion
            RULE#<rule name>                 rule (trueup.domain.review); one query reads them all
  AUDIT     <entry id>             the audit log (time-sortable ids): appended, never changed; each
  AUDIT-DECISION, -MAPPING, -SETTINGS <entry id>
  AUDIT-CLIENT <row key>#<entry id> entry is written under these too, in the same transaction, so
                                   that listing one kind or one client's entries is a query
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

from botocore.exceptions import ClientError

from trueup import aws
from trueup.config import config
from trueup.errors import Conflict, InvalidInput, LostRace

Item = dict[str, Any]
# Audit entries by kind, each kind's own partition (the table's policy names every partition).
AUDIT_KINDS = {
    kind: f"AUDIT-{kind.upper()}"
    for kind in ("decision", "mapping", "settings", "organization", "suggestion", "terms", "rule", "sync")
}
# What the REVIEW partition holds, by the prefix of its sort keys.
REVIEW_KINDS = ("IGNORED", "REJECTED", "TERMS", "RULE")


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

    # -- documents: one JSON document per item, created once, replaced only over what was read ------

    def _create_doc(self, pk: str, doc: Item) -> bool:
        """Store `doc` under (pk, its id) unless an item is there: False when one is."""
        item = {"pk": _s(pk), "sk": _s(doc["id"]), "doc": _s(json.dumps(doc))}
        try:
            self._db.put_item(TableName=self.name, Item=item, ConditionExpression="attribute_not_exists(pk)")
        except ClientError as exc:
            if _conditional_failure(exc):
                return False
            raise
        return True

    def _replace_doc(self, pk: str, doc: Item, expected_doc: Item) -> bool:
        """Write `doc` only if the stored one still equals `expected_doc` (an optimistic update):
        False when another writer changed it first."""
        try:
            self._db.put_item(
                TableName=self.name,
                Item={"pk": _s(pk), "sk": _s(doc["id"]), "doc": _s(json.dumps(doc))},
                ConditionExpression="doc = :expected",
                ExpressionAttributeValues={":expected": _s(json.dumps(expected_doc))},
            )
        except ClientError as exc:
            if _conditional_failure(exc):
                return False
            raise
        return True

    # -- sync runs ----------------------------------------------------------------------------------

    def create_run(self, run: Item) -> None:
        if not self._create_doc("RUN", run):
            raise Conflict(f"a run {run['id']} exists already")  # ids are made unique: never expected

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
        return self._replace_doc("RUN", run, expected_doc)

    # -- monthly cycles (trueup.domain.cycles) ------------------------------------------------------

    def create_cycle(self, cycle: Item) -> bool:
        """Record a new cycle; False when one of that id exists (a schedule's firing delivered twice)."""
        return self._create_doc("CYCLE", cycle)

    def get_cycle(self, cycle_id: str) -> Item | None:
        item = self._get("CYCLE", cycle_id)
        return _doc(item) if item else None

    def list_cycles(self, limit: int) -> list[Item]:
        items, _ = self._query("CYCLE", newest_first=True, limit=limit)
        return [_doc(i) for i in items[:limit]]

    def replace_cycle(self, cycle: Item, expected_doc: Item) -> bool:
        """Write `cycle` only if the stored one still equals `expected_doc`: each event's step is
        recorded once, however many functions record theirs at the same moment."""
        return self._replace_doc("CYCLE", cycle, expected_doc)

    # -- schedule firings ---------------------------------------------------------------------------

    def claim_firing(self, firing: str, started: str, expiration: int) -> str | None:
        """Claim one firing of a schedule for what it starts (`started`, e.g. a run id); None when
        claimed now, else what the first delivery of this firing started."""
        try:
            self._db.put_item(
                TableName=self.name,
                Item={
                    "pk": _s("FIRING"),
                    "sk": _s(firing),
                    "started": _s(started),
                    "expiration": {"N": str(expiration)},
                },
                ConditionExpression="attribute_not_exists(pk)",
            )
        except ClientError as exc:
            if not _conditional_failure(exc):
                raise
            item = self._get("FIRING", firing)
            return item["started"]["S"] if item else started
        return None

    def release_firing(self, firing: str) -> None:
        """Give a claimed firing back (what it was to start could not be), for Scheduler's retry."""
        self._db.delete_item(TableName=self.name, Key={"pk": _s("FIRING"), "sk": _s(firing)})

    # -- mapping suggestions worked out ahead ------------------------------------------------------

    def suggestions_of(self, pax8_generation: str, rmm_generation: str) -> str | None:
        """The S3 key of the suggestions stored for this pair of generations, if any (asking S3 for an
        object that is not there answers 403 to a function that may not list the bucket)."""
        item = self._get("SUGGESTIONS", f"{pax8_generation}/{rmm_generation}")
        return item["key"]["S"] if item else None

    def record_suggestions(
        self, pax8_generation: str, rmm_generation: str, key: str, expiration: int
    ) -> None:
        """Say where they are once stored, until `expiration` (epoch seconds: the table's TTL)."""
        self._db.put_item(
            TableName=self.name,
            Item={
                "pk": _s("SUGGESTIONS"),
                "sk": _s(f"{pax8_generation}/{rmm_generation}"),
                "key": _s(key),
                "expiration": {"N": str(expiration)},
            },
        )

    # -- current generations --------------------------------------------------------------------

    def get_current(self, source: str) -> Item | None:
        item = self._get("CURRENT", source)
        return _doc(item) if item else None

    def set_current(self, source: str, pointer: Item) -> tuple[bool, Item | None]:
        """Make a generation current unless a newer one (by sync start) already is.

        (True, the pointer it replaced, or None) when done; (False, None) when refused."""
        try:
            answer = self._db.put_item(
                TableName=self.name,
                Item={
                    "pk": _s("CURRENT"),
                    "sk": _s(source),
                    "doc": _s(json.dumps(pointer)),
                    "started_at": _s(pointer["started_at"]),
                },
                ConditionExpression="attribute_not_exists(pk) OR started_at < :started",
                ExpressionAttributeValues={":started": _s(pointer["started_at"])},
                ReturnValues="ALL_OLD",
            )
        except ClientError as exc:
            if _conditional_failure(exc):
                return False, None
            raise
        old = answer.get("Attributes")
        return True, (_doc(old) if old else None)

    # -- one sync of a source at a time -------------------------------------------------------------

    def acquire_sync_lease(self, source: str, run_id: str, now: str, expires: str) -> str | None:
        """Take the source's sync lease for `run_id` unless another run holds an unexpired one.

        None when taken; else the id of the run that holds it. Times are ISO 8601 UTC strings."""
        try:
            self._db.put_item(
                TableName=self.name,
                Item={"pk": _s("LEASE"), "sk": _s(source), "run_id": _s(run_id), "expires_at": _s(expires)},
                ConditionExpression="attribute_not_exists(pk) OR expires_at < :now OR run_id = :run",
                ExpressionAttributeValues={":now": _s(now), ":run": _s(run_id)},
            )
        except ClientError as exc:
            if not _conditional_failure(exc):
                raise
            held = self._get("LEASE", source)
            return held["run_id"]["S"] if held else None
        return None

    def release_sync_lease(self, source: str, run_id: str) -> None:
        """Give the lease back, if this run still holds it."""
        try:
            self._db.delete_item(
                TableName=self.name,
                Key={"pk": _s("LEASE"), "sk": _s(source)},
                ConditionExpression="run_id = :run",
                ExpressionAttributeValues={":run": _s(run_id)},
            )
        except ClientError as exc:
            if not _conditional_failure(exc):
                raise

    # -- mappings -------------------------------------------------------------------------------

    def manual_mappings(self) -> dict[str, list[str]]:
        """Every manual mapping: company id -> organization ids."""
        return {cid: record["rmm_organization_ids"] for cid, record in self.manual_mapping_records().items()}

    def manual_mapping_records(self) -> dict[str, Item]:
        """Every manual mapping as stored: organization ids, when and by whom, and its `version`."""
        items, _ = self._query("MAPPING")
        return {
            i["sk"]["S"]: {**_doc(i), "version": int(i["version"]["N"]) if "version" in i else 0}
            for i in items
        }

    def write_mapping(
        self,
        company_id: str,
        doc: Item | None,
        before: Item | None,
        owners: dict[str, str],
        audit: Item | None = None,
    ) -> None:
        """Set (doc) or remove (None) a company's manual mapping in one transaction.

        `before` is the mapping as read (None: there was none); the write happens only if it is
        unchanged. Each organization the mapping gains is claimed for the company on condition that
        no other company holds it; each it loses is released. `owners` (organization -> company, as
        read) names the holder in a refusal. A lost race raises Conflict and writes nothing.
        """
        key = {"pk": _s("MAPPING"), "sk": _s(company_id)}
        company = {":company": _s(company_id)}
        if before is None:
            unchanged: Item = {"ConditionExpression": "attribute_not_exists(pk)"}
        elif before["version"] == 0:  # written before mappings had versions
            unchanged = {"ConditionExpression": "attribute_exists(pk) AND attribute_not_exists(version)"}
        else:
            unchanged = {
                "ConditionExpression": "version = :version",
                "ExpressionAttributeValues": {":version": {"N": str(before["version"])}},
            }
        version = {"N": str((before["version"] if before else 0) + 1)}
        change: Item = (
            {"Put": {"TableName": self.name, "Item": {**key, "doc": _s(json.dumps(doc)), "version": version}}}
            if doc is not None
            else {"Delete": {"TableName": self.name, "Key": key}}
        )
        change[next(iter(change))].update(unchanged)
        old = set(before["rmm_organization_ids"]) if before else set()
        new = set(doc["rmm_organization_ids"]) if doc else set()
        # A mapping written before claims existed has none: it claims all its organizations now.
        gained = sorted(new if before is not None and before["version"] == 0 else new - old)
        lost = sorted(old - new)
        claims: list[Item] = [
            {
                "Put": {
                    "TableName": self.name,
                    "Item": {"pk": _s("CLAIM"), "sk": _s(org), "company": _s(company_id)},
                    "ConditionExpression": "attribute_not_exists(pk) OR company = :company",
                    "ExpressionAttributeValues": company,
                }
            }
            for org in gained
        ] + [
            {
                "Delete": {
                    "TableName": self.name,
                    "Key": {"pk": _s("CLAIM"), "sk": _s(org)},
                    "ConditionExpression": "attribute_not_exists(pk) OR company = :company",
                    "ExpressionAttributeValues": company,
                }
            }
            for org in lost
        ]
        logged = self.audit_writes(audit) if audit is not None else []
        # A transaction holds at most 100 items: a mapping that trades 50 organizations for 50 others
        # has its audit entry appended right after instead.
        together = len(claims) + 1 + len(logged) <= 100
        try:
            self._db.transact_write_items(TransactItems=[change, *claims, *(logged if together else [])])
            if audit is not None and not together:
                self.append_audit(audit)
        except ClientError as exc:
            if not _conditional_failure(exc):
                raise
            reasons = exc.response.get("CancellationReasons") or []
            taken = [
                org
                for org, reason in zip(gained, reasons[1 : 1 + len(gained)], strict=False)
                if reason.get("Code") == "ConditionalCheckFailed"
            ]
            if taken:
                holders = ", ".join(f"{org} (held by {owners.get(org, 'another company')})" for org in taken)
                raise Conflict(
                    f"RMM organization {holders} is already mapped; remove it there first"
                ) from exc
            raise LostRace(
                f"the mapping of {company_id} changed while this request was handled; try again"
            ) from exc

    # -- decisions ----------------------------------------------------------------------------------

    def decisions(self) -> dict[str, tuple[Item, int]]:
        """Every decision: "<coverage>/<row key>" -> (its document, its version)."""
        items, _ = self._query("DECISION")
        return {item["sk"]["S"]: (_doc(item), int(item["version"]["N"])) for item in items}

    def get_decision(self, key: str) -> tuple[Item | None, int]:
        item = self._get("DECISION", key)
        return (None, 0) if item is None else (_doc(item), int(item["version"]["N"]))

    def write_decision(self, key: str, doc: Item | None, expected_version: int, audit: Item) -> int:
        """Record (doc) or remove (None) a decision over the version read, with its audit entry, in
        one transaction: nothing is written when another writer changed it first (Conflict).
        Answers the new version (0 once removed)."""
        return self._write_versioned("DECISION", key, doc, expected_version, audit, f"the decision on {key}")

    # -- review: organizations not billable, rejected suggestions, clients' terms, exclusion rules -----

    def review_items(self) -> dict[str, dict[str, tuple[Item, int]]]:
        """Everything under REVIEW: kind (REVIEW_KINDS) -> key -> (its document, its version)."""
        found: dict[str, dict[str, tuple[Item, int]]] = {kind: {} for kind in REVIEW_KINDS}
        items, _ = self._query("REVIEW")
        for item in items:
            kind, _, key = item["sk"]["S"].partition("#")
            if kind in found:
                found[kind][key] = (_doc(item), int(item["version"]["N"]))
        return found

    def get_review_item(self, kind: str, key: str) -> tuple[Item | None, int]:
        item = self._get("REVIEW", f"{kind}#{key}")
        return (None, 0) if item is None else (_doc(item), int(item["version"]["N"]))

    def write_review_item(
        self, kind: str, key: str, doc: Item | None, expected_version: int, audit: Item
    ) -> int:
        """As write_decision, for an item under REVIEW."""
        if kind not in REVIEW_KINDS:
            raise ValueError(f"unknown review kind {kind!r}")
        return self._write_versioned("REVIEW", f"{kind}#{key}", doc, expected_version, audit, key)

    def _write_versioned(
        self, pk: str, sk: str, doc: Item | None, expected_version: int, audit: Item, what: str
    ) -> int:
        """Put (doc) or delete (None) a versioned item over the version read, with its audit entry,
        in one transaction: nothing is written when another writer changed it first (Conflict).
        Answers the new version (0 once deleted)."""
        item_key = {"pk": _s(pk), "sk": _s(sk)}
        if expected_version == 0:
            unchanged: Item = {"ConditionExpression": "attribute_not_exists(pk)"}
        else:
            unchanged = {
                "ConditionExpression": "version = :version",
                "ExpressionAttributeValues": {":version": {"N": str(expected_version)}},
            }
        version = expected_version + 1 if doc is not None else 0
        change: Item = (
            {
                "Put": {
                    "TableName": self.name,
                    "Item": {**item_key, "doc": _s(json.dumps(doc)), "version": {"N": str(version)}},
                    **unchanged,
                }
            }
            if doc is not None
            else {"Delete": {"TableName": self.name, "Key": item_key, **unchanged}}
        )
        try:
            self._db.transact_write_items(TransactItems=[change, *self.audit_writes(audit)])
        except ClientError as exc:
            if _conditional_failure(exc):
                raise Conflict(f"{what} changed while this request was handled") from exc
            raise
        return version

    # -- audit log --------------------------------------------------------------------------------

    def audit_writes(self, entry: Item) -> list[Item]:
        """The transaction items that append `entry` (it has an `id`, a `kind` and maybe a `client`):
        under AUDIT, under its kind's partition, and under AUDIT-CLIENT keyed by its client. Never over
        an existing entry."""
        keys = [("AUDIT", entry["id"]), (AUDIT_KINDS[entry["kind"]], entry["id"])]
        if entry.get("client"):
            keys.append(("AUDIT-CLIENT", f"{entry['client']}#{entry['id']}"))
        return [
            {
                "Put": {
                    "TableName": self.name,
                    "Item": {"pk": _s(pk), "sk": _s(sk), "doc": _s(json.dumps(entry))},
                    "ConditionExpression": "attribute_not_exists(pk)",
                }
            }
            for pk, sk in keys
        ]

    def append_audit(self, entry: Item) -> None:
        """An audit entry on its own (when the change it records is written elsewhere first)."""
        try:
            self._db.transact_write_items(TransactItems=self.audit_writes(entry))
        except ClientError as exc:
            if _conditional_failure(exc):
                raise Conflict(f"audit entry {entry['id']} exists already") from exc
            raise

    def list_audit(
        self, kind: str | None, client: str | None, limit: int, cursor: str | None
    ) -> tuple[list[Item], str | None]:
        """Entries newest first: all, one kind's or one client's (both: the client's, of that kind).
        Each is a query of one partition; `cursor` is the last entry id of the previous page."""
        if kind is not None and kind not in AUDIT_KINDS:
            raise InvalidInput(f"unknown audit kind {kind!r}; use {', '.join(AUDIT_KINDS)}")
        kwargs: dict[str, Any] = {"TableName": self.name, "ScanIndexForward": False, "ConsistentRead": True}
        if client:
            kwargs["KeyConditionExpression"] = "pk = :pk AND begins_with(sk, :client)"
            kwargs["ExpressionAttributeValues"] = {":pk": _s("AUDIT-CLIENT"), ":client": _s(f"{client}#")}
            start = {"pk": _s("AUDIT-CLIENT"), "sk": _s(f"{client}#{cursor}")} if cursor else None
        else:
            pk = AUDIT_KINDS[kind] if kind else "AUDIT"
            kwargs["KeyConditionExpression"] = "pk = :pk"
            kwargs["ExpressionAttributeValues"] = {":pk": _s(pk)}
            start = {"pk": _s(pk), "sk": _s(cursor)} if cursor else None
        entries: list[Item] = []
        while len(entries) < limit:
            answer = self._db.query(**kwargs, **({"ExclusiveStartKey": start} if start else {}))
            for item in answer.get("Items", []):
                entry = _doc(item)
                if kind and entry["kind"] != kind:
                    continue
                entries.append(entry)
                if len(entries) == limit:
                    return entries, entry["id"]
            start = answer.get("LastEvaluatedKey")
            if not start:
                break
        return entries, None

    def audit_between(self, after: str | None, up_to: str) -> list[Item]:
        """The log's entries after the id `after` (None: from the first) up to `up_to`, oldest first.
        Entry ids and snapshot ids are both the moment they were made, so these are the entries
        between two snapshots."""
        kwargs: dict[str, Any] = {
            "TableName": self.name,
            "KeyConditionExpression": "pk = :pk AND sk BETWEEN :after AND :up_to",
            "ExpressionAttributeValues": {
                ":pk": _s("AUDIT"),
                ":after": _s(after or "0"),
                ":up_to": _s(up_to),
            },
            "ConsistentRead": True,
        }
        entries: list[Item] = []
        while True:
            answer = self._db.query(**kwargs)
            entries.extend(_doc(i) for i in answer.get("Items", []) if i["sk"]["S"] != after)
            if "LastEvaluatedKey" not in answer:
                return entries
            kwargs["ExclusiveStartKey"] = answer["LastEvaluatedKey"]

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

    def put_settings(
        self, doc: Item, expected_version: int, changed: Item | None = None, audit: Item | None = None
    ) -> int:
        """Replace the settings over the version read, with the audit entry of the change."""
        condition = "attribute_not_exists(pk)" if expected_version == 0 else "version = :expected"
        values = {":expected": {"N": str(expected_version)}} if expected_version else {}
        put = {
            "TableName": self.name,
            "Item": {
                "pk": _s("SETTINGS"),
                "sk": _s("current"),
                "doc": _s(json.dumps(doc)),
                "version": {"N": str(expected_version + 1)},
                **({"changed": _s(json.dumps(changed))} if changed is not None else {}),
            },
            "ConditionExpression": condition,
            **({"ExpressionAttributeValues": values} if values else {}),
        }
        try:
            if audit is None:
                self._db.put_item(**put)
            else:
                self._db.transact_write_items(TransactItems=[{"Put": put}, *self.audit_writes(audit)])
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

    def put_cycle_snapshot(self, meta: Item, cycle: Item, expected_cycle: Item) -> bool:
        """Record a cycle's snapshot and the cycle's step that names it, both or neither: False (and
        nothing written) when the stored cycle is no longer `expected_cycle` (another delivery of
        the same event recorded its snapshot first)."""
        try:
            self._db.transact_write_items(
                TransactItems=[
                    {
                        "Put": {
                            "TableName": self.name,
                            "Item": {"pk": _s("SNAPSHOT"), "sk": _s(meta["id"]), "doc": _s(json.dumps(meta))},
                            "ConditionExpression": "attribute_not_exists(pk)",
                        }
                    },
                    {
                        "Put": {
                            "TableName": self.name,
                            "Item": {"pk": _s("CYCLE"), "sk": _s(cycle["id"]), "doc": _s(json.dumps(cycle))},
                            "ConditionExpression": "doc = :expected",
                            "ExpressionAttributeValues": {":expected": _s(json.dumps(expected_cycle))},
                        }
                    },
                ]
            )
        except ClientError as exc:
            if _conditional_failure(exc):
                return False
            raise
        return True

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

    def snapshot_before(self, snapshot_id: str) -> Item | None:
        """The snapshot taken just before this one (ids sort by the time they were taken)."""
        items, _ = self._query("SNAPSHOT", newest_first=True, limit=1, start_after=snapshot_id)
        return _doc(items[0]) if items else None


# A page's cursor is the id of the last snapshot on it: any id-shaped value is a valid place to continue
# from (the next page holds the snapshots older than it), so the API's description can say exactly
# what a cursor looks like.
CURSOR_PATTERN = r"^\d{8}T\d{9}Z-[0-9a-f]{6}$"
_SORT_KEY = re.compile(CURSOR_PATTERN)


def _encode_cursor(sk: str) -> str:
    return sk


def _decode_cursor(cursor: str) -> str:
    if not _SORT_KEY.match(cursor):
        raise InvalidInput(f"cursor {cursor[:40]!r} is not a snapshot id such as 20261201T060000000Z-1a2b3c")
    return cursor
