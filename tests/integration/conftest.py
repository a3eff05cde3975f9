from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from moto import mock_aws

from infra.demo.dataset import build_dataset
from infra.demo.servers import DEFAULT_NINJAONE_CREDENTIALS, DEFAULT_PAX8_CREDENTIALS, DemoUpstreams
from tests.aws_fixtures import REGION, create_resources
from trueup import aws
from trueup.config import config
from trueup.store.table import TrueupTable
from trueup.vendors.credentials import ClientCredentials

NOW = datetime(2026, 11, 1, 6, 0, tzinfo=UTC)
PAX8_CREDENTIALS = ClientCredentials(*DEFAULT_PAX8_CREDENTIALS)
NINJAONE_CREDENTIALS = ClientCredentials(*DEFAULT_NINJAONE_CREDENTIALS)


@pytest.fixture
def demo() -> Iterator[DemoUpstreams]:
    """The demo story on loopback, with small page caps so every list spans several pages."""
    with DemoUpstreams(build_dataset(now=NOW), pax8_max_page_size=25, ninjaone_page_cap=100) as upstreams:
        yield upstreams


@pytest.fixture
def table(monkeypatch: pytest.MonkeyPatch) -> Iterator[TrueupTable]:
    """The template's resources in moto, the environment that names them (no upstreams), and the
    table's typed access."""
    for name, value in {
        "AWS_ACCESS_KEY_ID": "t",
        "AWS_SECRET_ACCESS_KEY": "t",
        "AWS_DEFAULT_REGION": REGION,
    }.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    aws.reset_clients()
    with mock_aws():
        for name, value in create_resources({"Pax8Secret": {}, "NinjaOneSecret": {}}).items():
            monkeypatch.setenv(name, value)
        config.cache_clear()
        aws.reset_clients()
        yield TrueupTable()
    aws.reset_clients()
    config.cache_clear()
