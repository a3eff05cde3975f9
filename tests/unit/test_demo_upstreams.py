"""The demo Pax8 and NinjaOne servers, exercised over real loopback HTTP with a tiny hand-made data set."""

from __future__ import annotations

import base64
import io
import json
import socket
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from infra.demo import __main__ as demo_main
from infra.demo.dataset import DemoDataset, build_dataset
from infra.demo.faults import Fault, FaultError
from infra.demo.servers import DemoUpstreams
from trueup.domain.models import Device
from trueup.vendors.credentials import ClientCredentials
from trueup.vendors.ninjaone import NinjaOneAdapter
from trueup.vendors.rmm import RmmConnection

PAX8_ID, PAX8_SECRET = "demo-pax8-client", "demo-pax8-secret"
NINJA_ID, NINJA_SECRET = "demo-ninjaone-client", "demo-ninjaone-secret"
C1 = "11111111-1111-4111-8111-111111111111"
C2 = "22222222-2222-4222-8222-222222222222"
C3 = "33333333-3333-4333-8333-333333333333"
P1 = "aaaaaaaa-0000-4000-8000-000000000001"
P2 = "aaaaaaaa-0000-4000-8000-000000000002"
PAX8_TOKEN_REQUEST = {
    "client_id": PAX8_ID,
    "client_secret": PAX8_SECRET,
    "audience": "https://api.pax8.com",
    "grant_type": "client_credentials",
}
NINJA_TOKEN_FORM = {
    "grant_type": "client_credentials",
    "client_id": NINJA_ID,
    "client_secret": NINJA_SECRET,
    "scope": "monitoring",
}


def company(cid: str, name: str, status: str = "Active", city: str = "Denver") -> dict[str, Any]:
    return {
        "id": cid,
        "name": name,
        "address": {
            "street": "1 Main St",
            "city": city,
            "postalCode": "80202",
            "country": "US",
            "stateOrProvince": "Colorado",
        },
        "status": status,
        "selfServiceAllowed": False,
        "billOnBehalfOfEnabled": True,
        "updatedDate": "2023-08-11T11:33:12.314-0600",
    }


def subscription(
    sid: str, company_id: str, product_id: str, quantity: Any, created: str, status: str = "Active"
) -> dict[str, Any]:
    return {
        "id": sid,
        "companyId": company_id,
        "productId": product_id,
        "quantity": quantity,
        "startDate": created + "T08:30:00Z",
        "createdDate": created,
        "billingStart": created,
        "status": status,
        "price": 4.5,
        "currencyCode": "USD",
        "billingTerm": "Monthly",
    }


def device(did: int, org: int) -> dict[str, Any]:
    return {
        "id": did,
        "organizationId": org,
        "nodeClass": "WINDOWS_WORKSTATION",
        "approvalStatus": "APPROVED",
        "offline": False,
        "displayName": f"PC-{did}",
        "lastContact": 1742412252.744,
    }


def tiny_dataset() -> DemoDataset:
    return DemoDataset(
        # Two companies share a name, so that sorting by name must break the tie by id.
        pax8_companies=[
            company(C1, "Zenith Media"),
            company(C2, "Acme Dental", "Inactive", city="Boulder"),
            company(C3, "Acme Dental"),
        ],
        pax8_products=[
            {"id": P1, "name": "Huntress Managed EDR", "vendorName": "Huntress", "sku": "HUN-EDR"},
            {"id": P2, "name": "Microsoft 365 Business Premium", "vendorName": "Microsoft", "sku": "MS-365"},
        ],
        pax8_subscriptions=[
            subscription("s-01", C1, P1, 10, "2021-03-04"),
            subscription("s-02", C1, P2, 12, "2021-01-02", status="Cancelled"),
            subscription("s-03", C2, P1, 3, "2021-02-03"),
            subscription("s-04", C3, P1, "ten", "2021-01-02"),  # malformed: served as is
            subscription("s-05", C3, P2, 7, "2021-05-06"),
        ],
        ninjaone_organizations=[{"id": 2, "name": "Zenith"}, {"id": 1, "name": "Acme"}],
        # Out of id order on purpose: NinjaOne pages by id, whatever the storage order.
        ninjaone_devices=[
            device(1005, 2),
            device(1001, 1),
            device(1003, 1),
            device(1002, 1),
            device(1004, 2),
            device(1007, 2),
            device(1006, 1),
        ],
        ninjaone_roles=[
            {"id": 1, "name": "WINDOWS_WORKSTATION", "nodeClass": "WINDOWS_WORKSTATION", "custom": False},
            {"id": 2, "name": "WINDOWS_SERVER", "nodeClass": "WINDOWS_SERVER", "custom": False},
            {"id": 3, "name": "Kiosk", "nodeClass": "WINDOWS_WORKSTATION", "custom": True},
            {"id": 4, "name": "MAC", "nodeClass": "MAC", "custom": False},
        ],
    )


class Sleeps:
    """Records the waits the servers ask for instead of waiting."""

    def __init__(self) -> None:
        self.calls: list[float] = []

    def __call__(self, seconds: float) -> None:
        self.calls.append(seconds)


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def sleeps() -> Sleeps:
    return Sleeps()


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def upstreams(sleeps: Sleeps, clock: Clock) -> Iterator[DemoUpstreams]:
    with DemoUpstreams(tiny_dataset(), sleep=sleeps, clock=clock, ninjaone_page_cap=3) as demo:
        yield demo


@pytest.fixture
def http() -> Iterator[httpx.Client]:
    with httpx.Client(timeout=10) as client:
        yield client


def pax8_token(demo: DemoUpstreams, http: httpx.Client) -> str:
    response = http.post(
        demo.pax8_token_url,
        json=PAX8_TOKEN_REQUEST,
    )
    assert response.status_code == 200, response.text
    token: str = response.json()["access_token"]
    return token


def ninja_token(demo: DemoUpstreams, http: httpx.Client) -> str:
    response = http.post(
        demo.ninjaone_token_url,
        data=NINJA_TOKEN_FORM,
    )
    assert response.status_code == 200, response.text
    token: str = response.json()["access_token"]
    return token


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture
def pax8(upstreams: DemoUpstreams, http: httpx.Client) -> Any:
    """GET a Pax8 list with a valid token: pax8("subscriptions", page=1)."""
    headers = bearer(pax8_token(upstreams, http))

    def get(resource: str, **params: Any) -> httpx.Response:
        return http.get(f"{upstreams.pax8_api_url}/{resource}", params=params, headers=headers)

    return get


@pytest.fixture
def ninja(upstreams: DemoUpstreams, http: httpx.Client) -> Any:
    """GET a NinjaOne list with a valid token: ninja("devices", after=1003)."""
    headers = bearer(ninja_token(upstreams, http))

    def get(resource: str, **params: Any) -> httpx.Response:
        return http.get(f"{upstreams.ninjaone_url}/v2/{resource}", params=params, headers=headers)

    return get


def ids(records: list[dict[str, Any]]) -> list[Any]:
    return [r["id"] for r in records]


# --- Tokens -------------------------------------------------------------------------------------


def test_pax8_token_is_issued_for_valid_credentials(upstreams: DemoUpstreams, http: httpx.Client) -> None:
    response = http.post(
        upstreams.pax8_token_url,
        json=PAX8_TOKEN_REQUEST,
    )
    assert response.status_code == 200
    body = response.json()
    assert set(body) == {"access_token", "expires_in", "token_type"}
    assert body["token_type"] == "Bearer"
    assert body["expires_in"] == 3600
    assert len(body["access_token"]) >= 32


def test_pax8_token_with_wrong_secret_is_401_access_denied(
    upstreams: DemoUpstreams, http: httpx.Client
) -> None:
    response = http.post(
        upstreams.pax8_token_url,
        json={**PAX8_TOKEN_REQUEST, "client_secret": "nope"},
    )
    assert response.status_code == 401
    assert response.json() == {"error": "access_denied", "error_description": "Unauthorized"}


@pytest.mark.parametrize(("field", "value"), [("grant_type", "password"), ("audience", "api://elsewhere")])
def test_pax8_token_with_bad_grant_type_or_audience_is_400(
    upstreams: DemoUpstreams, http: httpx.Client, field: str, value: str
) -> None:
    response = http.post(upstreams.pax8_token_url, json={**PAX8_TOKEN_REQUEST, field: value})
    assert response.status_code == 400
    assert response.json()["error"] == "access_denied"
    assert value in response.json()["error_description"]


def test_pax8_token_with_a_body_that_is_not_json_is_401(upstreams: DemoUpstreams, http: httpx.Client) -> None:
    response = http.post(
        upstreams.pax8_token_url,
        content=b"client_id=x",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert response.status_code == 401
    assert response.json()["error"] == "access_denied"
    assert "JSON object" in response.json()["error_description"]


def test_ninjaone_token_is_issued_for_form_encoded_credentials(
    upstreams: DemoUpstreams, http: httpx.Client
) -> None:
    response = http.post(
        upstreams.ninjaone_token_url,
        data={**NINJA_TOKEN_FORM, "scope": "monitoring management"},
    )
    assert response.status_code == 200
    body = response.json()
    assert set(body) == {"access_token", "expires_in", "scope", "token_type"}
    assert body["scope"] == "monitoring management"
    assert body["token_type"] == "Bearer"
    assert body["expires_in"] == 3600


def test_ninjaone_token_accepts_http_basic_client_authentication(
    upstreams: DemoUpstreams, http: httpx.Client
) -> None:
    basic = base64.b64encode(f"{NINJA_ID}:{NINJA_SECRET}".encode()).decode()
    response = http.post(
        upstreams.ninjaone_token_url,
        data={"grant_type": "client_credentials", "scope": "monitoring"},
        headers={"Authorization": f"Basic {basic}"},
    )
    assert response.status_code == 200


def test_ninjaone_token_with_wrong_secret_is_401_invalid_client(
    upstreams: DemoUpstreams, http: httpx.Client
) -> None:
    response = http.post(
        upstreams.ninjaone_token_url,
        data={**NINJA_TOKEN_FORM, "client_secret": "nope"},
    )
    assert response.status_code == 401
    assert response.json()["error"] == "invalid_client"
    assert response.json()["error_description"]


@pytest.mark.parametrize("scope", ["management", "", "monitoring superpowers"])
def test_ninjaone_token_needs_the_monitoring_scope(
    upstreams: DemoUpstreams, http: httpx.Client, scope: str
) -> None:
    response = http.post(
        upstreams.ninjaone_token_url,
        data={**NINJA_TOKEN_FORM, "scope": scope},
    )
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_scope"


def test_ninjaone_token_rejects_a_json_body(upstreams: DemoUpstreams, http: httpx.Client) -> None:
    response = http.post(
        upstreams.ninjaone_token_url,
        json={"grant_type": "client_credentials", "client_id": NINJA_ID, "client_secret": NINJA_SECRET},
    )
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_request"


def test_ninjaone_token_with_another_grant_type_is_unsupported(
    upstreams: DemoUpstreams, http: httpx.Client
) -> None:
    response = http.post(
        upstreams.ninjaone_token_url,
        data={**NINJA_TOKEN_FORM, "grant_type": "password"},
    )
    assert response.status_code == 400
    assert response.json()["error"] == "unsupported_grant_type"


def test_secrets_stay_out_of_reprs_and_error_bodies(upstreams: DemoUpstreams, http: httpx.Client) -> None:
    wrong = http.post(
        upstreams.pax8_token_url,
        json={**PAX8_TOKEN_REQUEST, "client_secret": "typo-" + PAX8_SECRET},
    )
    token = pax8_token(upstreams, http)
    assert PAX8_SECRET not in wrong.text
    assert PAX8_SECRET not in repr(upstreams)
    assert NINJA_SECRET not in repr(upstreams)
    assert token not in repr(upstreams)
    assert token not in json.dumps(upstreams.stats())


# --- 401 without a valid token -------------------------------------------------------------------

PAX8_LISTS = ["companies", "products", "subscriptions"]
NINJA_LISTS = ["organizations", "devices"]


@pytest.mark.parametrize("resource", PAX8_LISTS)
@pytest.mark.parametrize(
    "headers", [{}, {"Authorization": "Bearer not-a-token"}, {"Authorization": "Basic eA=="}]
)
def test_pax8_lists_answer_401_without_a_valid_token(
    upstreams: DemoUpstreams, http: httpx.Client, resource: str, headers: dict[str, str]
) -> None:
    response = http.get(f"{upstreams.pax8_api_url}/{resource}", headers=headers)
    assert response.status_code == 401
    body = response.json()
    assert body["type"] == "UNAUTHORIZED"
    assert body["status"] == 401
    assert body["instance"] == f"/v1/{resource}"
    assert body["details"] == []
    assert body["message"]


@pytest.mark.parametrize("resource", NINJA_LISTS)
@pytest.mark.parametrize("headers", [{}, {"Authorization": "Bearer not-a-token"}])
def test_ninjaone_lists_answer_bare_401_without_a_valid_token(
    upstreams: DemoUpstreams, http: httpx.Client, resource: str, headers: dict[str, str]
) -> None:
    response = http.get(f"{upstreams.ninjaone_url}/v2/{resource}", headers=headers)
    assert response.status_code == 401
    assert response.content == b""  # the vendor spec declares no error body
    assert response.headers["WWW-Authenticate"] == "Bearer"


def test_a_token_from_one_vendor_does_not_open_the_other(
    upstreams: DemoUpstreams, http: httpx.Client
) -> None:
    response = http.get(f"{upstreams.ninjaone_url}/v2/devices", headers=bearer(pax8_token(upstreams, http)))
    assert response.status_code == 401


def test_an_expired_token_is_401(upstreams: DemoUpstreams, http: httpx.Client, clock: Clock) -> None:
    headers = bearer(pax8_token(upstreams, http))
    assert http.get(f"{upstreams.pax8_api_url}/companies", headers=headers).status_code == 200
    clock.now += 3600
    assert http.get(f"{upstreams.pax8_api_url}/companies", headers=headers).status_code == 401


def test_token_ttl_sets_expires_in_and_the_lifetime(sleeps: Sleeps, clock: Clock, http: httpx.Client) -> None:
    with DemoUpstreams(tiny_dataset(), token_ttl=60, sleep=sleeps, clock=clock) as demo:
        response = http.post(
            demo.ninjaone_token_url,
            data=NINJA_TOKEN_FORM,
        )
        assert response.json()["expires_in"] == 60
        headers = bearer(response.json()["access_token"])
        clock.now += 59
        assert http.get(f"{demo.ninjaone_url}/v2/devices", headers=headers).status_code == 200
        clock.now += 1
        assert http.get(f"{demo.ninjaone_url}/v2/devices", headers=headers).status_code == 401


def test_revoke_tokens_makes_the_next_call_401_until_a_new_token(
    upstreams: DemoUpstreams, http: httpx.Client
) -> None:
    pax8_headers = bearer(pax8_token(upstreams, http))
    ninja_headers = bearer(ninja_token(upstreams, http))
    assert upstreams.revoke_tokens() == 2
    assert http.get(f"{upstreams.pax8_api_url}/companies", headers=pax8_headers).status_code == 401
    assert http.get(f"{upstreams.ninjaone_url}/v2/devices", headers=ninja_headers).status_code == 401
    fresh = bearer(pax8_token(upstreams, http))
    assert http.get(f"{upstreams.pax8_api_url}/companies", headers=fresh).status_code == 200


# --- Pax8 paging ---------------------------------------------------------------------------------


def test_pax8_page_envelope_counts_elements_and_pages(pax8: Any) -> None:
    response = pax8("subscriptions", page=1, size=2)
    assert response.status_code == 200
    body = response.json()
    assert list(body) == ["content", "page"]
    assert ids(body["content"]) == ["s-03", "s-04"]
    assert body["page"] == {"size": 2, "totalElements": 5, "totalPages": 3, "number": 1}


def test_pax8_default_page_size_is_10_and_pages_are_0_based(pax8: Any) -> None:
    body = pax8("subscriptions").json()
    assert body["page"] == {"size": 10, "totalElements": 5, "totalPages": 1, "number": 0}
    assert ids(body["content"]) == ["s-01", "s-02", "s-03", "s-04", "s-05"]


def test_pax8_last_page_is_short_and_a_page_past_the_end_is_empty(pax8: Any) -> None:
    last = pax8("subscriptions", page=2, size=2).json()
    assert ids(last["content"]) == ["s-05"]
    past = pax8("subscriptions", page=3, size=2).json()
    assert past["content"] == []
    assert past["page"] == {"size": 2, "totalElements": 5, "totalPages": 3, "number": 3}


def test_pax8_records_are_served_exactly_as_in_the_dataset(upstreams: DemoUpstreams, pax8: Any) -> None:
    served = pax8("subscriptions", size=10).json()["content"]
    assert served == upstreams.dataset.pax8_subscriptions
    assert served[3]["quantity"] == "ten"


def test_pax8_page_size_is_capped_at_200(http: httpx.Client, sleeps: Sleeps) -> None:
    dataset = DemoDataset(
        pax8_subscriptions=[subscription(f"s-{i:04d}", C1, P1, i, "2021-01-01") for i in range(450)]
    )
    with DemoUpstreams(dataset, sleep=sleeps) as demo:
        headers = bearer(pax8_token(demo, http))
        body = http.get(
            f"{demo.pax8_api_url}/subscriptions", params={"size": 1000, "page": 2}, headers=headers
        ).json()
    assert body["page"] == {"size": 200, "totalElements": 450, "totalPages": 3, "number": 2}
    assert ids(body["content"]) == [f"s-{i:04d}" for i in range(400, 450)]


def test_paging_through_pax8_returns_every_record_once(http: httpx.Client, sleeps: Sleeps) -> None:
    dataset = DemoDataset(pax8_companies=[company(f"c-{i:03d}", f"Client {i % 7}") for i in range(53)])
    with DemoUpstreams(dataset, sleep=sleeps) as demo:
        headers = bearer(pax8_token(demo, http))
        seen: list[str] = []
        page = 0
        while True:
            body = http.get(
                f"{demo.pax8_api_url}/companies",
                params={"page": page, "size": 10, "sort": "name"},
                headers=headers,
            ).json()
            seen += ids(body["content"])
            page += 1
            if page >= body["page"]["totalPages"]:
                break
    assert page == 6
    assert sorted(seen) == sorted(ids(dataset.pax8_companies))
    assert len(set(seen)) == 53


def test_pax8_sort_by_name_breaks_ties_by_id_in_both_directions(pax8: Any) -> None:
    ascending = pax8("companies", sort="name").json()["content"]
    assert ids(ascending) == [C2, C3, C1]
    descending = pax8("companies", sort="name,desc").json()["content"]
    assert ids(descending) == [C1, C2, C3]


def test_pax8_sort_by_date_with_direction(pax8: Any) -> None:
    ascending = ids(pax8("subscriptions", sort="createdDate,asc").json()["content"])
    assert ascending == ["s-02", "s-04", "s-03", "s-01", "s-05"]
    descending = ids(pax8("subscriptions", sort="createdDate,desc").json()["content"])
    assert descending == ["s-05", "s-01", "s-03", "s-02", "s-04"]


def test_pax8_sort_by_quantity_survives_a_malformed_quantity(pax8: Any) -> None:
    response = pax8("subscriptions", sort="quantity")
    assert response.status_code == 200
    assert ids(response.json()["content"]) == ["s-03", "s-05", "s-01", "s-02", "s-04"]


def test_pax8_sort_by_an_unknown_field_is_400_naming_the_field(pax8: Any) -> None:
    response = pax8("companies", sort="shoeSize,asc")
    assert response.status_code == 400
    body = response.json()
    assert body["type"] == "BAD_REQUEST"
    assert "shoeSize" in body["message"]
    assert "name" in body["message"]


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({"companyId": C1}, ["s-01", "s-02"]),
        ({"productId": P2}, ["s-02", "s-05"]),
        ({"status": "Cancelled"}, ["s-02"]),
        ({"companyId": C3, "productId": P2}, ["s-05"]),
        ({"companyId": "no-such-company"}, []),
    ],
)
def test_pax8_subscription_filters(pax8: Any, params: dict[str, str], expected: list[str]) -> None:
    body = pax8("subscriptions", **params).json()
    assert ids(body["content"]) == expected
    assert body["page"]["totalElements"] == len(expected)


def test_pax8_product_and_company_filters(pax8: Any) -> None:
    assert ids(pax8("products", vendorName="Microsoft").json()["content"]) == [P2]
    assert ids(pax8("companies", status="Inactive").json()["content"]) == [C2]
    assert ids(pax8("companies", city="Boulder").json()["content"]) == [C2]
    assert ids(pax8("companies", billOnBehalfOfEnabled="true").json()["content"]) == [C1, C2, C3]


@pytest.mark.parametrize("params", [{"page": "x"}, {"page": "-1"}, {"size": "0"}, {"size": "many"}])
def test_pax8_bad_paging_parameters_are_400(pax8: Any, params: dict[str, str]) -> None:
    response = pax8("subscriptions", **params)
    assert response.status_code == 400
    assert response.json()["type"] == "BAD_REQUEST"
    assert next(iter(params)) in response.json()["message"]


def test_pax8_unknown_endpoint_is_404_and_wrong_method_405(
    upstreams: DemoUpstreams, http: httpx.Client
) -> None:
    headers = bearer(pax8_token(upstreams, http))
    missing = http.get(f"{upstreams.pax8_api_url}/invoices", headers=headers)
    assert missing.status_code == 404
    assert missing.json()["type"] == "NOT_FOUND"
    wrong = http.post(f"{upstreams.pax8_api_url}/companies", headers=headers, json={})
    assert wrong.status_code == 405
    assert wrong.headers["Allow"] == "GET"


def test_pax8_notices_records_appended_between_pages(upstreams: DemoUpstreams, pax8: Any) -> None:
    assert pax8("subscriptions", size=2).json()["page"]["totalElements"] == 5
    upstreams.dataset.pax8_subscriptions.append(subscription("s-06", C1, P1, 1, "2022-01-01"))
    body = pax8("subscriptions", page=2, size=2).json()
    assert ids(body["content"]) == ["s-05", "s-06"]
    assert body["page"]["totalElements"] == 6


# --- NinjaOne paging -----------------------------------------------------------------------------


def test_ninjaone_lists_are_bare_arrays_sorted_by_id(ninja: Any) -> None:
    organizations = ninja("organizations").json()
    assert organizations == [{"id": 1, "name": "Acme"}, {"id": 2, "name": "Zenith"}]
    assert ids(ninja("devices", pageSize=2).json()) == [1001, 1002]


def test_ninjaone_after_returns_records_with_a_greater_id(ninja: Any) -> None:
    assert ids(ninja("devices", pageSize=2, after=1002).json()) == [1003, 1004]
    assert ids(ninja("devices", pageSize=2, after=1003).json()) == [1004, 1005]


def test_ninjaone_pages_are_capped_but_not_the_end(ninja: Any) -> None:
    # The cap is 3 in these tests: asking for 10 gets short pages until an empty one.
    pages = []
    after: int | None = None
    while True:
        params: dict[str, int] = {"pageSize": 10} if after is None else {"pageSize": 10, "after": after}
        page = ninja("devices", **params).json()
        pages.append(ids(page))
        if not page:
            break
        after = page[-1]["id"]
    assert pages == [[1001, 1002, 1003], [1004, 1005, 1006], [1007], []]


def test_ninjaone_without_page_size_serves_up_to_the_cap(ninja: Any) -> None:
    assert ids(ninja("devices").json()) == [1001, 1002, 1003]


def test_ninjaone_after_the_last_id_is_an_empty_array(ninja: Any) -> None:
    response = ninja("devices", after=1007)
    assert response.status_code == 200
    assert response.content == b"[]"


@pytest.mark.parametrize(
    "params", [{"pageSize": "0"}, {"pageSize": "lots"}, {"after": "x"}, {"df": "org = 1"}]
)
def test_ninjaone_bad_parameters_are_400(ninja: Any, params: dict[str, str]) -> None:
    assert ninja("devices", **params).status_code == 400


def test_ninjaone_roles_are_one_bare_array_whatever_the_paging_parameters(
    upstreams: DemoUpstreams, ninja: Any
) -> None:
    assert ninja("roles").json() == upstreams.dataset.ninjaone_roles
    assert ids(ninja("roles", pageSize=1, after=3).json()) == [1, 2, 3, 4]


def test_demo_devices_carry_roles_and_tags_the_adapter_reads(sleeps: Sleeps) -> None:
    dataset = build_dataset()
    with DemoUpstreams(dataset, sleep=sleeps) as demo:
        connection = RmmConnection(ClientCredentials(NINJA_ID, NINJA_SECRET), demo.ninjaone_url)
        with NinjaOneAdapter(connection, sleep=sleeps) as adapter:
            devices = [d for d in adapter.devices() if isinstance(d, Device)]

    assert len(devices) == len(dataset.ninjaone_devices) - 1  # the story's one malformed device
    roles = {role["id"] for role in dataset.ninjaone_roles}
    assert all(record["nodeRoleId"] in roles for record in dataset.ninjaone_devices if "nodeRoleId" in record)
    assert all(d.role for d in devices)
    assert {d.role for d in devices} >= {"WINDOWS_WORKSTATION", "WINDOWS_SERVER", "MAC", "Domain Controller"}
    lab = [d for d in devices if d.name.startswith("IIL-")]
    assert lab and all(d.tags == ["lab"] for d in lab)
    assert sum("not-billable" in d.tags for d in devices) == 2


def test_ninjaone_notices_records_added_under_the_paging(upstreams: DemoUpstreams, ninja: Any) -> None:
    assert ids(ninja("devices", pageSize=3).json()) == [1001, 1002, 1003]
    upstreams.dataset.ninjaone_devices.append(device(1000, 1))  # lands before the pages already read
    upstreams.dataset.ninjaone_devices.append(device(1008, 2))
    assert ids(ninja("devices", pageSize=3, after=1006).json()) == [1007, 1008]
    assert ids(ninja("devices", pageSize=3).json()) == [1000, 1001, 1002]


def test_dataset_changed_resorts_records_replaced_in_place(upstreams: DemoUpstreams, ninja: Any) -> None:
    assert ids(ninja("devices", pageSize=1).json()) == [1001]
    devices = upstreams.dataset.ninjaone_devices
    devices[devices.index(device(1001, 1))] = device(1009, 1)
    upstreams.dataset_changed()
    assert ids(ninja("devices", pageSize=1).json()) == [1002]
    assert ids(ninja("devices", after=1007).json()) == [1009]


# --- Faults ----------------------------------------------------------------------------------------


def test_500_on_a_given_pax8_page_once(upstreams: DemoUpstreams, pax8: Any) -> None:
    upstreams.faults.add(Fault("pax8", "/v1/subscriptions", page=1, status=500, times=1))
    assert pax8("subscriptions", page=0, size=2).status_code == 200
    failed = pax8("subscriptions", page=1, size=2)
    assert failed.status_code == 500
    assert failed.json()["type"] == "INTERNAL_SERVER_ERROR"
    assert failed.json()["instance"] == "/v1/subscriptions"
    assert ids(pax8("subscriptions", page=1, size=2).json()["content"]) == ["s-03", "s-04"]


def test_429_carries_retry_after_for_the_given_number_of_times(upstreams: DemoUpstreams, pax8: Any) -> None:
    upstreams.faults.add(Fault("pax8", "/v1/companies", status=429, retry_after=3, times=2))
    statuses = []
    for _ in range(3):
        response = pax8("companies")
        statuses.append(response.status_code)
        if response.status_code == 429:
            assert response.headers["Retry-After"] == "3"
            assert response.json()["type"] == "TOO_MANY_REQUESTS"
    assert statuses == [429, 429, 200]


def test_a_fault_without_times_lasts_until_cleared(upstreams: DemoUpstreams, ninja: Any) -> None:
    upstreams.faults.add(Fault("ninjaone", "/v2/devices", status=503))
    assert [ninja("devices").status_code for _ in range(4)] == [503] * 4
    assert ninja("organizations").status_code == 200
    upstreams.faults.clear()
    assert ninja("devices").status_code == 200


def test_ninjaone_fault_matches_the_after_value(upstreams: DemoUpstreams, ninja: Any) -> None:
    upstreams.faults.add(Fault("ninjaone", "/v2/devices", after=1003, status=500, times=1))
    assert ninja("devices", pageSize=3).status_code == 200
    failed = ninja("devices", pageSize=3, after=1003)
    assert failed.status_code == 500
    assert failed.content == b""
    assert ids(ninja("devices", pageSize=3, after=1003).json()) == [1004, 1005, 1006]


def test_ninjaone_fault_on_after_0_hits_the_first_page(upstreams: DemoUpstreams, ninja: Any) -> None:
    upstreams.faults.add(Fault("ninjaone", "/v2/devices", after=0, status=429, retry_after=1, times=1))
    response = ninja("devices", pageSize=3)
    assert response.status_code == 429
    assert response.headers["Retry-After"] == "1"


def test_a_fault_body_replaces_the_error_body(upstreams: DemoUpstreams, pax8: Any) -> None:
    upstreams.faults.add(Fault("pax8", "/v1/products", status=502, body="<html>Bad gateway</html>", times=1))
    response = pax8("products")
    assert response.status_code == 502
    assert response.text == "<html>Bad gateway</html>"


def test_a_token_request_can_fail_too(upstreams: DemoUpstreams, http: httpx.Client) -> None:
    upstreams.faults.add(Fault("ninjaone", "/ws/oauth/token", status=500, times=1))
    failed = http.post(upstreams.ninjaone_token_url, data=NINJA_TOKEN_FORM)
    assert failed.status_code == 500
    assert failed.json()["error"] == "internal_server_error"
    assert http.post(upstreams.ninjaone_token_url, data=NINJA_TOKEN_FORM).status_code == 200


def test_requests_without_a_token_do_not_use_up_a_fault(
    upstreams: DemoUpstreams, http: httpx.Client, pax8: Any
) -> None:
    upstreams.faults.add(Fault("pax8", "/v1/companies", status=500, times=1))
    assert http.get(f"{upstreams.pax8_api_url}/companies").status_code == 401
    assert pax8("companies").status_code == 500


def test_delay_waits_before_a_normal_answer(upstreams: DemoUpstreams, pax8: Any, sleeps: Sleeps) -> None:
    upstreams.faults.add(Fault("pax8", "/v1/companies", delay=7.5, times=1))
    response = pax8("companies")
    assert response.status_code == 200
    assert len(response.json()["content"]) == 3
    assert sleeps.calls == [7.5]


def test_delay_makes_a_client_time_out() -> None:
    # The real (default) sleep: the client gives up after 50 ms; stop() cuts the server's wait short.
    with DemoUpstreams(tiny_dataset()) as demo, httpx.Client(timeout=10) as client:
        demo.faults.add(Fault("ninjaone", "/v2/devices", delay=60, times=1))
        headers = bearer(ninja_token(demo, client))
        with pytest.raises(httpx.ReadTimeout):
            client.get(f"{demo.ninjaone_url}/v2/devices", headers=headers, timeout=0.05)
        assert client.get(f"{demo.ninjaone_url}/v2/devices", headers=headers).status_code == 200


def test_malformed_answers_200_with_a_body_that_is_not_json(
    upstreams: DemoUpstreams, pax8: Any, ninja: Any
) -> None:
    upstreams.faults.add(Fault("pax8", "/v1/subscriptions", page=1, malformed=True, times=1))
    upstreams.faults.add(Fault("ninjaone", "/v2/devices", malformed=True, times=1))
    broken = pax8("subscriptions", page=1, size=2)
    assert broken.status_code == 200
    with pytest.raises(json.JSONDecodeError):
        json.loads(broken.content)
    with pytest.raises(json.JSONDecodeError):
        json.loads(ninja("devices").content)
    assert pax8("subscriptions", page=1, size=2).json()["page"]["number"] == 1


def test_malformed_with_a_body_answers_json_that_is_not_the_envelope(
    upstreams: DemoUpstreams, pax8: Any
) -> None:
    upstreams.faults.add(Fault("pax8", "/v1/companies", malformed=True, body={"items": []}, times=1))
    response = pax8("companies")
    assert response.status_code == 200
    assert response.json() == {"items": []}


def test_shift_makes_the_next_page_repeat_an_item(upstreams: DemoUpstreams, pax8: Any) -> None:
    upstreams.faults.add(Fault("pax8", "/v1/subscriptions", page=0, shift=True, times=1))
    first = ids(pax8("subscriptions", page=0, size=2).json()["content"])
    second = pax8("subscriptions", page=1, size=2).json()
    assert first == ["s-01", "s-02"]
    assert ids(second["content"]) == ["s-02", "s-03"]
    assert second["page"]["totalElements"] == 6
    inserted = upstreams.dataset.pax8_subscriptions[0]
    assert inserted["id"] not in {"s-01", "s-02", "s-03", "s-04", "s-05"}
    assert {k: v for k, v in inserted.items() if k != "id"} == {
        k: v for k, v in upstreams.dataset.pax8_subscriptions[1].items() if k != "id"
    }


def test_shift_also_moves_a_sorted_and_filtered_list(upstreams: DemoUpstreams, pax8: Any) -> None:
    upstreams.faults.add(Fault("pax8", "/v1/companies", page=0, shift=True, times=1))
    first = ids(pax8("companies", page=0, size=1, sort="name", status="Active").json()["content"])
    second = ids(pax8("companies", page=1, size=1, sort="name", status="Active").json()["content"])
    assert first == [C3]
    assert second == [C3]


def test_shift_inserts_the_record_given_as_body(upstreams: DemoUpstreams, pax8: Any) -> None:
    new = subscription("s-00", C2, P2, 2, "2020-01-01")
    upstreams.faults.add(Fault("pax8", "/v1/subscriptions", shift=True, body=new, times=1))
    pax8("subscriptions", size=2)
    assert ids(pax8("subscriptions", size=2).json()["content"]) == ["s-00", "s-01"]


@pytest.mark.parametrize(
    ("kwargs", "problem"),
    [
        ({"server": "ninjaone", "path": "/v2/devices", "shift": True}, "shift applies to pax8"),
        ({"server": "pax8", "path": "/v1/companies"}, "needs an action"),
        ({"server": "ninjaone", "path": "/v2/devices", "page": 1, "status": 500}, "page applies to pax8"),
        ({"server": "pax8", "path": "/v1/companies", "status": 200}, "400-599"),
        ({"server": "pax8", "path": "/v1/companies", "status": 500, "times": 0}, "times"),
        (
            {"server": "pax8", "path": "/v1/companies", "retry_after": 5, "delay": 1},
            "retry_after needs a status",
        ),
        ({"server": "pax8", "path": "/v1/companies", "malformed": True, "status": 500}, "not both"),
        ({"server": "fax8", "path": "/v1/companies", "status": 500}, "server must be one of"),
        ({"server": "pax8", "path": "v1/companies", "status": 500}, "start with '/'"),
    ],
)
def test_impossible_faults_are_rejected_with_the_reason(kwargs: dict[str, Any], problem: str) -> None:
    with pytest.raises(FaultError, match=problem):
        Fault(**kwargs)


# --- HTTP control endpoints ------------------------------------------------------------------------


def test_fault_posted_over_http_defaults_to_the_receiving_server(
    upstreams: DemoUpstreams, http: httpx.Client, ninja: Any
) -> None:
    created = http.post(
        f"{upstreams.ninjaone_url}/_demo/faults",
        json={"path": "/v2/devices", "status": 429, "retry_after": 2, "times": 1},
    )
    assert created.status_code == 201
    assert created.json()["server"] == "ninjaone"
    listed = http.get(f"{upstreams.pax8_url}/_demo/faults").json()["faults"]
    assert listed == [
        {
            "id": created.json()["id"],
            "remaining": 1,
            "server": "ninjaone",
            "path": "/v2/devices",
            "status": 429,
            "retry_after": 2,
            "times": 1,
        }
    ]
    response = ninja("devices")
    assert response.status_code == 429
    assert response.headers["Retry-After"] == "2"
    assert http.get(f"{upstreams.pax8_url}/_demo/faults").json() == {"faults": []}


def test_a_fault_posted_to_one_server_can_target_the_other(
    upstreams: DemoUpstreams, http: httpx.Client, pax8: Any
) -> None:
    http.post(
        f"{upstreams.ninjaone_url}/_demo/faults",
        json={"server": "pax8", "path": "/v1/subscriptions", "page": 0, "status": 500},
    )
    assert pax8("subscriptions").status_code == 500


@pytest.mark.parametrize(
    ("body", "problem"),
    [
        ({"path": "/v2/devices"}, "needs an action"),
        ({"path": "/v2/devices", "status": 500, "colour": "red"}, "unknown fault field"),
        ({"status": 500}, "needs a path"),
        ([1, 2], "JSON object"),
    ],
)
def test_a_bad_fault_over_http_is_400_with_the_reason(
    upstreams: DemoUpstreams, http: httpx.Client, body: Any, problem: str
) -> None:
    response = http.post(f"{upstreams.ninjaone_url}/_demo/faults", json=body)
    assert response.status_code == 400
    assert problem in response.json()["error"]


def test_fault_body_that_is_not_json_is_400(upstreams: DemoUpstreams, http: httpx.Client) -> None:
    response = http.post(f"{upstreams.pax8_url}/_demo/faults", content=b"{status: 500")
    assert response.status_code == 400
    assert "not valid JSON" in response.json()["error"]


def test_delete_faults_over_http(upstreams: DemoUpstreams, http: httpx.Client, pax8: Any) -> None:
    upstreams.faults.add(Fault("pax8", "/v1/companies", status=500))
    upstreams.faults.add(Fault("ninjaone", "/v2/devices", status=500))
    assert http.delete(f"{upstreams.pax8_url}/_demo/faults", params={"server": "ninjaone"}).json() == {
        "removed": 1
    }
    assert pax8("companies").status_code == 500
    assert http.delete(f"{upstreams.pax8_url}/_demo/faults").json() == {"removed": 1}
    assert pax8("companies").status_code == 200


def test_stats_over_http_cover_both_servers(
    upstreams: DemoUpstreams, http: httpx.Client, pax8: Any, ninja: Any
) -> None:
    pax8("companies")
    ninja("devices")
    stats = http.get(f"{upstreams.ninjaone_url}/_demo/stats").json()
    assert stats == upstreams.stats()
    assert stats["pax8"]["by_path"] == {"GET /v1/companies": 1, "POST /v1/token": 1}
    assert stats["ninjaone"]["by_path"] == {"GET /v2/devices": 1, "POST /ws/oauth/token": 1}


def test_reset_over_http_clears_faults_and_stats(
    upstreams: DemoUpstreams, http: httpx.Client, pax8: Any
) -> None:
    upstreams.faults.add(Fault("pax8", "/v1/companies", status=500))
    pax8("companies")
    response = http.post(f"{upstreams.pax8_url}/_demo/reset")
    assert response.json() == {"faults_removed": 1, "stats_reset": ["pax8", "ninjaone", "datto"]}
    assert upstreams.stats()["pax8"] == {"requests": 0, "by_path": {}, "by_status": {}}
    assert pax8("companies").status_code == 200


def test_reset_over_http_can_be_narrowed_to_one_server(
    upstreams: DemoUpstreams, http: httpx.Client, pax8: Any, ninja: Any
) -> None:
    pax8("companies")
    ninja("devices")
    http.post(f"{upstreams.pax8_url}/_demo/reset", params={"server": "ninjaone"})
    assert upstreams.stats()["ninjaone"]["requests"] == 0
    assert upstreams.stats()["pax8"]["requests"] == 2


def test_revoke_tokens_over_http(upstreams: DemoUpstreams, http: httpx.Client) -> None:
    headers = bearer(pax8_token(upstreams, http))
    revoked = http.post(f"{upstreams.ninjaone_url}/_demo/revoke-tokens")
    assert revoked.json() == {"revoked": 1}
    assert http.get(f"{upstreams.pax8_api_url}/companies", headers=headers).status_code == 401


def test_unknown_control_endpoint_is_404_listing_the_known_ones(
    upstreams: DemoUpstreams, http: httpx.Client
) -> None:
    response = http.post(f"{upstreams.pax8_url}/_demo/explode")
    assert response.status_code == 404
    assert "/_demo/faults" in response.json()["error"]
    bad_scope = http.post(f"{upstreams.pax8_url}/_demo/reset", params={"server": "atera"})
    assert bad_scope.status_code == 400


# --- Stats, latency, keep-alive --------------------------------------------------------------------


def test_stats_count_requests_by_path_and_status(
    upstreams: DemoUpstreams, http: httpx.Client, pax8: Any
) -> None:
    upstreams.faults.add(Fault("pax8", "/v1/subscriptions", page=1, status=429, times=1))
    pax8("subscriptions", page=0, size=2)
    pax8("subscriptions", page=1, size=2)
    pax8("subscriptions", page=1, size=2)
    http.get(f"{upstreams.pax8_api_url}/companies")
    http.get(f"{upstreams.pax8_url}/_demo/stats")  # control requests are not counted
    assert upstreams.stats()["pax8"] == {
        "requests": 5,
        "by_path": {"GET /v1/companies": 1, "GET /v1/subscriptions": 3, "POST /v1/token": 1},
        "by_status": {"200": 3, "401": 1, "429": 1},
    }
    assert upstreams.stats()["ninjaone"]["requests"] == 0


def test_reset_stats_starts_counting_again(upstreams: DemoUpstreams, pax8: Any, ninja: Any) -> None:
    pax8("companies")
    ninja("devices")
    upstreams.reset_stats("pax8")
    assert upstreams.stats()["pax8"]["requests"] == 0
    assert upstreams.stats()["ninjaone"]["requests"] == 2
    upstreams.reset_stats()
    assert upstreams.stats()["ninjaone"]["requests"] == 0


def test_latency_is_added_to_every_api_response_but_not_to_control(
    sleeps: Sleeps, http: httpx.Client
) -> None:
    with DemoUpstreams(tiny_dataset(), latency=0.1, sleep=sleeps) as demo:
        headers = bearer(pax8_token(demo, http))
        http.get(f"{demo.pax8_api_url}/companies", headers=headers)
        http.get(f"{demo.ninjaone_url}/v2/devices")
        http.get(f"{demo.pax8_url}/_demo/stats")
        assert sleeps.calls == [0.1, 0.1, 0.1]
        demo.latency = 0.0
        http.get(f"{demo.pax8_api_url}/companies", headers=headers)
        assert sleeps.calls == [0.1, 0.1, 0.1]


def test_a_keep_alive_client_makes_many_requests_quickly(
    upstreams: DemoUpstreams, http: httpx.Client, ninja: Any
) -> None:
    # A sanity bound, not a benchmark: with Nagle's algorithm on, 50 requests would take about 2 s.
    started = time.perf_counter()
    for _ in range(50):
        assert ninja("devices", pageSize=2).status_code == 200
    assert time.perf_counter() - started < 1.0


# --- Life cycle and the command line ----------------------------------------------------------------


def test_urls_need_a_running_server() -> None:
    demo = DemoUpstreams(tiny_dataset())
    with pytest.raises(RuntimeError, match="not running"):
        _ = demo.pax8_url
    with demo:
        assert demo.pax8_api_url == demo.pax8_url + "/v1"
        assert demo.pax8_token_url == demo.pax8_url + "/v1/token"
        assert demo.ninjaone_url.startswith("http://127.0.0.1:")
    with pytest.raises(RuntimeError, match="not running"):
        _ = demo.ninjaone_url


def test_a_port_in_use_is_reported_by_server_and_port() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        demo = DemoUpstreams(tiny_dataset(), ninjaone_port=port)
        with pytest.raises(RuntimeError, match=f"ninjaone demo server cannot listen on 127.0.0.1:{port}"):
            demo.start()
        with pytest.raises(RuntimeError, match="not running"):
            _ = demo.pax8_url  # the Pax8 server that did start was stopped again


@pytest.mark.parametrize(
    "kwargs", [{"token_ttl": 0}, {"latency": -1}, {"ninjaone_page_cap": 0}, {"pax8_max_page_size": 0}]
)
def test_impossible_options_are_rejected(kwargs: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match=next(iter(kwargs))):
        DemoUpstreams(tiny_dataset(), **kwargs)


def test_main_serves_the_built_dataset_and_prints_urls_and_credentials(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    built: list[tuple[int, int]] = []

    def fake_build(clients: int, devices_per_client: int) -> DemoDataset:
        built.append((clients, devices_per_client))
        return tiny_dataset()

    monkeypatch.setattr("infra.demo.dataset.build_dataset", fake_build)
    out = io.StringIO()
    served: list[int] = []

    def wait() -> None:
        # Runs while the servers are up: fetch devices with the printed credentials.
        text = out.getvalue()
        token_url = next(w for w in text.split() if w.endswith("/ws/oauth/token"))
        with httpx.Client() as client:
            token = client.post(
                token_url,
                data=NINJA_TOKEN_FORM,
            )
            api = token_url.removesuffix("/ws/oauth/token")
            devices = client.get(f"{api}/v2/devices", headers=bearer(token.json()["access_token"]))
            served.append(len(devices.json()))

    code = demo_main.main(
        ["--clients", "3", "--devices-per-client", "5", "--pax8-port", "0", "--ninjaone-port", "0"],
        wait=wait,
        out=out,
    )
    assert code == 0
    assert built == [(3, 5)]
    assert served == [7]
    text = out.getvalue()
    assert "/v1/token" in text
    assert f"client_id={PAX8_ID} client_secret={PAX8_SECRET}" in text
    assert f"client_id={NINJA_ID} client_secret={NINJA_SECRET}" in text
