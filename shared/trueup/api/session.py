"""Routes: GET /auth/config (public: how the page signs people in) and GET /me (who is signed in)."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.event_handler.router import APIGatewayHttpRouter

from trueup.api.http import answers
from trueup.api.identity import ROLES, caller_of
from trueup.config import ConfigurationError, config

router = APIGatewayHttpRouter()


@router.get(
    "/auth/config",
    summary="How the page signs people in (public)",
    tags=["sign-in"],
    responses=answers(200, "SignInConfig", "What the page needs to sign people in"),
    compress=True,
)
def sign_in_config() -> dict[str, Any]:
    settings = config()
    if settings.sign_in == "off":
        return {"sign_in": "off", "issuer": None, "client_id": None, "scope": None, "redirect_uri": None}
    if not settings.sign_in_issuer or not settings.sign_in_client_id:
        raise ConfigurationError(
            "trueup is not configured: TRUEUP_SIGN_IN_ISSUER and TRUEUP_SIGN_IN_CLIENT_ID must be set "
            "when TRUEUP_SIGN_IN is oidc"
        )
    event = router.current_event
    host = event.request_context.domain_name
    scheme = (event.headers.get("x-forwarded-proto") or "https").split(",")[0].strip()
    return {
        "sign_in": "oidc",
        "issuer": settings.sign_in_issuer,
        "client_id": settings.sign_in_client_id,
        "scope": settings.sign_in_scope,
        "redirect_uri": f"{scheme}://{host}/",
    }


@router.get(
    "/me",
    summary="Who is signed in, and their roles",
    tags=["sign-in"],
    responses=answers(200, "Me", "Who is signed in"),
    compress=True,
)
def me() -> dict[str, Any]:
    caller = caller_of(router.current_event.raw_event)
    return {
        "subject": caller.subject,
        "name": caller.name,
        "roles": [r for r in ROLES if r in caller.roles],
        "sign_in": config().sign_in,
    }
