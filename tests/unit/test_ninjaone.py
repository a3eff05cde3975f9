"""The NinjaOne adapter against an in-memory NinjaOne (httpx.MockTransport); nothing reaches the network."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qs

import httpx
import pytest

from trueup.domain.models import Device, DeviceClass, DeviceState, ExclusionRule, Organization, SkippedRecord
from trueup.domain.review import RuleMatcher
from trueup.errors import InvalidInput, UpstreamError
from trueup.vendors.credentials import ClientCredentials
from trueup.vendors.ninjaone import REGIONS, NinjaOneAdapter, device_class, resolve_base_url
from trueup.vendors.resilience import RetryPolicy
from trueup.vendors.rmm import RmmConnection, collect, create_adapter

SECRET = "s3cr3t-Client-Secret-value"
CLIENT_ID = "trueup-client"

# One item of GET /v2/devices captured from a live tenant
# (shared/specs/ninjaone/samples/devices-list-item.json).
CAPTURED_DEVICE: dict[str, Any] = {
    "id": 7,
    "parentDeviceId": 6,
    "organizationId": 2,
    "locationId": 2,
    "nodeClass": "VMWARE_VM_HOST",
    "nodeRoleId": 9,
    "rolePolicyId": 43,
    "approvalStatus": "APPROVED",
    "offline": False,
    "displayName": "192.168.50.43",
    "systemName": "ccesxi03.cc.local",
    "dnsName": "192.168.50.43",
    "created": 1707363433.892432000,
    "lastContact": 1742412252.744000000,
    "lastUpdate": 1742412252.744000000,
}


def device(device_id: int, organization_id: int = 1, **fields: Any) -> dict[str, Any]:
    record: dict[str, Any] = {
        "id": device_id,
        "organizationId": organization_id,
        "nodeClass": "WINDOWS_WORKSTATION",
        "approvalStatus": "APPROVED",
        "offline": False,
        "displayName": f"PC-{device_id}",
        "systemName": f"pc-{device_id}",
        "dnsName": f"pc-{device_id}.corp.local",
        "lastContact": 1742412252.744,
    }
    record.update(fields)
    return {key: value for key, value in record.items() if value is not _DROP}


_DROP = object()


def organization(org_id: int, name: str | None = None) -> dict[str, Any]:
    return {"id": org_id, "name": name or f"Client {org_id}", "nodeApprovalMode": "AUTOMATIC"}


Reply = httpx.Response | Exception


class FakeNinjaOne:
    """A NinjaOne tenant: OAuth token endpoint, `pageSize`/`after` paged lists and `GET /v2/roles`.

    `scripted` replies are served first (per path) to inject failures; `pages` replaces the paging
    of a path with fixed bodies keyed by the `after` value, to serve records a real server would not.
    """

    def __init__(
        self,
        organizations: list[dict[str, Any]] | None = None,
        devices: list[dict[str, Any]] | None = None,
        *,
        roles: list[Any] | None = None,
        max_page_size: int | None = None,
        ignore_after: bool = False,
    ) -> None:
        self.lists: dict[str, list[dict[str, Any]]] = {
            "/v2/organizations": organizations or [],
            "/v2/devices": devices or [],
        }
        self.roles = roles or []
        self.max_page_size = max_page_size
        self.ignore_after = ignore_after
        self.pages: dict[str, dict[int | None, Any]] = {}
        self.scripted: dict[str, list[Reply]] = {}
        self.requests: list[httpx.Request] = []
        self.tokens_issued = 0
        self.valid_tokens: set[str] = set()

    def script(self, path: str, *replies: Reply) -> None:
        self.scripted.setdefault(path, []).extend(replies)

    def revoke_tokens(self) -> None:
        self.valid_tokens.clear()

    def api_requests(self, path: str) -> list[httpx.Request]:
        return [request for request in self.requests if request.url.path == path]

    def token_requests(self) -> list[httpx.Request]:
        return self.api_requests("/ws/oauth/token")

    def afters(self, path: str) -> list[str | None]:
        return [request.url.params.get("after") for request in self.api_requests(path)]

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        path = request.url.path
        queue = self.scripted.get(path)
        if queue:
            reply = queue.pop(0)
            if isinstance(reply, Exception):
                raise reply
            return reply
        if path == "/ws/oauth/token":
            return self._token(request)
        if request.headers.get("Authorization", "").removeprefix("Bearer ") not in self.valid_tokens:
            return httpx.Response(401, json={"resultCode": "FAILURE", "errorMessage": "Invalid token"})
        if path == "/v2/roles":
            return httpx.Response(200, json=self.roles)  # the whole list: the spec declares no paging
        after_param = request.url.params.get("after")
        after = int(after_param) if after_param is not None else None
        if path in self.pages:
            return httpx.Response(200, json=self.pages[path][after])
        records = sorted(self.lists[path], key=lambda record: int(record["id"]))
        if after is not None and not self.ignore_after:
            records = [record for record in records if record["id"] > after]
        size = int(request.url.params["pageSize"])
        if self.max_page_size is not None:
            size = min(size, self.max_page_size)
        return httpx.Response(200, json=records[:size])

    def _token(self, request: httpx.Request) -> httpx.Response:
        form = parse_qs(request.content.decode())
        if form.get("client_secret") != [SECRET]:
            body = {"error": "invalid_client", "error_description": "Bad credentials"}
            return httpx.Response(401, json=body)
        self.tokens_issued += 1
        token = f"token-{self.tokens_issued}"
        self.valid_tokens.add(token)
        return httpx.Response(
            200,
            json={"access_token": token, "expires_in": 3600, "token_type": "Bearer", "scope": "monitoring"},
        )


FAST = RetryPolicy(max_attempts=3, base_delay=0.5, max_delay=4.0, timeout=5.0)


class Harness:
    def __init__(self) -> None:
        self.sleeps: list[float] = []
        self._clients: list[httpx.Client] = []

    def adapter(
        self,
        server: Callable[[httpx.Request], httpx.Response],
        *,
        base_url: str | None = None,
        page_size: int = 1000,
        secret: str = SECRET,
        policy: RetryPolicy = FAST,
    ) -> NinjaOneAdapter:
        http = httpx.Client(transport=httpx.MockTransport(server))
        self._clients.append(http)
        connection = RmmConnection(ClientCredentials(CLIENT_ID, secret), base_url)
        return NinjaOneAdapter(
            connection, http=http, policy=policy, page_size=page_size, sleep=self.sleeps.append
        )

    def close(self) -> None:
        for http in self._clients:
            http.close()


@pytest.fixture
def harness() -> Iterator[Harness]:
    h = Harness()
    yield h
    h.close()


# --- OAuth -----------------------------------------------------------------------------------------


def test_token_request_posts_form_encoded_client_credentials_with_monitoring_scope(harness: Harness) -> None:
    server = FakeNinjaOne(organizations=[organization(1)])
    list(harness.adapter(server).organizations())

    [token_request] = server.token_requests()
    assert token_request.method == "POST"
    assert str(token_request.url) == "https://app.ninjarmm.com/ws/oauth/token"
    assert token_request.headers["Content-Type"] == "application/x-www-form-urlencoded"
    assert parse_qs(token_request.content.decode()) == {
        "grant_type": ["client_credentials"],
        "client_id": [CLIENT_ID],
        "client_secret": [SECRET],
        "scope": ["monitoring"],
    }
    assert "Authorization" not in token_request.headers


def test_one_token_is_reused_for_every_page_of_both_lists(harness: Harness) -> None:
    server = FakeNinjaOne(
        organizations=[organization(i) for i in range(1, 6)], devices=[device(i) for i in range(1, 6)]
    )
    adapter = harness.adapter(server, page_size=2)

    assert len(list(adapter.organizations())) == 5
    assert len(list(adapter.devices())) == 5

    assert server.tokens_issued == 1
    api = [request for request in server.requests if request.url.path.startswith("/v2/")]
    assert len(api) == 9  # 3 pages + the empty page, for each list, and the roles
    assert {request.headers["Authorization"] for request in api} == {"Bearer token-1"}
    assert adapter.requests_sent == 10


def test_a_successful_sync_logs_neither_the_client_id_nor_the_secret_nor_the_token(
    harness: Harness, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    adapter = harness.adapter(FakeNinjaOne(devices=[device(1)]))
    assert len(list(adapter.devices())) == 1
    assert "access token obtained" in caplog.text
    for credential in (CLIENT_ID, SECRET, "token-1"):
        assert credential not in caplog.text


def test_401_from_token_endpoint_raises_with_vendor_message_and_never_the_secret(
    harness: Harness, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    server = FakeNinjaOne(devices=[device(1)])
    server.script(
        "/ws/oauth/token",
        httpx.Response(
            401, json={"error": "invalid_client", "error_description": "Invalid client credentials"}
        ),
    )
    adapter = harness.adapter(server)

    with pytest.raises(UpstreamError) as raised:
        list(adapter.devices())

    error = raised.value
    assert error.status == 401
    assert error.retryable is False
    assert "invalid_client: Invalid client credentials" in str(error)
    assert "POST /ws/oauth/token" in str(error)
    for text in (str(error), repr(error), caplog.text, repr(adapter)):
        assert SECRET not in text
    assert server.api_requests("/v2/devices") == []


def test_a_secret_echoed_by_the_vendor_is_masked_in_the_error(harness: Harness) -> None:
    server = FakeNinjaOne()
    server.script(
        "/ws/oauth/token",
        httpx.Response(
            400, json={"error": "invalid_request", "error_description": f"unknown client_secret {SECRET}"}
        ),
    )

    with pytest.raises(UpstreamError) as raised:
        list(harness.adapter(server).organizations())

    assert SECRET not in str(raised.value)
    assert "unknown client_secret ***" in str(raised.value)


def test_expired_token_is_refreshed_once_and_the_sync_completes(harness: Harness) -> None:
    server = FakeNinjaOne(devices=[device(i) for i in range(1, 5)])
    devices = harness.adapter(server, page_size=2).devices()

    first = next(devices)
    server.revoke_tokens()  # the token expires between two pages
    rest = list(devices)

    assert [d.id for d in [first, *rest]] == ["ninjaone:1", "ninjaone:2", "ninjaone:3", "ninjaone:4"]
    assert server.tokens_issued == 2
    assert [r.headers["Authorization"] for r in server.api_requests("/v2/devices")] == [
        "Bearer token-1",
        "Bearer token-1",
        "Bearer token-2",
        "Bearer token-2",
    ]
    assert harness.sleeps == []


def test_401_after_a_fresh_token_fails_instead_of_looping(harness: Harness) -> None:
    server = FakeNinjaOne(devices=[device(1)])
    server.script("/v2/devices", *[httpx.Response(401, json={"errorMessage": "Invalid token"})] * 2)

    with pytest.raises(UpstreamError) as raised:
        list(harness.adapter(server).devices())

    assert raised.value.status == 401
    assert "Invalid token" in str(raised.value)
    assert server.tokens_issued == 2


def test_token_response_without_access_token_is_an_upstream_error(harness: Harness) -> None:
    server = FakeNinjaOne()
    server.script("/ws/oauth/token", httpx.Response(200, json={"token_type": "Bearer", "expires_in": 3600}))

    with pytest.raises(UpstreamError, match="no access_token"):
        list(harness.adapter(server).organizations())


# --- Paging ----------------------------------------------------------------------------------------


def test_short_pages_are_not_the_end_when_the_server_caps_page_size(harness: Harness) -> None:
    ids = [3, 5, 8, 13, 21, 34, 55]
    server = FakeNinjaOne(devices=[device(i) for i in ids], max_page_size=3)

    devices = list(harness.adapter(server, page_size=1000).devices())

    assert [d.id for d in devices] == [f"ninjaone:{i}" for i in ids]
    assert server.afters("/v2/devices") == [None, "8", "34", "55"]
    assert {r.url.params["pageSize"] for r in server.api_requests("/v2/devices")} == {"1000"}


def test_organizations_are_paged_with_after_the_largest_id_seen(harness: Harness) -> None:
    server = FakeNinjaOne(organizations=[organization(i, f"Org {i}") for i in (40, 10, 30, 20)])

    orgs = list(harness.adapter(server, page_size=3).organizations())

    assert orgs == [Organization(id=f"ninjaone:{i}", name=f"Org {i}") for i in (10, 20, 30, 40)]
    assert server.afters("/v2/organizations") == [None, "30", "40"]


def test_devices_are_fetched_page_by_page_as_they_are_consumed(harness: Harness) -> None:
    server = FakeNinjaOne(devices=[device(i) for i in range(1, 10)])
    devices = harness.adapter(server, page_size=3).devices()

    next(devices)

    assert len(server.api_requests("/v2/devices")) == 1


def test_page_that_is_not_an_array_raises_naming_path_and_after(harness: Harness) -> None:
    server = FakeNinjaOne()
    server.pages["/v2/devices"] = {None: [device(4)], 4: {"devices": []}}

    with pytest.raises(UpstreamError) as raised:
        list(harness.adapter(server).devices())

    message = str(raised.value)
    assert "GET /v2/devices page 2 (after=4)" in message
    assert "expected a JSON array, got dict" in message


def test_page_that_is_not_json_raises(harness: Harness) -> None:
    server = FakeNinjaOne()
    server.script("/v2/organizations", httpx.Response(200, text="<html>Maintenance</html>"))

    expected = r"GET /v2/organizations page 1 \(after=none\): response is not JSON"
    with pytest.raises(UpstreamError, match=expected):
        list(harness.adapter(server).organizations())


def test_server_ignoring_after_raises_instead_of_looping(harness: Harness) -> None:
    server = FakeNinjaOne(devices=[device(i) for i in range(1, 4)], ignore_after=True)

    with pytest.raises(UpstreamError) as raised:
        list(harness.adapter(server, page_size=2).devices())

    assert "page does not advance" in str(raised.value)
    assert "after=2" in str(raised.value)
    assert len(server.api_requests("/v2/devices")) == 2


# --- Device normalization --------------------------------------------------------------------------

NODE_CLASS_TABLE = [
    ("WINDOWS_WORKSTATION", DeviceClass.WORKSTATION),
    ("LINUX_WORKSTATION", DeviceClass.WORKSTATION),
    ("MAC", DeviceClass.WORKSTATION),
    ("WINDOWS_SERVER", DeviceClass.SERVER),
    ("LINUX_SERVER", DeviceClass.SERVER),
    ("MAC_SERVER", DeviceClass.SERVER),
    ("VMWARE_VM_HOST", DeviceClass.VIRTUAL_HOST),
    ("HYPERV_VMM_HOST", DeviceClass.VIRTUAL_HOST),
    ("NMS_VM_HOST", DeviceClass.VIRTUAL_HOST),
    ("VMWARE_VM_GUEST", DeviceClass.VIRTUAL_GUEST),
    ("HYPERV_VMM_GUEST", DeviceClass.VIRTUAL_GUEST),
    ("NMS_VIRTUAL_MACHINE", DeviceClass.VIRTUAL_GUEST),
    ("ANDROID", DeviceClass.MOBILE),
    ("APPLE_IOS", DeviceClass.MOBILE),
    ("APPLE_IPADOS", DeviceClass.MOBILE),
]

# Every other NMS_* value of the vendor spec's nodeClass enum, plus one NinjaOne may add later.
OTHER_NMS_CLASSES = [
    "NMS_SWITCH",
    "NMS_ROUTER",
    "NMS_FIREWALL",
    "NMS_PRIVATE_NETWORK_GATEWAY",
    "NMS_PRINTER",
    "NMS_SCANNER",
    "NMS_DIAL_MANAGER",
    "NMS_WAP",
    "NMS_IPSLA",
    "NMS_COMPUTER",
    "NMS_APPLIANCE",
    "NMS_OTHER",
    "NMS_SERVER",
    "NMS_PHONE",
    "NMS_NETWORK_MANAGEMENT_AGENT",
    "NMS_FUTURE_THING",
]


@pytest.mark.parametrize(("node_class", "expected"), NODE_CLASS_TABLE)
def test_node_class_maps_to_device_class(node_class: str, expected: DeviceClass) -> None:
    assert device_class(node_class) is expected


@pytest.mark.parametrize("node_class", OTHER_NMS_CLASSES)
def test_other_nms_classes_are_network_devices(node_class: str) -> None:
    assert device_class(node_class) is DeviceClass.NETWORK


@pytest.mark.parametrize(
    "node_class", ["CLOUD_MONITOR_TARGET", "UNMANAGED_DEVICE", "MANAGED_DEVICE", "QUANTUM_TOASTER", "", None]
)
def test_unknown_node_classes_are_other(node_class: str | None) -> None:
    assert device_class(node_class) is DeviceClass.OTHER


def test_every_node_class_of_the_table_reaches_the_device(harness: Harness) -> None:
    records = [device(i + 1, nodeClass=node_class) for i, (node_class, _) in enumerate(NODE_CLASS_TABLE)]
    records.append(device(100, nodeClass="NMS_SWITCH"))
    records.append(device(101, nodeClass="SOMETHING_NEW"))
    server = FakeNinjaOne(devices=records)

    classes = [d.device_class for d in harness.adapter(server).devices() if isinstance(d, Device)]

    table = [expected for _, expected in NODE_CLASS_TABLE]
    assert classes == [*table, DeviceClass.NETWORK, DeviceClass.OTHER]


def test_captured_device_is_normalized(harness: Harness) -> None:
    server = FakeNinjaOne(devices=[CAPTURED_DEVICE])

    [result] = list(harness.adapter(server).devices())

    assert result == Device(
        id="ninjaone:7",
        organization_id="ninjaone:2",
        name="192.168.50.43",
        device_class=DeviceClass.VIRTUAL_HOST,
        last_seen=datetime(2025, 3, 19, 19, 24, 12, 744000, tzinfo=UTC),
        state=DeviceState.ACTIVE,
    )


def role(
    role_id: int, name: str, node_class: str = "WINDOWS_WORKSTATION", custom: bool = False
) -> dict[str, Any]:
    # One item of GET /v2/roles (NodeRole in the vendor spec).
    return {"id": role_id, "name": name, "nodeClass": node_class, "custom": custom, "chassisType": "UNKNOWN"}


ROLES = [role(1, "WINDOWS_WORKSTATION"), role(9, "ESXi hosts", "VMWARE_VM_HOST", custom=True)]


def test_role_name_and_tags_reach_the_device(harness: Harness) -> None:
    server = FakeNinjaOne(
        devices=[CAPTURED_DEVICE, device(8, nodeRoleId=1, tags=["lab", " Not-Billable "])], roles=ROLES
    )

    captured, tagged = list(harness.adapter(server).devices())

    assert isinstance(captured, Device)
    assert isinstance(tagged, Device)
    assert (captured.role, captured.tags) == ("ESXi hosts", [])
    assert (tagged.role, tagged.tags) == ("WINDOWS_WORKSTATION", ["lab", "Not-Billable"])


def test_an_unknown_role_id_gives_no_role_and_is_logged_once(
    harness: Harness, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="trueup.vendors.ninjaone")
    server = FakeNinjaOne(devices=[device(1, nodeRoleId=77), device(2, nodeRoleId=77)], roles=ROLES)

    roles = [d.role for d in harness.adapter(server).devices() if isinstance(d, Device)]

    assert roles == [None, None]
    assert [r.getMessage() for r in caplog.records] == [
        "ninjaone: nodeRoleId 77 is not among /v2/roles; such devices have no role"
    ]


def test_a_device_without_role_or_tags_has_none(harness: Harness) -> None:
    server = FakeNinjaOne(devices=[device(1)], roles=ROLES)

    [result] = list(harness.adapter(server).devices())

    assert isinstance(result, Device)
    assert (result.role, result.tags) == (None, [])


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        ({"nodeRoleId": "1", "tags": "lab"}, (None, [])),
        ({"nodeRoleId": None, "tags": None}, (None, [])),
        ({"nodeRoleId": True, "tags": [1, "", "lab", {"name": "x"}]}, (None, ["lab"])),
    ],
)
def test_odd_role_ids_and_tags_do_not_cost_the_device_its_place(
    harness: Harness, fields: dict[str, Any], expected: tuple[str | None, list[str]]
) -> None:
    server = FakeNinjaOne(devices=[device(1, **fields)], roles=ROLES)

    [result] = list(harness.adapter(server).devices())

    assert isinstance(result, Device)
    assert (result.role, result.tags) == expected


def test_roles_are_read_once_per_sync_in_one_request(harness: Harness) -> None:
    server = FakeNinjaOne(devices=[device(i, nodeRoleId=1) for i in range(1, 6)], roles=ROLES)
    adapter = harness.adapter(server, page_size=2)

    first = [d.role for d in adapter.devices() if isinstance(d, Device)]
    second = [d.role for d in adapter.devices() if isinstance(d, Device)]

    assert first == second == ["WINDOWS_WORKSTATION"] * 5
    [roles_request] = server.api_requests("/v2/roles")
    assert roles_request.url.params == httpx.QueryParams()
    assert roles_request.headers["Authorization"] == "Bearer token-1"


def test_unreadable_role_records_are_left_out(harness: Harness) -> None:
    roles = [
        {"id": "2", "name": "Kiosk"},
        {"id": 3},
        role(4, "   "),
        "not a role",
        role(5, "Domain Controller"),
    ]
    server = FakeNinjaOne(devices=[device(i, nodeRoleId=i) for i in (2, 3, 4, 5)], roles=roles)

    results = list(harness.adapter(server).devices())

    assert [d.role for d in results if isinstance(d, Device)] == [None, None, None, "Domain Controller"]


def test_roles_failing_fail_the_sync_before_any_device_is_read(harness: Harness) -> None:
    server = FakeNinjaOne(devices=[device(1)], roles=ROLES)
    server.script("/v2/roles", *[httpx.Response(503, text="Service Unavailable")] * 3)

    with pytest.raises(UpstreamError, match=r"GET /v2/roles: HTTP 503 after 3 attempts") as raised:
        list(harness.adapter(server).devices())

    assert raised.value.retryable is True
    assert server.api_requests("/v2/devices") == []


def test_roles_that_are_not_an_array_raise(harness: Harness) -> None:
    server = FakeNinjaOne(devices=[device(1)])
    server.script("/v2/roles", httpx.Response(200, json={"roles": []}))

    with pytest.raises(UpstreamError, match="GET /v2/roles: expected a JSON array, got dict"):
        list(harness.adapter(server).devices())


def test_exclusion_rules_leave_out_ninjaone_devices_by_role_or_tag_in_any_case(harness: Harness) -> None:
    server = FakeNinjaOne(
        devices=[device(1, nodeRoleId=9), device(2, tags=["Lab"]), device(3, nodeRoleId=1)], roles=ROLES
    )
    matcher = RuleMatcher(
        [ExclusionRule(name="Hosts", roles=["esxi HOSTS"]), ExclusionRule(name="Lab", tags=["lab"])]
    )

    devices = [d for d in harness.adapter(server).devices() if isinstance(d, Device)]

    assert [matcher.matched(d) for d in devices] == [(0,), (1,), ()]


def test_last_contact_epoch_seconds_become_aware_utc(harness: Harness) -> None:
    server = FakeNinjaOne(devices=[device(1, lastContact=1700000000.5), device(2, lastContact=1700000000)])

    first, second = list(harness.adapter(server).devices())

    assert isinstance(first, Device)
    assert isinstance(second, Device)
    assert first.last_seen == datetime(2023, 11, 14, 22, 13, 20, 500000, tzinfo=UTC)
    assert first.last_seen is not None
    assert first.last_seen.utcoffset() is not None
    assert second.last_seen == datetime(2023, 11, 14, 22, 13, 20, tzinfo=UTC)


def test_missing_or_null_last_contact_is_none(harness: Harness) -> None:
    server = FakeNinjaOne(devices=[device(1, lastContact=_DROP), device(2, lastContact=None)])

    devices = list(harness.adapter(server).devices())

    assert [d.last_seen for d in devices if isinstance(d, Device)] == [None, None]
    assert len(devices) == 2


def test_pending_approval_is_pending(harness: Harness) -> None:
    server = FakeNinjaOne(devices=[device(1, approvalStatus="PENDING"), device(2, approvalStatus="APPROVED")])

    states = [d.state for d in harness.adapter(server).devices() if isinstance(d, Device)]

    assert states == [DeviceState.PENDING, DeviceState.ACTIVE]


def test_unknown_approval_status_is_pending_and_logged_once(
    harness: Harness, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="trueup.vendors.ninjaone")
    server = FakeNinjaOne(devices=[device(i, approvalStatus="QUARANTINED") for i in range(1, 4)])

    states = [d.state for d in harness.adapter(server).devices() if isinstance(d, Device)]

    assert states == [DeviceState.PENDING] * 3
    assert [r.getMessage() for r in caplog.records].count(
        "ninjaone: unknown approvalStatus 'QUARANTINED'; such devices are treated as pending"
    ) == 1


@pytest.mark.parametrize(
    ("names", "expected"),
    [
        ({"displayName": "Reception PC"}, "Reception PC"),
        ({"displayName": _DROP}, "pc-9"),
        ({"displayName": "  ", "systemName": None}, "pc-9.corp.local"),
        ({"displayName": _DROP, "systemName": _DROP, "dnsName": _DROP}, "device 9"),
    ],
)
def test_device_name_falls_back_from_display_to_system_to_dns_name(
    harness: Harness, names: dict[str, Any], expected: str
) -> None:
    server = FakeNinjaOne(devices=[device(9, **names)])

    [result] = list(harness.adapter(server).devices())

    assert isinstance(result, Device)
    assert result.name == expected


def test_malformed_devices_are_skipped_with_reason_while_the_rest_is_yielded(harness: Harness) -> None:
    server = FakeNinjaOne()
    server.pages["/v2/devices"] = {
        None: [
            device(1),
            device(2, organizationId=_DROP),
            device(3, lastContact="yesterday"),
            device(4, organizationId="12"),
            "not a device",
            device(_DROP, organizationId=5),  # type: ignore[arg-type]
            device(7, lastContact=1e300),
            device(8),
        ],
        8: [],
    }

    results = list(harness.adapter(server).devices())

    assert [r.id for r in results if isinstance(r, Device)] == ["ninjaone:1", "ninjaone:8"]
    skipped = [r for r in results if isinstance(r, SkippedRecord)]
    assert [(s.id, s.organization_id) for s in skipped] == [
        ("ninjaone:2", None),
        ("ninjaone:3", "ninjaone:1"),
        ("ninjaone:4", "ninjaone:12"),
        (None, None),
        (None, "ninjaone:5"),
        ("ninjaone:7", "ninjaone:1"),
    ]
    assert {s.source for s in skipped} == {"ninjaone"}
    assert {s.kind for s in skipped} == {"device"}
    reasons = [s.reason for s in skipped]
    assert reasons[0] == "organizationId is missing"
    assert reasons[1].startswith("lastContact input should be a valid number")
    assert "'yesterday'" in reasons[1]
    assert reasons[2].startswith("organizationId input should be a valid integer")
    assert reasons[3] == "not a JSON object (str)"
    assert reasons[4] == "id is missing"
    assert reasons[5] == "lastContact 1e+300 is not a usable epoch timestamp"


def test_malformed_organizations_are_skipped_with_reason(harness: Harness) -> None:
    server = FakeNinjaOne()
    server.pages["/v2/organizations"] = {
        None: [
            organization(1),
            {"id": 2},
            {"id": 3, "name": "   "},
            {"id": "4", "name": "Four"},
            organization(5),
        ],
        5: [],
    }

    results = list(harness.adapter(server).organizations())

    assert [r.id for r in results if isinstance(r, Organization)] == ["ninjaone:1", "ninjaone:5"]
    assert [(r.id, r.reason) for r in results if isinstance(r, SkippedRecord)] == [
        ("ninjaone:2", "name is missing"),
        ("ninjaone:3", "name is empty"),
        ("ninjaone:4", "id input should be a valid integer (got '4')"),
    ]


def test_collect_separates_skipped_records_from_counts(harness: Harness) -> None:
    server = FakeNinjaOne(
        organizations=[organization(1), {"id": 2}], devices=[device(1), device(2, organizationId=None)]
    )
    synced_at = datetime(2025, 3, 20, tzinfo=UTC)

    data = collect(harness.adapter(server), synced_at)

    assert data.source == "ninjaone"
    assert [o.id for o in data.organizations] == ["ninjaone:1"]
    assert [d.id for d in data.devices] == ["ninjaone:1"]
    assert [(s.kind, s.id) for s in data.skipped] == [
        ("organization", "ninjaone:2"),
        ("device", "ninjaone:2"),
    ]


# --- Retry discipline ------------------------------------------------------------------------------


def test_429_honours_retry_after(harness: Harness) -> None:
    server = FakeNinjaOne(devices=[device(1), device(2)])
    server.script("/v2/devices", httpx.Response(429, headers={"Retry-After": "7"}, text="Too Many Requests"))

    devices = list(harness.adapter(server).devices())

    assert [d.id for d in devices] == ["ninjaone:1", "ninjaone:2"]
    assert harness.sleeps == [7.0]


def test_5xx_then_success_is_retried_with_backoff(harness: Harness) -> None:
    server = FakeNinjaOne(devices=[device(1)])
    server.script("/v2/devices", httpx.Response(503, text="Service Unavailable"))

    devices = list(harness.adapter(server).devices())

    assert [d.id for d in devices] == ["ninjaone:1"]
    [delay] = harness.sleeps
    assert 0.25 <= delay <= 0.5  # first retry: base_delay with jitter


def test_5xx_outlasting_retries_raises_upstream_error(harness: Harness) -> None:
    server = FakeNinjaOne(devices=[device(1)])
    server.script("/v2/devices", *[httpx.Response(500, json={"errorMessage": "Internal error"})] * 3)

    with pytest.raises(UpstreamError) as raised:
        list(harness.adapter(server).devices())

    error = raised.value
    assert error.retryable is True
    assert error.status == 500
    assert "GET /v2/devices page 1 (after=none): HTTP 500 after 3 attempts: Internal error" in str(error)
    assert len(harness.sleeps) == 2


def test_timeout_is_retried(harness: Harness) -> None:
    server = FakeNinjaOne(organizations=[organization(1)])
    server.script("/v2/organizations", httpx.ReadTimeout("read timed out"))

    orgs = list(harness.adapter(server).organizations())

    assert [o.id for o in orgs] == ["ninjaone:1"]
    assert len(harness.sleeps) == 1


def test_timeouts_outlasting_retries_raise_retryable_upstream_error(harness: Harness) -> None:
    server = FakeNinjaOne()
    server.script("/v2/organizations", *[httpx.ConnectTimeout("connect timed out")] * 3)

    with pytest.raises(UpstreamError, match="timed out after 5s, 3 attempts") as raised:
        list(harness.adapter(server).organizations())

    assert raised.value.retryable is True


def test_other_4xx_fails_at_once_with_the_vendor_message(harness: Harness) -> None:
    server = FakeNinjaOne()
    server.script(
        "/v2/devices",
        httpx.Response(403, json={"resultCode": "FAILURE", "errorMessage": "Access denied: missing scope"}),
    )

    with pytest.raises(UpstreamError) as raised:
        list(harness.adapter(server).devices())

    assert raised.value.status == 403
    assert raised.value.retryable is False
    assert "HTTP 403: Access denied: missing scope" in str(raised.value)
    assert harness.sleeps == []


def test_error_without_a_body_is_described_by_its_status_phrase(harness: Harness) -> None:
    server = FakeNinjaOne()
    server.script("/v2/devices", httpx.Response(404))

    with pytest.raises(UpstreamError, match="HTTP 404: Not Found"):
        list(harness.adapter(server).devices())


# --- Configuration ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (None, "https://app.ninjarmm.com"),
        ("", "https://app.ninjarmm.com"),
        ("us", "https://app.ninjarmm.com"),
        ("eu", "https://eu.ninjarmm.com"),
        ("EU", "https://eu.ninjarmm.com"),
        ("ca", "https://ca.ninjarmm.com"),
        ("oc", "https://oc.ninjarmm.com"),
        ("us2", "https://us2.ninjarmm.com"),
        ("https://eu.ninjarmm.com/", "https://eu.ninjarmm.com"),
        ("http://localhost:8081", "http://localhost:8081"),
    ],
)
def test_base_url_resolves_regions_and_urls(value: str | None, expected: str) -> None:
    assert resolve_base_url(value) == expected


@pytest.mark.parametrize("value", ["mars", "eu.ninjarmm.com", "ftp://eu.ninjarmm.com", "https://"])
def test_unknown_base_url_is_invalid_input_naming_accepted_values(value: str) -> None:
    with pytest.raises(InvalidInput) as raised:
        resolve_base_url(value)

    assert "us, eu, ca, oc, us2" in str(raised.value)
    assert repr(value) in str(raised.value)


def test_region_host_is_used_for_token_and_api(harness: Harness) -> None:
    server = FakeNinjaOne(organizations=[organization(1)])

    list(harness.adapter(server, base_url="eu").organizations())

    assert {request.url.host for request in server.requests} == {"eu.ninjarmm.com"}
    assert REGIONS["eu"] == "https://eu.ninjarmm.com"


def test_page_size_below_one_is_invalid_input() -> None:
    with pytest.raises(InvalidInput, match="page size"):
        NinjaOneAdapter(RmmConnection(ClientCredentials(CLIENT_ID, SECRET)), page_size=0)


def test_create_adapter_returns_the_ninjaone_adapter() -> None:
    connection = RmmConnection(ClientCredentials(CLIENT_ID, SECRET), base_url="oc")

    adapter = create_adapter("ninjaone", connection)

    assert isinstance(adapter, NinjaOneAdapter)
    with adapter:
        assert adapter.source == "ninjaone"
        assert adapter.base_url == "https://oc.ninjarmm.com"
        assert adapter.requests_sent == 0
        assert SECRET not in repr(adapter)


# --- Serial numbers, when several RMMs are in use ---------------------------------------------------


def test_with_several_rmms_devices_come_from_the_detailed_list_with_their_serials(harness: Harness) -> None:
    detailed = [
        device(1, system={"serialNumber": " 5CG1234XYZ ", "biosSerialNumber": "OTHER"}),
        device(2, system={"serialNumber": "", "biosSerialNumber": "VMW-42"}),  # a VM: only the BIOS's
        device(3, system="not an object"),
        device(4),
    ]
    server = FakeNinjaOne(roles=[])
    server.lists["/v2/devices-detailed"] = detailed
    connection = RmmConnection(ClientCredentials(CLIENT_ID, SECRET), match_hostnames=frozenset({"pc-1"}))
    http = httpx.Client(transport=httpx.MockTransport(server))
    adapter = NinjaOneAdapter(connection, http=http, policy=FAST, sleep=harness.sleeps.append)

    serials = {d.id: d.serial for d in collect(adapter, datetime(2026, 12, 1, tzinfo=UTC)).devices}

    assert serials == {
        "ninjaone:1": "5CG1234XYZ",
        "ninjaone:2": "VMW-42",
        "ninjaone:3": None,
        "ninjaone:4": None,
    }
    assert server.api_requests("/v2/devices") == []  # the same pages, read once: no extra request


def test_with_one_rmm_the_plain_list_is_read_and_no_serial_is_asked_for(harness: Harness) -> None:
    server = FakeNinjaOne(devices=[device(1)])
    assert [
        d.serial for d in collect(harness.adapter(server), datetime(2026, 12, 1, tzinfo=UTC)).devices
    ] == [None]
    assert server.api_requests("/v2/devices-detailed") == []
