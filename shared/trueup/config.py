"""The one place trueup reads its runtime configuration: the function's environment, set by template.yaml.

`config()` reads and checks the environment once per warm container and caches it; tests that change
the environment call `config.cache_clear()`. A frozen dataclass and a table of variables rather than
pydantic-settings (a fifth of `import boto3` at every cold start) or a pydantic model (pydantic itself
is half of `import boto3`, and a function that only reads need not load it at all).
"""

import functools
import os
from collections.abc import Callable, Mapping
from dataclasses import MISSING, dataclass, field, fields
from typing import Any, Literal

DEFAULT_EXPORT_LINK_SECONDS = 15 * 60
MAX_EXPORT_LINK_SECONDS = 7 * 24 * 3600  # SigV4's limit for a presigned URL
SIGN_IN_MODES = ("oidc", "off")


class ConfigurationError(RuntimeError):
    """The function's environment is not what template.yaml sets: a deployment mistake, not bad input."""


@dataclass(frozen=True)
class RuntimeConfig:
    """What a function may read from its environment (`VARIABLES` names each field's variable)."""

    table: str
    bucket: str
    event_bus: str
    region: str = "us-east-1"
    # Set by the local stack: where boto3 sends every call instead of AWS (presigned links point there too).
    s3_endpoint_url: str | None = None
    # Pax8 sync
    pax8_secret_id: str | None = None
    pax8_api_url: str | None = None
    pax8_token_url: str | None = None
    # RMM sync: the RMMs in use (trueup.sources), each with its secret and host (<SOURCE>_SECRET_ID,
    # <SOURCE>_URL)
    rmm_sources: tuple[str, ...] = ("ninjaone",)
    # per RMM trueup knows (trueup.sources.RMMS): (its secret's id, its host), from <SOURCE>_SECRET_ID
    # and <SOURCE>_URL (NINJAONE_SECRET_ID, DATTO_URL...)
    rmm_settings: Mapping[str, tuple[str | None, str | None]] = field(default_factory=dict)
    # Exports: how long a presigned link lives
    export_link_seconds: int = DEFAULT_EXPORT_LINK_SECONDS
    # Sign-in (trueup.api.identity). "oidc": every route but the page's shell, its files and
    # GET /auth/config needs a token API Gateway checked; "off": everyone is the local user (local only).
    sign_in: Literal["oidc", "off"] = "oidc"
    role_claim: str = "roles"
    role_scope_prefix: str | None = None
    # What the page needs to sign people in (GET /auth/config), and the origins it may reach for it.
    sign_in_issuer: str | None = None
    sign_in_client_id: str | None = None
    sign_in_scope: str = "openid profile email"
    sign_in_origins: str | None = None
    # Notifications: the SNS topic people subscribe to, and the page's address to put in them
    topic_arn: str | None = None
    page_url: str | None = None
    # Snapshots: keep each row's devices and subscriptions ("on"); "off" only to measure what it costs.
    snapshot_evidence: bool = True
    # Beyond this many RMM devices POST /snapshots answers 202 and takes the snapshot in a cycle.
    snapshot_wait_devices: int = 250_000

    def rmm_secret_id(self, source: str) -> tuple[str, str | None]:
        """(the variable naming an RMM source's secret, its value)."""
        return f"{source.upper()}_SECRET_ID", self.rmm_settings.get(source, (None, None))[0]

    def rmm_url(self, source: str) -> str | None:
        return self.rmm_settings.get(source, (None, None))[1]


# field -> the variables it is read from, the first one set winning (template.yaml's names)
VARIABLES: dict[str, tuple[str, ...]] = {
    "table": ("TRUEUP_TABLE",),
    "bucket": ("TRUEUP_BUCKET",),
    "event_bus": ("TRUEUP_EVENT_BUS",),
    "region": ("AWS_REGION", "AWS_DEFAULT_REGION"),
    "s3_endpoint_url": ("AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL"),
    "pax8_secret_id": ("PAX8_SECRET_ID",),
    "pax8_api_url": ("PAX8_API_URL",),
    "pax8_token_url": ("PAX8_TOKEN_URL",),
    # RMM_SOURCE: the single RMM of deployments made before several could be used
    "rmm_sources": ("RMM_SOURCES", "RMM_SOURCE"),
    "export_link_seconds": ("EXPORT_LINK_SECONDS",),
    "sign_in": ("TRUEUP_SIGN_IN",),
    "role_claim": ("TRUEUP_ROLE_CLAIM",),
    "role_scope_prefix": ("TRUEUP_ROLE_SCOPE_PREFIX",),
    "sign_in_issuer": ("TRUEUP_SIGN_IN_ISSUER",),
    "sign_in_client_id": ("TRUEUP_SIGN_IN_CLIENT_ID",),
    "sign_in_scope": ("TRUEUP_SIGN_IN_SCOPE",),
    "sign_in_origins": ("TRUEUP_SIGN_IN_ORIGINS",),
    "topic_arn": ("TRUEUP_TOPIC_ARN",),
    "page_url": ("TRUEUP_PAGE_URL",),
    "snapshot_evidence": ("TRUEUP_SNAPSHOT_EVIDENCE",),
    "snapshot_wait_devices": ("TRUEUP_SNAPSHOT_WAIT_DEVICES",),
}


def _whole_number(low: int, high: int) -> Callable[[str], int]:
    def parse(text: str) -> int:
        try:
            number = int(text.strip(), 10)
        except ValueError:
            raise ValueError(f"must be a whole number of seconds, got {text[:40]!r}") from None
        if not low <= number <= high:
            raise ValueError(f"must be between {low} and {high}, got {number}")
        return number

    return parse


def _count(text: str, low: int, high: int) -> int:
    if not text.strip().isdigit() or not low <= int(text) <= high:
        raise ValueError(f"must be a whole number from {low} to {high:,}, got {text[:40]!r}")
    return int(text)


def _one_of(*allowed: str) -> Callable[[str], str]:
    def parse(text: str) -> str:
        if text not in allowed:
            raise ValueError(f"must be {' or '.join(allowed)}, got {text[:40]!r}")
        return text

    return parse


def _rmm_sources(text: str) -> tuple[str, ...]:
    from trueup.sources import parse_rmm_list

    return parse_rmm_list(text)


PARSERS: dict[str, Callable[[str], Any]] = {
    "rmm_sources": _rmm_sources,
    "export_link_seconds": _whole_number(1, MAX_EXPORT_LINK_SECONDS),
    "sign_in": _one_of(*SIGN_IN_MODES),
    "snapshot_evidence": lambda text: _one_of("on", "off")(text) == "on",
    "snapshot_wait_devices": lambda text: _count(text, 0, 1_000_000_000),
}


def read_config(environment: Mapping[str, str]) -> RuntimeConfig:
    """The configuration in an environment (an empty variable counts as unset); every problem named."""
    values: dict[str, Any] = {}
    problems = []
    required = [f.name for f in fields(RuntimeConfig) if f.default is MISSING]
    for name, variables in VARIABLES.items():
        variable, text = next(((v, environment[v]) for v in variables if environment.get(v)), (None, None))
        if variable is None or text is None:
            if name in required:
                problems.append(f"{variables[0]} not set")
            continue
        try:
            values[name] = PARSERS.get(name, str)(text)
        except ValueError as exc:
            problems.append(f"{variable}: {exc}")
    if problems:
        raise ConfigurationError(f"trueup is not configured: {'; '.join(problems)}")
    from trueup.sources import RMMS

    values["rmm_settings"] = {
        source: (
            environment.get(f"{source.upper()}_SECRET_ID") or None,
            environment.get(f"{source.upper()}_URL") or None,
        )
        for source in RMMS
    }
    return RuntimeConfig(**values)


@functools.cache
def config() -> RuntimeConfig:
    """The function's configuration, read once per warm container."""
    return read_config(os.environ)
