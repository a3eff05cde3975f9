"""Who is calling, and what they may do: read from what API Gateway's JWT authorizer hands the function.

API Gateway checks the token (issuer, audience or client_id, expiry, signature) before the function
runs, and passes its claims in `requestContext.authorizer.jwt.claims`, every value a string: an array
claim arrives flattened as "[admin viewer]". A person's or a script's role comes from the claim
named by TRUEUP_ROLE_CLAIM (Entra ID: `roles`; Cognito: `cognito:groups`) or, for Cognito scripts
(client credentials), from a scope `<TRUEUP_ROLE_SCOPE_PREFIX><role>` such as `trueup/admin`.

`admin` may do everything; `viewer` reads snapshots and downloads exports. With sign-in off (the
local stack's default, TRUEUP_SIGN_IN=off) every caller is the local user, with both roles.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from trueup.config import config
from trueup.errors import TrueupError

ADMIN = "admin"
VIEWER = "viewer"
ROLES = (ADMIN, VIEWER)
LOCAL_SUBJECT = "local"
NAME_CLAIMS = ("name", "email", "preferred_username", "client_id", "azp")


class Unauthorized(TrueupError):
    """No signed-in caller where one is needed (401)."""


class Forbidden(TrueupError):
    """The caller's role does not allow this (403); the message names the role needed."""


@dataclass(frozen=True)
class Caller:
    subject: str
    name: str | None  # a display name or e-mail where the token carries one
    roles: frozenset[str]

    def actor(self) -> dict[str, Any]:
        """What a change records about who made it."""
        return {"subject": self.subject, "name": self.name}

    def require(self, role: str, action: str) -> None:
        if role == ADMIN and ADMIN not in self.roles:
            raise Forbidden(f"{action} needs the admin role; you are signed in as {self.describe()}")
        if role == VIEWER and not self.roles & set(ROLES):
            raise Forbidden(
                f"{action} needs the viewer or admin role, and {self.name or self.subject} has neither "
                "(ask an admin to assign one)"
            )

    def describe(self) -> str:
        who = self.name or self.subject
        held = [r for r in ROLES if r in self.roles]
        return f"{who} ({', '.join(held) or 'no trueup role'})"


LOCAL_USER = Caller(subject=LOCAL_SUBJECT, name="Local user (sign-in off)", roles=frozenset(ROLES))


def claim_values(value: Any) -> list[str]:
    """A claim's values as API Gateway passes them: "[a b]" (a flattened array), "a" or a real list."""
    if value is None:
        return []
    if isinstance(value, list):
        return [str(v) for v in value]
    text = str(value).strip()
    if text.startswith("[") and text.endswith("]"):
        text = text[1:-1]
    return [part for part in re.split(r"[\s,]+", text) if part]


def caller_of(event: Mapping[str, Any]) -> Caller:
    """The caller of an HTTP API event; Unauthorized when sign-in is on and the event carries no token."""
    settings = config()
    if settings.sign_in == "off":
        return LOCAL_USER
    authorizer = ((event.get("requestContext") or {}).get("authorizer")) or {}
    jwt = authorizer.get("jwt") or {}
    claims: Mapping[str, Any] = jwt.get("claims") or {}
    subject = claims.get("sub") or claims.get("client_id")
    if not subject:
        raise Unauthorized("sign in first: this route needs a bearer token")
    roles = {r for r in claim_values(claims.get(settings.role_claim)) if r in ROLES}
    prefix = settings.role_scope_prefix
    if prefix:
        scopes = claim_values(jwt.get("scopes")) + claim_values(claims.get("scope"))
        roles |= {s.removeprefix(prefix) for s in scopes if s.startswith(prefix)} & set(ROLES)
    # A display name, else an e-mail (Entra: preferred_username), else a script's client id. Not Cognito's
    # `username`: with e-mail sign-in it is an opaque id.
    # A display name, else an e-mail (Entra ID: preferred_username), else a script's client id; not
    # Cognito's `username`, an opaque id when people sign in with their e-mail.
    name = next(
        (str(claims[k]) for k in NAME_CLAIMS if claims.get(k)),
        None,
    )
    return Caller(subject=str(subject), name=name, roles=frozenset(roles))
