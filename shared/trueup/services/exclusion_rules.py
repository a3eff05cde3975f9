"""Exclusion rules: devices left out of some coverages' counts by name pattern, role or tag (an RMM's
tags or groups, such as Datto RMM's `_NotBillable_`), counted under `excluded_by_rule` with the rule's
name. Applied from the next snapshot on (trueup.domain.review)."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

from trueup.domain.rule_names import RULE_NAME_PATTERN
from trueup.errors import Conflict, InvalidInput
from trueup.services.review import RULE, Change, change, iso
from trueup.store.table import TrueupTable

RULE_NAME = re.compile(RULE_NAME_PATTERN, re.ASCII)  # \w as JSON Schema reads it


def list_rules() -> list[dict[str, Any]]:
    items = TrueupTable().review_items()[RULE]
    return [{"name": name, **doc, "version": version} for name, (doc, version) in sorted(items.items())]


def _check_name(name: str) -> str:
    if not RULE_NAME.fullmatch(name):
        raise InvalidInput(
            f"rule name {name[:100]!r}: 1 to 100 letters, digits, spaces or . ( ) & + , ' -, "
            "starting with a letter or digit"
        )
    return name


def set_rule(
    name: str, request: dict[str, Any], by: dict[str, Any] | None, if_match: int | None
) -> dict[str, Any]:
    """Create or replace a rule."""
    from trueup.services.snapshots import latest_coverage_ids

    _check_name(name)

    def cleaned(field: str) -> list[str]:
        return list(dict.fromkeys(v.strip() for v in request.get(field) or [] if v.strip()))

    patterns, roles, tags, coverages = (
        cleaned("name_patterns"),
        cleaned("roles"),
        cleaned("tags"),
        cleaned("coverage_ids"),
    )
    if not (patterns or roles or tags):
        raise InvalidInput("a rule needs at least one device name pattern, role or tag")
    known = latest_coverage_ids()
    unknown = [c for c in coverages if known is not None and c not in known]
    if unknown:  # well-formed, but not what the snapshots hold: a conflict with the current state
        raise Conflict(
            f"unknown coverage(s) {', '.join(unknown)}: "
            f"the latest snapshot and the settings have {', '.join(sorted(known or ()))}"
        )
    now = datetime.now(UTC)
    reason = (request.get("reason") or "").strip() or None
    doc = {
        "name": name,
        "coverage_ids": coverages,
        "name_patterns": patterns,
        "roles": roles,
        "tags": tags,
        "reason": reason,
        "updated_by": by,
        "updated_at": iso(now),
    }
    told = f"exclusion rule {name}: {_words(doc)}"
    _, version = change(_item(name), doc, by, if_match, told, reason, now)
    return {**doc, "version": version}


def remove_rule(name: str, by: dict[str, Any] | None, if_match: int | None) -> None:
    _check_name(name)
    change(_item(name), None, by, if_match, f"exclusion rule {name}: removed")


def _item(name: str) -> Change:
    return Change(RULE, name, "rule", f"exclusion rule {name!r}", "GET /rules")


def _words(doc: dict[str, Any]) -> str:
    said = [
        f"{label} {', '.join(doc[field])}"
        for field, label in (("name_patterns", "names"), ("roles", "roles"), ("tags", "tags"))
        if doc[field]
    ]
    where = ", ".join(doc["coverage_ids"]) if doc["coverage_ids"] else "every coverage"
    return f"leaves out devices with {' or '.join(said)}, in {where}"
