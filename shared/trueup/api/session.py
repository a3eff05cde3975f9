"""Routes: GET /auth/config (public: how the page signs people in) and GET /me (who is signed in)."""

from __future__ import annotations

from typing import Literal

from aws_lambda_powertools.event_handler.router import APIGatewayHttpRouter
from pydantic import Field

from trueup.api.identity import ROLES, caller_of
from trueup.api.models import ApiModel
from trueup.config import ConfigurationError, config

router = APIGatewayHttpRouter()


class SignInConfig(ApiModel):
    sign_in: Literal["oidc", "off"] = Field(description="off: no sign-in (the local stack's default)")
    issuer: str | None = Field(description="The OpenID Connect issuer; its discovery document is below it.")
    client_id: str | None = Field(description="The page's client id (authorization code with PKCE).")
    scope: str | None
    redirect_uri: str | None = Field(description="Where the provider sends the person back: this page.")


class Me(ApiModel):
    subject: str
    name: str | None
    roles: list[str] = Field(description="admin may change things; viewer reads and exports.")
    sign_in: Literal["oidc", "off"]


@router.get("/auth/config", summary="How the page signs people in (public)", tags=["sign-in"])
def sign_in_config() -> SignInConfig:
    settings = config()
    if settings.sign_in == "off":
        return SignInConfig(sign_in="off", issuer=None, client_id=None, scope=None, redirect_uri=None)
    if not settings.sign_in_issuer or not settings.sign_in_client_id:
        raise ConfigurationError(
            "trueup is not configured: TRUEUP_SIGN_IN_ISSUER and TRUEUP_SIGN_IN_CLIENT_ID must be set "
            "when TRUEUP_SIGN_IN is oidc"
        )
    event = router.current_event
    host = event.request_context.domain_name
    scheme = (event.headers.get("x-forwarded-proto") or "https").split(",")[0].strip()
    return SignInConfig(
        sign_in="oidc",
        issuer=settings.sign_in_issuer,
        client_id=settings.sign_in_client_id,
        scope=settings.sign_in_scope,
        redirect_uri=f"{scheme}://{host}/",
    )


@router.get("/me", summary="Who is signed in, and their roles", tags=["sign-in"])
def me() -> Me:
    caller = caller_of(router.current_event.raw_event)
    return Me(
        subject=caller.subject,
        name=caller.name,
        roles=[r for r in ROLES if r in caller.roles],
        sign_in=config().sign_in,
    )
