"""Routes: /settings."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from aws_lambda_powertools.event_handler.openapi.params import Body
from aws_lambda_powertools.event_handler.router import APIGatewayHttpRouter
from pydantic import Field

from trueup.api.identity import caller_of
from trueup.api.models import Actor
from trueup.domain.models import Settings
from trueup.services import reconciliation_settings

router = APIGatewayHttpRouter()


class SettingsOut(Settings):
    updated_at: datetime | None = Field(default=None, description="Last changed (null: never saved)")
    updated_by: Actor | None = Field(default=None, description="Who changed them last")


@router.get("/settings", summary="The reconciliation settings", tags=["settings"])
def get_settings() -> SettingsOut:
    return SettingsOut.model_validate(reconciliation_settings.settings_view())


@router.put(
    "/settings",
    summary="Replace the settings (validated whole; updated_at and updated_by are read-only)",
    tags=["settings"],
)
def put_settings(document: Annotated[dict[str, Any], Body()]) -> SettingsOut:
    # Validated by the domain model here rather than by the resolver, so a rejected document gets
    # one 400 naming every problem, and nothing is written.
    by = caller_of(router.current_event.raw_event).actor()
    return SettingsOut.model_validate(reconciliation_settings.save_settings(document, by))
