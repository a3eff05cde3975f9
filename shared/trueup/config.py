"""The one place trueup reads its runtime configuration: the function's environment, set by template.yaml.

`config()` validates the environment once per warm container and caches it; tests that change the
environment call `config.cache_clear()`. A plain pydantic model over `os.environ` rather than
pydantic-settings: that package costs a function about a fifth of `import boto3` at every cold
start, for nothing this small model needs.
"""

import functools
import os
from typing import Literal

from pydantic import AliasChoices, BaseModel, ConfigDict, Field, ValidationError

DEFAULT_EXPORT_LINK_SECONDS = 15 * 60
MAX_EXPORT_LINK_SECONDS = 7 * 24 * 3600  # SigV4's limit for a presigned URL


class ConfigurationError(RuntimeError):
    """The function's environment is not what template.yaml sets: a deployment mistake, not bad input."""


class RuntimeConfig(BaseModel):
    """What a function may read from its environment. Every name is template.yaml's variable name."""

    model_config = ConfigDict(frozen=True, extra="ignore", defer_build=True)

    table: str = Field(validation_alias="TRUEUP_TABLE", min_length=1)
    bucket: str = Field(validation_alias="TRUEUP_BUCKET", min_length=1)
    event_bus: str = Field(validation_alias="TRUEUP_EVENT_BUS", min_length=1)
    region: str = Field(
        default="us-east-1", validation_alias=AliasChoices("AWS_REGION", "AWS_DEFAULT_REGION")
    )
    # Set by the local stack: where boto3 sends every call instead of AWS (presigned links point there too).
    s3_endpoint_url: str | None = Field(
        default=None, validation_alias=AliasChoices("AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL")
    )
    # Pax8 sync
    pax8_secret_id: str | None = Field(default=None, validation_alias="PAX8_SECRET_ID")
    pax8_api_url: str | None = Field(default=None, validation_alias="PAX8_API_URL")
    pax8_token_url: str | None = Field(default=None, validation_alias="PAX8_TOKEN_URL")
    # RMM sync: which RMM, and its secret and host (<SOURCE>_SECRET_ID, <SOURCE>_URL)
    rmm_source: str = Field(default="ninjaone", validation_alias="RMM_SOURCE")
    ninjaone_secret_id: str | None = Field(default=None, validation_alias="NINJAONE_SECRET_ID")
    ninjaone_url: str | None = Field(default=None, validation_alias="NINJAONE_URL")
    # Exports
    export_link_seconds: int = Field(
        default=DEFAULT_EXPORT_LINK_SECONDS,
        ge=1,
        le=MAX_EXPORT_LINK_SECONDS,
        validation_alias="EXPORT_LINK_SECONDS",
    )

    # Sign-in (trueup.api.identity). "oidc": every route but the page's shell, its files and
    # GET /auth/config needs a token API Gateway checked; "off": everyone is the local user (local only).
    sign_in: Literal["oidc", "off"] = Field(default="oidc", validation_alias="TRUEUP_SIGN_IN")
    role_claim: str = Field(default="roles", min_length=1, validation_alias="TRUEUP_ROLE_CLAIM")
    role_scope_prefix: str | None = Field(default=None, validation_alias="TRUEUP_ROLE_SCOPE_PREFIX")
    # What the page needs to sign people in (GET /auth/config), and the origins it may reach for it.
    sign_in_issuer: str | None = Field(default=None, validation_alias="TRUEUP_SIGN_IN_ISSUER")
    sign_in_client_id: str | None = Field(default=None, validation_alias="TRUEUP_SIGN_IN_CLIENT_ID")
    sign_in_scope: str = Field(default="openid profile email", validation_alias="TRUEUP_SIGN_IN_SCOPE")
    sign_in_origins: str | None = Field(default=None, validation_alias="TRUEUP_SIGN_IN_ORIGINS")

    def rmm_secret_id(self) -> tuple[str, str | None]:
        """(the variable naming the RMM's secret, its value) for the configured RMM source."""
        variable = f"{self.rmm_source.upper()}_SECRET_ID"
        return variable, {"ninjaone": self.ninjaone_secret_id}.get(self.rmm_source)

    def rmm_url(self) -> str | None:
        return {"ninjaone": self.ninjaone_url}.get(self.rmm_source) or None


@functools.cache
def config() -> RuntimeConfig:
    """The function's configuration, read once; a missing or malformed variable names itself."""
    environment = {name: value for name, value in os.environ.items() if value != ""}
    try:
        return RuntimeConfig.model_validate(environment)
    except ValidationError as exc:
        problems = []
        for error in exc.errors():
            variable = ".".join(str(part) for part in error["loc"])
            problems.append(
                f"{variable} not set" if error["type"] == "missing" else f"{variable}: {error['msg']}"
            )
        raise ConfigurationError(f"trueup is not configured: {'; '.join(problems)}") from None
