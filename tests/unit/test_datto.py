"""The Datto RMM adapter against an in-memory Datto RMM (httpx.MockTransport); nothing reaches the network."""

from __future__ import annotations

import base64
import json
import logging
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import httpx
import pytest

from trueup.domain.models import Device, DeviceClass, DeviceState, Organization, SkippedRecord
from trueup.errors import InvalidInput, UpstreamError
from trueup.vendors.credentials import ClientCredentials
from trueup.vendors.datto import DattoAdapter, device_class, resolve_base_url
from trueup.vendors.resilience import RateLimiter, RetryPolicy
from trueup.vendors.rmm import RmmConnection, collect, create_adapter

API_KEY = "DATTO-API-KEY-1"
SECRET = "Datto-Secret-Key-value-77"
HOST = "https://merlot-api.centrastage.net"
SAMPLES = Path(__file__).resolve().parents[3] / "shared" / "specs" / "datto-rmm" / "samples"
NOW = datetime(2026, 12, 1, tzinfo=UTC)


def site(uid: str, name: str) -> dict[str, Any]:
    return {"id": abs(hash(uid)) % 10_000, "uid": uid, "name": name, "onDemand": False}


def device(uid: str, site_uid: str = "s-1", **fields: Any) -> dict[str, Any]:
    record: dict[str, Any] = {
        "id": abs(hash(uid)) % 100_000,
        "uid": uid,
        "siteUid": site_uid,
        "siteName": "Site",
        "hostname": f"host-{uid}",
        "deviceClass": "device",
        "deviceType": {"category": "Desktop", "type": "Physical"},
        "lastSeen": 1764547200000,  # 2025-12-01T00:00:00Z in epoch milliseconds
        "deleted": False,
        "suspended": False,
    }
    record.update(fields)
    return record


class FakeDatto:
    """Datto RMM's token endpoint, sites, devices and device audits, paged by `page`/`max` with
    `pageDetails.nextPageUrl`; `script(path, *responses)` answers the next requests of a path."""

    def __init__(
        self, *, sites: list[dict[str, Any]] | None = None, devices: list[dict[str, Any]] | None = None
    ) -> None:
        self.lists: dict[str, list[Any]] = {
            "/api/v2/account/sites": sites if sites is not None else [site("s-1", "Acme")],
            "/api/v2/account/devices": devices if devices is not None else [],
        }
        self.audits: dict[str, dict[str, Any]] = {}
        self.requests: list[httpx.Request] = []
        self.scripted: dict[str, list[httpx.Response]] = {}
        self.tokens_issued = 0
        self.valid_tokens: set[str] = set()

    def script(self, path: str, *responses: httpx.Response) -> None:
        self.scripted.setdefault(path, []).extend(responses)

    def revoke_tokens(self) -> None:
        self.valid_tokens.clear()

    def api_requests(self, path: str) -> list[httpx.Request]:
        return [r for r in self.requests if r.url.path == path]

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        path = request.url.path
        if self.scripted.get(path):
            return self.scripted[path].pop(0)
        if path == "/auth/oauth/token":
            return self._token(request)
        if request.headers.get("Authorization", "").removeprefix("Bearer ") not in self.valid_tokens:
            return httpx.Response(
                401, json={"error": "invalid_token", "error_description": "Access token expired"}
            )
        if path.startswith("/api/v2/audit/device/"):
            uid = path.rsplit("/", 1)[1]
            if uid not in self.audits:
                return httpx.Response(404, json={"message": "Device was not found."})
            return httpx.Response(200, json=self.audits[uid])
        records = self.lists[path]
        size = int(request.url.params["max"])
        page = int(request.url.params.get("page", "0"))
        chunk = records[page * size : (page + 1) * size]
        more = (page + 1) * size < len(records)
        next_url = f"{HOST}{path}?max={size}&page={page + 1}" if more else ""
        key = "sites" if path.endswith("sites") else "devices"
        details = {
            "count": len(chunk),
            "totalCount": len(records),
            "prevPageUrl": "",
            "nextPageUrl": next_url,
        }
        return httpx.Response(200, json={"pageDetails": details, key: chunk})

    def _token(self, request: httpx.Request) -> httpx.Response:
        basic = base64.b64encode(b"public-client:public").decode()
        form = parse_qs(request.content.decode())
        if request.headers.get("Authorization") != f"Basic {basic}" or form.get("password") != [SECRET]:
            return httpx.Response(401, json={"error": "unauthorized", "error_description": "Bad credentials"})
        self.tokens_issued += 1
        token = f"token-{self.tokens_issued}"
        self.valid_tokens.add(token)
        return httpx.Response(200, json={"access_token": token, "token_type": "bearer", "expires_in": 359999})


FAST = RetryPolicy(max_attempts=3, base_delay=0.5, max_delay=4.0, timeout=5.0)


class Harness:
    def __init__(self) -> None:
        self.sleeps: list[float] = []

    def adapter(
        self, server: FakeDatto, *, secret: str = SECRET, match: set[str] | None = None, **options: Any
    ) -> DattoAdapter:
        hostnames = None if match is None else frozenset(match)
        connection = RmmConnection(ClientCredentials(API_KEY, secret), "merlot", match_hostnames=hostnames)
        http = httpx.Client(transport=httpx.MockTransport(server))
        return DattoAdapter(connection, http=http, policy=FAST, sleep=self.sleeps.append, **options)


@pytest.fixture
def harness() -> Harness:
    return Harness()


# --- signing in ---------------------------------------------------------------------------------------


def test_signs_in_with_the_password_grant_as_the_public_client(harness: Harness) -> None:
    server = FakeDatto(devices=[device("d-1")])
    list(harness.adapter(server).devices())

    [token_request] = server.api_requests("/auth/oauth/token")
    assert str(token_request.url) == f"{HOST}/auth/oauth/token"
    assert token_request.headers["Content-Type"] == "application/x-www-form-urlencoded"
    assert parse_qs(token_request.content.decode()) == {
        "grant_type": ["password"],
        "username": [API_KEY],
        "password": [SECRET],
    }
    assert (
        token_request.headers["Authorization"]
        == "Basic " + base64.b64encode(b"public-client:public").decode()
    )
    [devices_request] = server.api_requests("/api/v2/account/devices")
    assert devices_request.headers["Authorization"] == "Bearer token-1"


def test_rejected_keys_fail_with_the_vendor_message_and_never_the_secret(
    harness: Harness, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    server = FakeDatto()
    adapter = harness.adapter(server, secret="not-the-right-secret-99")

    with pytest.raises(UpstreamError) as raised:
        list(adapter.organizations())

    error = raised.value
    assert (
        str(error)
        == "datto: POST /auth/oauth/token: credentials rejected (HTTP 401): unauthorized: Bad credentials"
    )
    assert error.retryable is False
    for text in (str(error), repr(adapter), caplog.text):
        assert "not-the-right-secret-99" not in text
    assert server.api_requests("/api/v2/account/sites") == []


def test_an_expired_token_is_refreshed_once_and_the_listing_completes(harness: Harness) -> None:
    server = FakeDatto(devices=[device(f"d-{i}") for i in range(1, 6)])
    devices = harness.adapter(server, page_size=2).devices()

    first = next(devices)
    server.revoke_tokens()  # the token expires between two pages
    rest = list(devices)

    assert [d.id for d in [first, *rest]] == [f"datto:d-{i}" for i in range(1, 6)]
    assert server.tokens_issued == 2
    assert [r.headers["Authorization"] for r in server.api_requests("/api/v2/account/devices")] == [
        "Bearer token-1",
        "Bearer token-1",
        "Bearer token-2",
        "Bearer token-2",
    ]


# --- paging --------------------------------------------------------------------------------------------


def test_every_device_is_read_across_several_pages_by_following_next_page_url(harness: Harness) -> None:
    server = FakeDatto(devices=[device(f"d-{i}") for i in range(1, 8)])
    adapter = harness.adapter(server, page_size=3)

    devices = list(adapter.devices())

    assert [d.id for d in devices] == [f"datto:d-{i}" for i in range(1, 8)]
    asked = [
        (r.url.params["page"], r.url.params["max"]) for r in server.api_requests("/api/v2/account/devices")
    ]
    assert asked == [("0", "3"), ("1", "3"), ("2", "3")]
    assert adapter.requests_sent == 1 + 3


def test_pages_are_at_most_250_records() -> None:
    connection = RmmConnection(ClientCredentials(API_KEY, SECRET), "merlot")
    with pytest.raises(InvalidInput, match="between 1 and 250"):
        DattoAdapter(connection, page_size=251)


def test_a_next_page_on_another_host_is_refused(harness: Harness) -> None:
    server = FakeDatto()
    details = {
        "count": 1,
        "totalCount": 2,
        "nextPageUrl": "https://attacker.test/api/v2/account/sites?page=1",
    }
    server.script("/api/v2/account/sites", httpx.Response(200, json={"pageDetails": details, "sites": []}))

    with pytest.raises(UpstreamError, match=r"another host \(attacker.test\)"):
        list(harness.adapter(server).organizations())


def test_a_page_without_its_list_fails_instead_of_reading_as_empty(harness: Harness) -> None:
    server = FakeDatto()
    server.script("/api/v2/account/devices", httpx.Response(200, json={"pageDetails": {}, "items": []}))

    with pytest.raises(UpstreamError, match=r"GET /api/v2/account/devices page 1: no `devices` list"):
        list(harness.adapter(server).devices())


# --- retries ---------------------------------------------------------------------------------------------


def test_429_with_retry_after_waits_as_told(harness: Harness) -> None:
    server = FakeDatto(devices=[device("d-1")])
    server.script(
        "/api/v2/account/devices", httpx.Response(429, headers={"Retry-After": "7"}, text="Too Many Requests")
    )

    assert [d.id for d in harness.adapter(server).devices()] == ["datto:d-1"]
    assert harness.sleeps == [7.0]


def test_429_without_retry_after_backs_off_with_jitter(harness: Harness) -> None:
    server = FakeDatto(devices=[device("d-1")])
    server.script("/api/v2/account/devices", httpx.Response(429), httpx.Response(429))

    assert len(list(harness.adapter(server).devices())) == 1
    first, second = harness.sleeps
    assert 0.25 <= first <= 0.5
    assert 0.5 <= second <= 1.0


def test_5xx_then_success_is_retried(harness: Harness) -> None:
    server = FakeDatto(devices=[device("d-1")])
    server.script("/api/v2/account/devices", httpx.Response(500, json={"message": "Internal Server Error"}))

    assert len(list(harness.adapter(server).devices())) == 1
    assert len(harness.sleeps) == 1


def test_5xx_that_outlasts_the_retries_fails_the_listing(harness: Harness) -> None:
    server = FakeDatto(devices=[device("d-1")])
    server.script("/api/v2/account/devices", *[httpx.Response(503, text="Service Unavailable")] * 3)

    with pytest.raises(UpstreamError, match=r"GET /api/v2/account/devices page 1: HTTP 503 after 3 attempts"):
        list(harness.adapter(server).devices())


def test_the_request_budget_is_600_reads_a_minute_shared_by_token_and_pages(harness: Harness) -> None:
    clock = [0.0]
    waits: list[float] = []

    def sleep(seconds: float) -> None:
        waits.append(seconds)
        clock[0] += seconds

    limiter = RateLimiter(2, 60.0, clock=lambda: clock[0], sleep=sleep)
    server = FakeDatto(devices=[device(f"d-{i}") for i in range(1, 4)])
    list(harness.adapter(server, page_size=2, limiter=limiter).devices())
    assert waits == [60.0]  # token + page 1 fill the window; page 2 waits for it to pass


# --- records ---------------------------------------------------------------------------------------------


def test_sites_are_organizations_and_devices_are_normalized(harness: Harness) -> None:
    server = FakeDatto(
        sites=[site("s-1", " Acme Dental "), site("s-2", "Birch Law")],
        devices=[device("d-1", "s-2", hostname="ACME-PC1", lastSeen=1721131200000)],
    )
    data = collect(harness.adapter(server), NOW)

    assert data.organizations == [
        Organization(id="datto:s-1", name="Acme Dental"),
        Organization(id="datto:s-2", name="Birch Law"),
    ]
    assert data.devices == [
        Device(
            id="datto:d-1",
            organization_id="datto:s-2",
            name="ACME-PC1",
            device_class=DeviceClass.WORKSTATION,
            last_seen=datetime(2024, 7, 16, 12, 0, tzinfo=UTC),  # 1721131200000 ms
            state=DeviceState.ACTIVE,
        )
    ]


def test_millisecond_timestamps_keep_their_milliseconds_and_zero_is_never() -> None:
    from trueup.vendors.datto import last_seen_utc

    assert last_seen_utc(1721131200123) == datetime(2024, 7, 16, 12, 0, 0, 123000, tzinfo=UTC)
    assert last_seen_utc(0) is None
    assert last_seen_utc("2024-07-16T12:00:00Z") == datetime(2024, 7, 16, 12, 0, tzinfo=UTC)


def test_a_malformed_record_is_reported_and_skipped(harness: Harness) -> None:
    # Datto's sample page holding a device whose uid is a number (the spec says a string).
    page = json.loads((SAMPLES / "devices-page-with-malformed-item.json").read_text())
    server = FakeDatto(devices=[{**item, "siteUid": "s-1"} for item in page["devices"]])

    data = collect(harness.adapter(server), NOW)

    assert [d.id for d in data.devices] == ["datto:device-uid-601"]
    assert data.skipped == [
        SkippedRecord(
            source="datto",
            kind="device",
            id="datto:602",
            reason="uid input should be a valid string (got 602)",
            organization_id="datto:s-1",
        )
    ]


def test_an_unreadable_last_seen_skips_the_device_with_the_reason(harness: Harness) -> None:
    server = FakeDatto(devices=[device("d-1", lastSeen="yesterday"), device("d-2")])
    data = collect(harness.adapter(server), NOW)

    assert [d.id for d in data.devices] == ["datto:d-2"]
    assert data.skipped[0].reason == "lastSeen 'yesterday' is neither epoch milliseconds nor a date-time"


def test_deleted_and_suspended_devices_are_listed_with_their_state(harness: Harness) -> None:
    server = FakeDatto(devices=[device("d-1", deleted=True), device("d-2", suspended=True), device("d-3")])
    states = {d.id: d.state for d in collect(harness.adapter(server), NOW).devices}
    assert states == {
        "datto:d-1": DeviceState.DELETED,
        "datto:d-2": DeviceState.SUSPENDED,
        "datto:d-3": DeviceState.ACTIVE,
    }


@pytest.mark.parametrize(
    ("datto_class", "category", "expected"),
    [
        ("device", "Desktop", DeviceClass.WORKSTATION),
        ("device", "Laptop", DeviceClass.WORKSTATION),
        ("device", "Server", DeviceClass.SERVER),
        ("device", "server", DeviceClass.SERVER),
        ("device", "Mobile Device", DeviceClass.OTHER),
        ("device", None, DeviceClass.OTHER),
        ("esxihost", None, DeviceClass.VIRTUAL_HOST),
        ("printer", None, DeviceClass.NETWORK),
        ("rmmnetworkdevice", "network", DeviceClass.NETWORK),
        ("unknown", "Desktop", DeviceClass.OTHER),
        (None, "Desktop", DeviceClass.OTHER),
    ],
)
def test_device_classes_follow_the_table(
    datto_class: str | None, category: str | None, expected: DeviceClass
) -> None:
    assert device_class(datto_class, category) is expected


def test_the_sample_network_device_is_a_network_device() -> None:
    sample = json.loads((SAMPLES / "device-rmmnetworkdevice.json").read_text())
    server = FakeDatto(devices=[sample])
    [switch] = collect(Harness().adapter(server), NOW).devices
    assert (switch.name, switch.device_class) == ("switch-core-01", DeviceClass.NETWORK)


# --- serial numbers from the device audit -----------------------------------------------------------------


def test_serials_come_from_the_audit_only_for_hostnames_another_rmm_has(harness: Harness) -> None:
    server = FakeDatto(
        devices=[
            device("d-1", "s-1", hostname="ACME-PC1"),
            device("d-2", "s-2", hostname="ACME-PC2"),
            device("d-3", "s-1", hostname="acme-srv"),
            device("d-4", "s-1", hostname="ACME-SWITCH", deviceClass="rmmnetworkdevice"),
        ]
    )
    server.audits = {
        "d-1": {"bios": {"serialNumber": " 5CG1234XYZ "}},
        "d-2": {"bios": {"serialNumber": "NEVER-READ"}},
        # d-3 was never audited: 404
    }
    # The other RMM has ACME-PC1 and ACME-SRV (names compared case-folded) and a switch of that name.
    adapter = harness.adapter(server, match={"acme-pc1", "acme-srv", "acme-switch"})

    serials = {d.id: d.serial for d in collect(adapter, NOW).devices}

    assert serials == {"datto:d-1": "5CG1234XYZ", "datto:d-2": None, "datto:d-3": None, "datto:d-4": None}
    assert [r.url.path for r in server.requests if "/audit/" in r.url.path] == [
        "/api/v2/audit/device/d-1",
        "/api/v2/audit/device/d-3",
    ]


def test_a_failing_audit_fails_the_listing_rather_than_dropping_the_serial(harness: Harness) -> None:
    server = FakeDatto(devices=[device("d-1")])
    server.script("/api/v2/audit/device/d-1", *[httpx.Response(500, text="boom")] * 3)

    with pytest.raises(UpstreamError, match="GET /api/v2/audit/device/d-1: HTTP 500 after 3 attempts"):
        list(harness.adapter(server, match={"host-d-1"}).devices())


# --- where the API lives ---------------------------------------------------------------------------------


def test_platform_names_and_urls_resolve_to_the_api_host() -> None:
    assert resolve_base_url("merlot") == "https://merlot-api.centrastage.net"
    assert resolve_base_url(" Concord ") == "https://concord-api.centrastage.net"
    assert resolve_base_url("https://vidal-api.centrastage.net/api/") == "https://vidal-api.centrastage.net"
    assert resolve_base_url("http://127.0.0.1:8093") == "http://127.0.0.1:8093"


@pytest.mark.parametrize("value", [None, "", "mars", "ftp://merlot-api.centrastage.net"])
def test_a_missing_or_unknown_platform_is_refused_naming_the_platforms(value: str | None) -> None:
    with pytest.raises(InvalidInput, match="concord, merlot, pinotage, vidal, zinfandel, syrah"):
        resolve_base_url(value)


def test_the_registry_builds_the_datto_adapter() -> None:
    adapter = create_adapter("datto", RmmConnection(ClientCredentials(API_KEY, SECRET), "syrah"))
    try:
        assert isinstance(adapter, DattoAdapter)
        assert SECRET not in repr(adapter)
    finally:
        adapter.close()
