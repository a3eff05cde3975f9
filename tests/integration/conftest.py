from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

import pytest

from infra.demo.dataset import build_dataset
from infra.demo.servers import DEFAULT_NINJAONE_CREDENTIALS, DEFAULT_PAX8_CREDENTIALS, DemoUpstreams
from trueup.vendors.credentials import ClientCredentials

NOW = datetime(2026, 11, 1, 6, 0, tzinfo=UTC)
PAX8_CREDENTIALS = ClientCredentials(*DEFAULT_PAX8_CREDENTIALS)
NINJAONE_CREDENTIALS = ClientCredentials(*DEFAULT_NINJAONE_CREDENTIALS)


@pytest.fixture
def demo() -> Iterator[DemoUpstreams]:
    """The demo story on loopback, with small page caps so every list spans several pages."""
    with DemoUpstreams(build_dataset(now=NOW), pax8_max_page_size=25, ninjaone_page_cap=100) as upstreams:
        yield upstreams
