"""The audit log's entries: who changed what, when, the value before and after, and why.

Entries are appended in the same DynamoDB transaction as the change they record
(trueup.store.table.audit_writes), so neither is ever written without the other; they are never
updated or deleted through the API.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from trueup.ids import new_id


def audit_entry(
    now: datetime,
    by: dict[str, Any] | None,
    kind: str,
    what: str,
    before: Any,
    after: Any,
    *,
    client: str | None = None,
    coverage: str | None = None,
    reason: str | None = None,
) -> dict[str, Any]:
    """One entry. `kind`: decision, mapping or settings; `client`: the row key it is about, if one."""
    return {
        "id": new_id(now),
        "at": now.isoformat().replace("+00:00", "Z"),
        "by": by,
        "kind": kind,
        "client": client,
        "coverage": coverage,
        "what": what,
        "before": before,
        "after": after,
        "reason": reason,
    }
