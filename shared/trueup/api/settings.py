"""Routes: /settings."""

from __future__ import annotations

from typing import Annotated, Any

from aws_lambda_powertools.event_handler.openapi.params import Body
from aws_lambda_powertools.event_handler.router import APIGatewayHttpRouter

from trueup.domain.models import Settings
from trueup.services import reconciliation_settings

router = APIGatewayHttpRouter()


@router.get("/settings", summary="The reconciliation settings", tags=["settings"])
def get_settings() -> Settings:
    return reconciliation_settings.load_settings()[0]


@router.put("/settings", summary="Replace the settings (validated whole)", tags=["settings"])
def put_settings(document: Annotated[dict[str, Any], Body()]) -> Settings:
    # Validated by the domain model here rather than by the resolver, so a rejected document gets
    # one 400 naming every problem, and nothing is written.
    return reconciliation_settings.save_settings(document)
