"""Routes: /settings.

The settings are validated by their pydantic models (trueup.services.reconciliation_settings), loaded
only when a request asks for the settings, so that the API function's other routes start without them.
"""

from __future__ import annotations

import json
from typing import Any

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.router import APIGatewayHttpRouter

from trueup.api.http import InvalidRequest, Request, answers, etag, if_match_version
from trueup.api.identity import caller_of

router = APIGatewayHttpRouter()

REQUESTS = {"PUT /settings": Request(body="SettingsDocument")}


@router.get(
    "/settings",
    summary="The reconciliation settings",
    tags=["settings"],
    responses=answers(200, "SettingsOut", "The settings"),
    compress=True,
)
def get_settings() -> Response[str]:
    from trueup.services import reconciliation_settings

    return _with_etag(*reconciliation_settings.settings_view())


@router.put(
    "/settings",
    summary="Replace the settings (validated whole; updated_at and updated_by are read-only)",
    tags=["settings"],
    responses=answers(200, "SettingsOut", "The settings, as saved"),
    compress=True,
)
def put_settings() -> Response[str]:
    # Validated whole by the settings' own model, so a rejected document gets one 400 naming every
    # problem with what is allowed, and nothing is written.
    from trueup.services import reconciliation_settings

    event = router.current_event
    if not event.body:
        raise InvalidRequest(["body: required, the settings document (GET /settings answers one)"])
    by = caller_of(event.raw_event).actor()
    if_match = if_match_version(event.headers.get("if-match"))
    return _with_etag(*reconciliation_settings.save_settings(json.loads(event.body), by, if_match))


def _with_etag(view: dict[str, Any], version: int) -> Response[str]:
    """The settings, with their version as the ETag (a PUT with If-Match on a stale one is 412)."""
    return Response(
        status_code=200,
        content_type="application/json",
        body=json.dumps(view),
        headers={"ETag": etag(version), "Cache-Control": "no-store"},
    )
