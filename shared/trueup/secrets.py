"""Vendor credentials from Secrets Manager (one secret per integration), through Powertools Parameters."""

from __future__ import annotations

import os

from aws_lambda_powertools.utilities import parameters

from trueup.errors import InvalidInput
from trueup.vendors.resilience import ClientCredentials

CACHE_SECONDS = 300


def credentials_from_secret(env_var: str, label: str) -> ClientCredentials:
    """Read {"client_id", "client_secret"} from the secret named by `env_var`; errors never show values."""
    secret_id = os.environ.get(env_var)
    if not secret_id:
        raise InvalidInput(f"{label} credentials are not configured: {env_var} is not set")
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
