"""The Pax8 and NinjaOne clients against the demo upstreams over real loopback HTTP."""

from __future__ import annotations

import httpx
import pytest

from infra.demo.faults import Fault
from infra.demo.servers import DemoUpstreams
from tests.integration.conftest import NINJAONE_CREDENTIALS, NOW, PAX8_CREDENTIALS
from trueup.errors import UpstreamError
from trueup.vendors.ninjaone import NinjaOneAdapter
from trueup.vendors.pax8 import Pax8Client
from trueup.vendors.resilience import RetryPolicy
from trueup.vendors.rmm import RmmConnection, collect

FAST = RetryPolicy(max_attempts=3, base_delay=0.01, max_delay=0.05, timeout=5.0)


class Sleeps(list[float]):
    def __call__(self, seconds: float) -> None:
        self.append(seconds)


def pax8_client(demo: DemoUpstreams, sleep: Sleeps | None = None, policy: RetryPolicy = FAST) -> Pax8Client:
    return Pax8Client(
        PAX8_CREDENTIALS,
        api_url=demo.pax8_api_url,
        token_url=demo.pax8_token_url,
        policy=policy,
        sleep=sleep if sleep is not None else Sleeps(),
    )


def ninja(demo: DemoUpstreams, sleep: Sleeps | None = None, policy: RetryPolicy = FAST) -> NinjaOneAdapter:
    return NinjaOneAdapter(
        RmmConnection(NINJAONE_CREDENTIALS, demo.ninjaone_url),
        policy=policy,
        sleep=sleep if sleep is not None else Sleeps(),
    )


def test_every_list_is_read_whole_across_several_pages_with_one_token(demo: DemoUpstreams) -> None:
    with pax8_client(demo) as client:
        pax8 = client.fetch_all(NOW)
    rmm = collect(ninja(demo), NOW)
    data = demo.dataset
    assert len(pax8.companies) == len(data.pax8_companies) == 40  # 2 pages of 25
    assert len(pax8.products) == len(data.pax8_products) == 249  # 10 pages
    assert len(pax8.subscriptions) + len(pax8.skipped) == len(data.pax8_subscriptions) == 74  # 3 pages
    assert len(rmm.organizations) == 40 and len(rmm.devices) + len(rmm.skipped) == len(data.ninjaone_devices)
    stats = demo.stats()
    assert stats["pax8"]["by_path"] == {
        "POST /v1/token": 1,
        "GET /v1/companies": 2,
        "GET /v1/products": 10,
        "GET /v1/subscriptions": 3,
    }
    # NinjaOne: asked for 1000, capped at 100 per page: 589 devices = 6 pages + the empty end; the
    # device roles in one request.
    assert stats["ninjaone"]["by_path"] == {
        "POST /ws/oauth/token": 1,
        "GET /v2/organizations": 2,
        "GET /v2/roles": 1,
        "GET /v2/devices": 7,
    }


def test_a_request_without_a_token_gets_401(demo: DemoUpstreams) -> None:
    assert httpx.get(f"{demo.pax8_api_url}/companies").status_code == 401
    assert httpx.get(f"{demo.ninjaone_url}/v2/devices").status_code == 401


def test_429_waits_for_retry_after_then_reads_the_page(demo: DemoUpstreams) -> None:
    demo.faults.add(
        Fault(server="pax8", path="/v1/subscriptions", page=1, status=429, retry_after=7, times=2)
    )
    demo.faults.add(Fault(server="ninjaone", path="/v2/devices", status=429, retry_after=3, times=1))
    sleeps = Sleeps()
    with pax8_client(demo, sleeps) as client:
        subscriptions = client.subscriptions()
    assert len(subscriptions.items) == 73
    assert sleeps == [7.0, 7.0]
    sleeps.clear()
    assert len(collect(ninja(demo, sleeps), NOW).devices) == 588
    assert sleeps == [3.0]
    assert demo.stats()["pax8"]["by_status"]["429"] == 2


def test_a_500_then_success_is_retried(demo: DemoUpstreams) -> None:
    demo.faults.add(Fault(server="pax8", path="/v1/companies", page=1, status=500, times=1))
    demo.faults.add(Fault(server="ninjaone", path="/v2/organizations", status=502, times=1))
    with pax8_client(demo) as client:
        assert len(client.companies().items) == 40
    assert len(list(ninja(demo).organizations())) == 40


def test_a_500_that_outlasts_the_retries_fails_the_list_naming_the_page(demo: DemoUpstreams) -> None:
    demo.faults.add(Fault(server="pax8", path="/v1/subscriptions", page=2, status=500))
    with pax8_client(demo) as client, pytest.raises(UpstreamError) as failure:
        client.subscriptions()
    assert failure.value.retryable and failure.value.status == 500
    assert "page 2" in str(failure.value) and "after 3 attempts" in str(failure.value)

    demo.faults.add(Fault(server="ninjaone", path="/v2/devices", after=1300, status=503))
    with pytest.raises(UpstreamError, match="HTTP 503 after 3 attempts"):
        collect(ninja(demo), NOW)


def test_a_slow_upstream_times_out_and_fails_after_bounded_retries(demo: DemoUpstreams) -> None:
    demo.faults.add(Fault(server="pax8", path="/v1/companies", delay=1.0))
    slow = RetryPolicy(max_attempts=2, base_delay=0.01, timeout=0.2)
    with pax8_client(demo, policy=slow) as client, pytest.raises(UpstreamError, match="timed out"):
        client.companies()
    assert demo.stats()["pax8"]["by_path"]["GET /v1/companies"] == 2


def test_a_malformed_page_fails_the_list_and_a_malformed_record_is_skipped(demo: DemoUpstreams) -> None:
    with pax8_client(demo) as client:
        subscriptions = client.subscriptions()
    [skipped] = subscriptions.skipped
    assert "quantity 'ten' is not a number" in skipped.reason
    demo.faults.add(
        Fault(server="pax8", path="/v1/products", page=3, malformed=True, body={"content": "not a list"})
    )
    with pax8_client(demo) as client, pytest.raises(UpstreamError, match="page 3"):
        client.products()
    demo.faults.add(Fault(server="ninjaone", path="/v2/organizations", malformed=True, body={"oops": 1}))
    with pytest.raises(UpstreamError, match="/v2/organizations"):
        list(ninja(demo).organizations())


def test_an_expired_token_is_refreshed_once(demo: DemoUpstreams) -> None:
    with pax8_client(demo) as client:
        client.companies()
        demo.revoke_tokens()
        assert len(client.companies().items) == 40
    adapter = ninja(demo)
    list(adapter.organizations())
    demo.revoke_tokens()
    assert len(list(adapter.organizations())) == 40
    stats = demo.stats()
    assert stats["pax8"]["by_path"]["POST /v1/token"] == 2
    assert stats["ninjaone"]["by_path"]["POST /ws/oauth/token"] == 2


def test_wrong_credentials_fail_with_the_vendor_message_and_never_the_secret(demo: DemoUpstreams) -> None:
    from trueup.vendors.credentials import ClientCredentials

    wrong = ClientCredentials("demo-pax8-client", "s3cr3t-that-must-not-leak")
    client = Pax8Client(
        wrong, api_url=demo.pax8_api_url, token_url=demo.pax8_token_url, policy=FAST, sleep=Sleeps()
    )
    with pytest.raises(UpstreamError) as failure:
        client.companies()
    assert failure.value.status == 401 and "access_denied" in str(failure.value)
    assert "s3cr3t" not in str(failure.value) and "s3cr3t" not in repr(client)


def test_data_moving_under_the_paging_is_read_again_not_returned_short(demo: DemoUpstreams) -> None:
    # After page 0 a new company appears at the front: page 1 repeats one and the listing is short.
    demo.faults.add(Fault(server="pax8", path="/v1/companies", page=0, shift=True, times=1))
    with pax8_client(demo) as client:
        companies = client.companies()
    assert len(companies.items) == 41 == len({c.id for c in companies.items})
    assert demo.stats()["pax8"]["by_path"]["GET /v1/companies"] == 4  # listed twice

    demo.faults.add(Fault(server="pax8", path="/v1/companies", page=0, shift=True))
    with pax8_client(demo) as client, pytest.raises(UpstreamError, match="changed while paging"):
        client.companies()
