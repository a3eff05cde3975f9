"""Routes: /settings.

The settings are validated by their pydantic models (trueup.services.reconciliation_settings), loaded
only when a request asks for the settings, so that the API function's other routes start without them.
"""

from __future__ import annotations

import json
from typing import Any

from aws_lambda_powertools.event_handler.router import APIGatewayHttpRouter

from trueup.api.http import InvalidRequest, Request, answers
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
def get_settings() -> dict[str, Any]:
    from trueup.services import reconciliation_settings

    return reconciliation_settings.settings_view()


@router.put(
    "/settings",
    summary="Replace the settings (validated whole; updated_at and updated_by are read-only)",
    tags=["settings"],
    responses=answers(200, "SettingsOut", "The settings, as saved"),
    compress=True,
)
def put_settings() -> dict[str, Any]:
    # Validated whole by the settings' own model, so a rejected document gets one 400 naming every
    # problem with what is allowed, and nothing is written.
    from trueup.services import reconciliation_settings

    event = router.current_event
    if not event.body:
        raise InvalidRequest(["body: required, the settings document (GET /settings answers one)"])
    by = caller_of(event.raw_event).actor()
    return reconciliation_settings.save_settings(json.loads(event.body), by)
