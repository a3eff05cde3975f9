"""boto3 clients, created lazily and reused for the life of a warm Lambda container.

boto3 honours AWS_ENDPOINT_URL, which is how the local stack points every client at its stand-in.
"""

from __future__ import annotations

import functools
from typing import Any

import boto3
from botocore.config import Config

_CONFIG = Config(retries={"mode": "standard", "max_attempts": 5}, connect_timeout=5, read_timeout=60)


@functools.cache
def client(service: str) -> Any:
    """A shared boto3 client for `service` (thread-safe; clients are)."""
    return boto3.session.Session().client(service, config=_CONFIG)


def reset_clients() -> None:
    """Forget cached clients and the configuration (tests that change the environment between cases)."""
    from trueup.config import config

    client.cache_clear()
    config.cache_clear()
