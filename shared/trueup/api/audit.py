"""Routes: /audit, who changed what: the log every change of mappings, settings and decisions appends to."""

import re
from typing import Any

from aws_lambda_powertools.event_handler.router import APIGatewayHttpRouter

from trueup.api.http import QueryParam, Request, answers
from trueup.errors import InvalidInput

router = APIGatewayHttpRouter()

AUDIT_KIND = QueryParam(
    "kind",
    "Only entries of this kind: decision, mapping, settings, organization (ignored or restored), "
    "suggestion (rejected), terms (a client's allowance and tolerance), rule (exclusion rules), sync "
    "(a held sync accepted or discarded)",
    pattern=r"^(|decision|mapping|settings|organization|suggestion|terms|rule|sync)$",
)
AUDIT_CLIENT = QueryParam("client", "Only entries about this client (its row key)")
AUDIT_LIMIT = QueryParam("limit", "Entries per page", integer=True, default=50, minimum=1, maximum=500)
AUDIT_CURSOR = QueryParam(
    "cursor", "next_cursor of the previous page (an entry id)", pattern=r"^[0-9A-Za-z-]{0,40}$"
)

REQUESTS = {"GET /audit": Request(query=(AUDIT_KIND, AUDIT_CLIENT, AUDIT_LIMIT, AUDIT_CURSOR))}


@router.get(
    "/audit",
    summary="The audit log, newest first: who changed what, when, before and after, and why",
    tags=["audit"],
    responses=answers(200, "AuditPage", "A page of entries"),
    compress=True,
)
def audit_log() -> dict[str, Any]:
    from trueup.store.table import TrueupTable

    query = router.current_event.query_string_parameters
    cursor = AUDIT_CURSOR.read(query) or None
    if cursor is not None and not re.fullmatch(str(AUDIT_CURSOR.pattern), cursor):
        raise InvalidInput("cursor must be the next_cursor of the previous page (an entry id)")
    entries, cursor = TrueupTable().list_audit(
        AUDIT_KIND.read(query) or None,
        AUDIT_CLIENT.read(query) or None,
        AUDIT_LIMIT.read(query),
        cursor,
    )
    return {"items": entries, "next_cursor": cursor}
