"""Vendor credentials: the pair a vendor client signs in with, read from Secrets Manager.

One secret per integration holds `{"client_id", "client_secret"}`; it is read through Powertools
Parameters (cached for a few minutes per warm container). Neither value ever reaches a log, an
error message or a repr.
"""

from __future__ import annotations

from dataclasses import dataclass

from trueup.errors import InvalidInput

CACHE_SECONDS = 300


@dataclass(frozen=True)
class ClientCredentials:
    """An OAuth2 client-credentials pair. The secret never appears in repr, logs or errors."""

    client_id: str
    client_secret: str

    def __repr__(self) -> str:
        return f"ClientCredentials(client_id={self.client_id!r}, client_secret='***')"

    __str__ = __repr__


def credentials_from_secret(secret_id: str | None, label: str, variable: str) -> ClientCredentials:
    """Read {"client_id", "client_secret"} from the secret `secret_id` (named by the function's
    `variable`); errors name the secret, never its value."""
    # Only the sync functions read secrets: Parameters (and its providers) load here, not at import.
    from aws_lambda_powertools.utilities import parameters

    if not secret_id:
        raise InvalidInput(f"{label} credentials are not configured: {variable} is not set")
    try:
        value = parameters.get_secret(secret_id, transform="json", max_age=CACHE_SECONDS)
    except parameters.exceptions.TransformParameterError as exc:
        raise InvalidInput(f"{label} secret {secret_id} is not JSON {{client_id, client_secret}}") from exc
    if not isinstance(value, dict):
        raise InvalidInput(f"{label} secret {secret_id} is not a JSON object {{client_id, client_secret}}")
    client_id, client_secret = value.get("client_id"), value.get("client_secret")
    if not (isinstance(client_id, str) and client_id and isinstance(client_secret, str) and client_secret):
        raise InvalidInput(
            f"{label} credentials are not set in secret {secret_id}: put JSON with a non-empty "
            "client_id and client_secret there"
        )
    return ClientCredentials(client_id, client_secret)
