"""The Datto RMM adapter against the demo Datto RMM server over real loopback HTTP: its token, paging,
read budget, faults and millisecond timestamps."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

import pytest

from infra.demo.dataset import DemoDataset, build_dataset, datto_inventory
from infra.demo.faults import Fault
from infra.demo.servers import DEFAULT_DATTO_CREDENTIALS, DemoUpstreams
from trueup.domain.models import DeviceClass, DeviceState
from trueup.errors import UpstreamError
from trueup.vendors.credentials import ClientCredentials
from trueup.vendors.datto import DattoAdapter
from trueup.vendors.resilience import RateLimiter, RetryPolicy
from trueup.vendors.rmm import RmmConnection, collect

NOW = datetime(2026, 11, 1, 6, 0, tzinfo=UTC)
CREDENTIALS = ClientCredentials(*DEFAULT_DATTO_CREDENTIALS)
FAST = RetryPolicy(max_attempts=3, base_delay=0.01, max_delay=0.05, timeout=5.0)


class Clock:
    """Time for both sides: the server's read budget and the client's waits move it, nothing else."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


def account(sites: int = 2, devices_per_site: int = 7) -> DemoDataset:
    site_records, device_records = datto_inventory(sites, devices_per_site, now=NOW)
    return DemoDataset(datto_sites=site_records, datto_devices=device_records)


@pytest.fixture
def datto() -> Iterator[DemoUpstreams]:
    with DemoUpstreams(account()) as upstreams:
        yield upstreams


def adapter(demo: DemoUpstreams, clock: Clock | None = None, **options: object) -> DattoAdapter:
    clock = clock or Clock()
    options.setdefault("limiter", RateLimiter(600, 60.0, clock=clock, sleep=clock.sleep))
    return DattoAdapter(
        RmmConnection(CREDENTIALS, demo.datto_url, options.pop("match", None)),  # type: ignore[arg-type]
        policy=FAST,
        sleep=clock.sleep,
        **options,  # type: ignore[arg-type]
    )


def test_every_site_and_device_is_read_across_several_pages_with_one_token(datto: DemoUpstreams) -> None:
    with adapter(datto, page_size=5) as client:
        data = collect(client, NOW)
    assert [o.name for o in data.organizations] == ["Client 00000 Services", "Client 00001 Services"]
    assert len(data.devices) == 14 and data.skipped == []
    assert datto.stats()["datto"]["by_path"] == {
        "POST /auth/oauth/token": 1,
        "GET /api/v2/account/sites": 1,
        "GET /api/v2/account/devices": 3,  # 14 devices, 5 a page, following nextPageUrl
    }
    first = data.devices[0]
    # lastSeen is epoch milliseconds: NOW, to the millisecond.
    assert (first.name, first.device_class, first.state, first.last_seen) == (
        "C00000-0000",
        DeviceClass.WORKSTATION,
        DeviceState.ACTIVE,
        NOW,
    )
    classes = {d.name: d.device_class for d in data.devices}
    # The account's 9th, 10th and 11th devices (the second site's 2nd to 4th): a server, an ESXi host
    # and a network device.
    assert classes["C00001-0001"] is DeviceClass.SERVER
    assert classes["C00001-0002"] is DeviceClass.VIRTUAL_HOST
    assert classes["C00001-0003"] is DeviceClass.NETWORK


def test_the_client_keeps_within_the_accounts_read_budget_and_is_never_refused() -> None:
    clock = Clock()
    with DemoUpstreams(account(), datto_rate_limit=(3, 60.0), clock=clock) as demo:
        limiter = RateLimiter(3, 60.0, clock=clock, sleep=clock.sleep)
        data = collect(adapter(demo, clock, page_size=5, limiter=limiter), NOW)
        assert len(data.devices) == 14
        assert "429" not in demo.stats()["datto"]["by_status"]
    assert clock.sleeps == [60.0]  # token, sites, page 1 fill the minute; pages 2 and 3 wait for it


def test_beyond_its_read_budget_the_server_answers_429_and_the_client_reports_it() -> None:
    clock = Clock()
    with DemoUpstreams(account(), datto_rate_limit=(1, 60.0), clock=clock) as demo:
        with pytest.raises(
            UpstreamError, match=r"GET /api/v2/account/devices page 1: HTTP 429 after 3 attempts"
        ):
            collect(adapter(demo, clock), NOW)  # the sites take the minute's one read; backoff is seconds
        assert demo.stats()["datto"]["by_status"]["429"] == 3


def test_429_with_retry_after_waits_as_told_and_without_it_backs_off(datto: DemoUpstreams) -> None:
    datto.faults.add(
        Fault(server="datto", path="/api/v2/account/devices", page=1, status=429, retry_after=7, times=1)
    )
    datto.faults.add(Fault(server="datto", path="/api/v2/account/devices", page=2, status=429, times=1))
    clock = Clock()
    assert len(collect(adapter(datto, clock, page_size=5), NOW).devices) == 14
    assert clock.sleeps[0] == 7.0 and 0.005 <= clock.sleeps[1] <= 0.01


def test_a_5xx_then_success_is_retried(datto: DemoUpstreams) -> None:
    datto.faults.add(Fault(server="datto", path="/api/v2/account/sites", status=503, times=1))
    clock = Clock()
    assert len(collect(adapter(datto, clock), NOW).organizations) == 2
    assert len(clock.sleeps) == 1


def test_an_expired_token_is_replaced_once_and_the_listing_completes(datto: DemoUpstreams) -> None:
    devices = adapter(datto, page_size=5).devices()
    first = next(devices)
    assert datto.revoke_tokens(server="datto") == 1  # the token dies between two pages
    assert len([first, *devices]) == 14
    assert datto.stats()["datto"]["by_path"]["POST /auth/oauth/token"] == 2
    assert datto.stats()["datto"]["by_status"]["401"] == 1


def test_wrong_keys_are_refused_naming_the_token_request_and_never_the_secret(datto: DemoUpstreams) -> None:
    wrong = DattoAdapter(
        RmmConnection(ClientCredentials("demo-datto-api-key", "not-the-secret-77"), datto.datto_url),
        policy=FAST,
    )
    with pytest.raises(UpstreamError) as raised:
        list(wrong.organizations())
    assert str(raised.value) == "datto: POST /auth/oauth/token: HTTP 400: invalid_grant: Bad credentials"
    assert "not-the-secret-77" not in repr(wrong)


def test_a_malformed_record_is_reported_and_skipped_and_a_broken_page_fails(datto: DemoUpstreams) -> None:
    datto.dataset.datto_devices[3] = {**datto.dataset.datto_devices[3], "uid": 4711}
    data = collect(adapter(datto), NOW)
    assert len(data.devices) == 13
    [skipped] = data.skipped
    assert (skipped.id, skipped.reason) == ("datto:4711", "uid input should be a valid string (got 4711)")

    datto.faults.add(Fault(server="datto", path="/api/v2/account/devices", malformed=True, times=3))
    with pytest.raises(UpstreamError, match=r"GET /api/v2/account/devices page 1: response is not JSON"):
        list(adapter(datto).devices())


def test_serials_come_from_the_audit_for_hostnames_the_other_rmm_has() -> None:
    story = build_dataset(now=NOW)
    with DemoUpstreams(story) as demo:
        client = adapter(demo, match=frozenset({"vo-pc-001"}))
        serials = {d.name: d.serial for d in collect(client, NOW).devices}
        audits = demo.stats()["datto"]["by_path"]
    [ninjaone_twin] = [d for d in story.ninjaone_devices if d["displayName"] == "VO-PC-001"]
    assert serials == {
        "VO-FRONT-01": None,
        "VO-FRONT-02": None,
        "VO-PC-001": story.ninjaone_systems[ninjaone_twin["id"]]["serialNumber"],
    }
    assert sum(n for path, n in audits.items() if "/audit/device/" in path) == 1
