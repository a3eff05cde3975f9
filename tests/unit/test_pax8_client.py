"""The Pax8 client against an in-memory Pax8 (httpx.MockTransport); nothing reaches the network."""

from __future__ import annotations

import json
import logging
import re
import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

import httpx
import pytest

from trueup.domain.models import Company, Pax8Data, Product, SkippedRecord, Subscription
from trueup.errors import UpstreamError
from trueup.vendors.credentials import ClientCredentials
from trueup.vendors.pax8 import (
    PAGE_SIZE,
    Pax8Client,
    describe_pax8_error,
    parse_pax8_datetime,
    read_subscription,
)
from trueup.vendors.resilience import RetryPolicy

SECRET = "s3cr3t-Pax8-Client-Secret"
CLIENT_ID = "trueup-pax8-client"
CREDENTIALS = ClientCredentials(client_id=CLIENT_ID, client_secret=SECRET)

# The item of GET /subscriptions from the partner spec's `subscriptions-paged` example
# (shared/specs/pax8/samples/subscriptions-paged.json).
SPEC_SUBSCRIPTION: dict[str, Any] = {
    "id": "e8f372b6-e2aa-4f3c-9baa-b34f31c921e5",
    "companyId": "da300208-0c17-4b6f-ab82-e1e7c0b98362",
    "productId": "5766ecd7-a0bf-4ee0-ba1d-bd3ca92ca555",
    "quantity": 1,
    "startDate": "2020-11-12T08:30:00Z",
    "endDate": "2020-11-18",
    "createdDate": "2020-11-11",
    "billingStart": "2020-11-12",
    "status": "PendingCancel",
    "price": 100,
    "currencyCode": "USD",
    "productName": "Proofpoint Essentials - Professional",
    "billingTerm": "Monthly",
}


def company(n: int, **fields: Any) -> dict[str, Any]:
    record: dict[str, Any] = {
        "id": f"c-{n:03d}",
        "name": f"Client {n:03d}",
        "address": {"city": "Denver", "country": "US"},
        "status": "Active",
        "billOnBehalfOfEnabled": False,
        "updatedDate": "2023-08-11T11:33:12.314-0600",
    }
    return record | fields


def product(n: int, **fields: Any) -> dict[str, Any]:
    record: dict[str, Any] = {
        "id": f"p-{n:03d}",
        "name": f"Product {n:03d}",
        "vendorName": "Acme",
        "sku": "X",
    }
    return record | fields


def subscription(n: int, **fields: Any) -> dict[str, Any]:
    record: dict[str, Any] = {
        "id": f"s-{n:03d}",
        "companyId": f"c-{n % 3:03d}",
        "productId": "p-001",
        "productName": "Product 001",
        "quantity": n,
        "status": "Active",
        "billingTerm": "Monthly",
        "startDate": "2021-01-01T08:30:00Z",
        "createdDate": "2020-12-03",
        "price": 12.5,
    }
    return record | fields


Hook = Callable[[httpx.Request, int, int], httpx.Response | None]


class FakePax8:
    """A Pax8 partner account: the token endpoint plus the three paged lists.

    Pages are cut `per_page` records long (the client always asks for 200, so tests use short pages
    to get several). `hook(request, page, times_requested)` may answer a list request first, to inject
    failures or shifted data.
    """

    def __init__(
        self,
        *,
        companies: list[Any] | None = None,
        products: list[Any] | None = None,
        subscriptions: list[Any] | None = None,
        per_page: int = 2,
        expires_in: Any = 86400,
    ) -> None:
        self.lists: dict[str, list[Any]] = {
            "/v1/companies": companies or [],
            "/v1/products": products or [],
            "/v1/subscriptions": subscriptions or [],
        }
        self.per_page = per_page
        self.expires_in = expires_in
        self.hook: Hook | None = None
        self.token_reply: httpx.Response | None = None
        self.valid_tokens: set[str] = set()
        self.tokens_accepted = True  # False: Pax8 issues tokens that the API then rejects
        self.issued = 0
        self.token_requests: list[httpx.Request] = []
        self.api_requests: list[httpx.Request] = []
        self.times: dict[tuple[str, int], int] = {}
        self.in_flight = 0
        self.max_in_flight = 0
        self.threads: set[str] = set()
        self._lock = threading.Lock()

    def handler(self, request: httpx.Request) -> httpx.Response:
        if request.url.path == "/v1/token":
            return self._token(request)
        with self._lock:
            self.api_requests.append(request)
            self.threads.add(threading.current_thread().name)
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            return self._list(request)
        finally:
            with self._lock:
                self.in_flight -= 1

    def _token(self, request: httpx.Request) -> httpx.Response:
        with self._lock:
            self.token_requests.append(request)
            if self.token_reply is not None:
                return self.token_reply
            self.issued += 1
            token = f"token-{self.issued}"
            if self.tokens_accepted:
                self.valid_tokens.add(token)
        return httpx.Response(
            200, json={"access_token": token, "expires_in": self.expires_in, "token_type": "Bearer"}
        )

    def _list(self, request: httpx.Request) -> httpx.Response:
        if request.headers.get("Authorization", "").removeprefix("Bearer ") not in self.valid_tokens:
            return httpx.Response(
                401,
                json={
                    "type": "UNAUTHORIZED",
                    "message": "Invalid token",
                    "instance": request.url.path,
                    "status": 401,
                },
            )
        page = int(request.url.params["page"])
        with self._lock:
            key = (request.url.path, page)
            self.times[key] = self.times.get(key, 0) + 1
            times = self.times[key]
        if self.hook is not None:
            reply = self.hook(request, page, times)
            if reply is not None:
                return reply
        records = self.lists[request.url.path]
        return page_response(records, page, self.per_page)

    def client(self, sleeps: list[float] | None = None, **options: Any) -> Pax8Client:
        recorded = sleeps if sleeps is not None else []
        options.setdefault("policy", RetryPolicy(max_attempts=4, base_delay=0.5))
        return Pax8Client(
            CREDENTIALS,
            http=httpx.Client(transport=httpx.MockTransport(self.handler)),
            sleep=recorded.append,
            **options,
        )

    def params_of(self, path: str) -> list[dict[str, str]]:
        return [dict(r.url.params) for r in self.api_requests if r.url.path == path]


def page_response(
    records: list[Any], page: int, per_page: int, *, total: int | None = None
) -> httpx.Response:
    total = len(records) if total is None else total
    pages = -(-total // per_page)
    content = records[page * per_page : (page + 1) * per_page]
    body = {
        "content": content,
        "page": {"size": per_page, "totalElements": total, "totalPages": pages, "number": page},
    }
    return httpx.Response(200, json=body)


@pytest.fixture
def sleeps() -> list[float]:
    return []


# --- token ------------------------------------------------------------------------------------------


def test_token_request_posts_client_credentials_as_json() -> None:
    fake = FakePax8(companies=[company(1)])
    with fake.client() as client:
        client.companies()
    [request] = fake.token_requests
    assert request.method == "POST"
    assert str(request.url) == "https://api.pax8.com/v1/token"
    assert request.headers["Content-Type"] == "application/json"
    assert "Authorization" not in request.headers
    assert json.loads(request.content) == {
        "client_id": CLIENT_ID,
        "client_secret": SECRET,
        "audience": "https://api.pax8.com",
        "grant_type": "client_credentials",
    }


def test_one_token_serves_every_page_and_list() -> None:
    fake = FakePax8(
        companies=[company(n) for n in range(9)], subscriptions=[subscription(n) for n in range(7)]
    )
    with fake.client() as client:
        client.companies()
        client.subscriptions()
    assert len(fake.token_requests) == 1
    assert len(fake.api_requests) == 5 + 4
    assert {r.headers["Authorization"] for r in fake.api_requests} == {"Bearer token-1"}
    assert client.requests_sent == 1 + 9


def test_token_is_refreshed_shortly_before_it_expires() -> None:
    now = [1000.0]
    fake = FakePax8(companies=[company(1)], expires_in=3600)
    with fake.client(clock=lambda: now[0]) as client:
        client.companies()
        now[0] += 3600 - 61  # still inside the token's life, minus the refresh margin
        client.companies()
        assert len(fake.token_requests) == 1
        now[0] += 2  # within a minute of expiry: refresh before Pax8 would reject it
        client.companies()
    assert len(fake.token_requests) == 2
    assert fake.api_requests[-1].headers["Authorization"] == "Bearer token-2"


def test_token_response_without_access_token_fails_saying_so() -> None:
    fake = FakePax8(companies=[company(1)])
    fake.token_reply = httpx.Response(200, json={"accessToken": "elsewhere", "expires_in": 86400})
    with fake.client() as client, pytest.raises(UpstreamError) as caught:
        client.companies()
    assert "POST /v1/token: token response has no access_token (fields: accessToken, expires_in)" in str(
        caught.value
    )
    assert "elsewhere" not in str(caught.value)
    assert caught.value.retryable is False
    assert fake.api_requests == []


def test_token_response_that_is_not_json_fails_without_echoing_it() -> None:
    fake = FakePax8(companies=[company(1)])
    fake.token_reply = httpx.Response(
        200, text="access_token=tok-in-form&expires_in=86400", headers={"Content-Type": "text/plain"}
    )
    with fake.client() as client, pytest.raises(UpstreamError) as caught:
        client.companies()
    assert "token response is not JSON (text/plain" in str(caught.value)
    assert "tok-in-form" not in str(caught.value)


def test_logs_report_progress_and_never_the_secret_or_token(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    fake = FakePax8(companies=[company(n) for n in range(5)] + [company(9, name=None)], per_page=2)
    fake.hook = fail_first(1, lambda: httpx.Response(500, json={"type": "INTERNAL_SERVER_ERROR"}))
    with fake.client() as client:
        client.companies()
    assert "pax8 /companies: 3 pages, 5 records, 1 skipped" in caplog.text
    assert "skipped company c-009: name is null" in caplog.text
    assert SECRET not in caplog.text
    assert "token-1" not in caplog.text


def test_token_without_expires_in_is_used_but_not_for_long() -> None:
    now = [0.0]
    fake = FakePax8(companies=[company(1)], expires_in=None)
    with fake.client(clock=lambda: now[0]) as client:
        client.companies()
        now[0] += 3600
        client.companies()
    assert len(fake.token_requests) == 2


# --- paging -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "path", "sort"),
    [
        ("companies", "/v1/companies", "name"),
        ("products", "/v1/products", "name"),
        ("subscriptions", "/v1/subscriptions", "createdDate,asc"),
    ],
)
def test_pagination_reads_every_page_with_fixed_size_and_sort(method: str, path: str, sort: str) -> None:
    fake = FakePax8(
        companies=[company(n) for n in range(9)],
        products=[product(n) for n in range(9)],
        subscriptions=[subscription(n) for n in range(9)],
        per_page=2,
    )
    with fake.client() as client:
        result = getattr(client, method)()
    params = fake.params_of(path)
    assert sorted(int(p["page"]) for p in params) == [0, 1, 2, 3, 4]
    assert params[0]["page"] == "0"  # page 0 alone first: it tells how many pages there are
    assert {p["size"] for p in params} == {str(PAGE_SIZE)} == {"200"}
    assert {p["sort"] for p in params} == {sort}
    assert [item.id for item in result.items] == [r["id"] for r in fake.lists[path]]
    assert result.skipped == []


def test_records_are_read_into_domain_models() -> None:
    fake = FakePax8(
        companies=[company(1, status="Inactive")],
        products=[product(1, vendorName="Microsoft")],
        subscriptions=[SPEC_SUBSCRIPTION],
    )
    with fake.client() as client:
        assert client.companies().items == [Company(id="c-001", name="Client 001", status="Inactive")]
        assert client.products().items == [Product(id="p-001", name="Product 001", vendor_name="Microsoft")]
        assert client.subscriptions().items == [
            Subscription(
                id="e8f372b6-e2aa-4f3c-9baa-b34f31c921e5",
                company_id="da300208-0c17-4b6f-ab82-e1e7c0b98362",
                product_id="5766ecd7-a0bf-4ee0-ba1d-bd3ca92ca555",
                product_name="Proofpoint Essentials - Professional",
                quantity=1,
                status="PendingCancel",
                billing_term="Monthly",
                start_date=datetime(2020, 11, 12, 8, 30, tzinfo=UTC),
                end_date=datetime(2020, 11, 18, tzinfo=UTC),
                price=Decimal("100"),
                currency="USD",
            )
        ]


def test_prices_costs_currency_and_commitment_are_read_as_sent() -> None:
    committed = subscription(
        1,
        price=70.2,
        partnerCost=48.6,
        currencyCode="eur",
        billingTerm="Annual",
        commitmentTerm={"id": "x", "term": "1-Year", "endDate": "2027-03-01T00:00:00Z"},
    )
    # A price that is not a number, negative or absurd is unknown (the licences still count); an
    # unreadable commitment end is no commitment known.
    odd = [
        subscription(2, price="n/a", partnerCost=-1),
        subscription(3, price=True, commitmentTerm="1-Year"),
        subscription(4, price="1e15", commitmentTerm={"term": "1-Year", "endDate": "soon"}),
    ]
    fake = FakePax8(subscriptions=[committed, *odd])
    with fake.client() as client:
        read = {s.id: s for s in client.subscriptions().items}
    first = read["s-001"]
    # 70.2 is read from its decimal text, not the nearest binary fraction.
    assert (first.price, first.partner_cost, first.currency) == (Decimal("70.2"), Decimal("48.6"), "EUR")
    assert (first.commitment_term, first.commitment_end) == ("1-Year", datetime(2027, 3, 1, tzinfo=UTC))
    for sid in ("s-002", "s-003", "s-004"):
        assert (read[sid].price, read[sid].partner_cost, read[sid].commitment_end) == (None, None, None)
        assert read[sid].quantity == int(sid[-1])


def test_empty_list_is_one_request() -> None:
    fake = FakePax8()
    with fake.client() as client:
        result = client.products()
    assert result.items == []
    assert len(fake.api_requests) == 1


def test_concurrent_pages_never_exceed_the_concurrency_bound() -> None:
    # 7 pages: page 0, then 6 pages in two waves of 3. The barrier only opens when 3 requests are
    # in flight together, so a serial client times out here; an unbounded one runs more threads.
    fake = FakePax8(companies=[company(n) for n in range(14)], per_page=2)
    barrier = threading.Barrier(3, timeout=10)

    def together(request: httpx.Request, page: int, times: int) -> httpx.Response | None:
        if page > 0:
            barrier.wait()
        return None

    fake.hook = together
    with fake.client(concurrency=3) as client:
        result = client.companies()
    assert fake.max_in_flight == 3
    assert len(fake.threads - {threading.current_thread().name}) == 3
    assert [c.id for c in result.items] == [f"c-{n:03d}" for n in range(14)]


def test_first_failing_page_cancels_the_pages_not_yet_sent() -> None:
    fake = FakePax8(companies=[company(n) for n in range(12)], per_page=2)

    def page_1_is_gone(request: httpx.Request, page: int, times: int) -> httpx.Response | None:
        if page == 1:
            return httpx.Response(404, json={"type": "NOT_FOUND", "message": "Page gone", "status": 404})
        return None

    fake.hook = page_1_is_gone
    with fake.client(concurrency=1) as client, pytest.raises(UpstreamError) as caught:
        client.companies()
    assert "GET /companies page 1: HTTP 404: NOT_FOUND: Page gone" in str(caught.value)
    assert sorted(int(p["page"]) for p in fake.params_of("/v1/companies")) == [0, 1]


# --- retries ----------------------------------------------------------------------------------------


def fail_first(times_to_fail: int, reply: Callable[[], httpx.Response], page: int = 1) -> Hook:
    def hook(request: httpx.Request, number: int, times: int) -> httpx.Response | None:
        return reply() if number == page and times <= times_to_fail else None

    return hook


def test_429_honours_retry_after(sleeps: list[float]) -> None:
    fake = FakePax8(subscriptions=[subscription(n) for n in range(5)])
    fake.hook = fail_first(1, lambda: httpx.Response(429, headers={"Retry-After": "7"}, text="slow down"))
    with fake.client(sleeps) as client:
        result = client.subscriptions()
    assert sleeps == [7.0]
    assert len(result.items) == 5


def test_429_without_retry_after_backs_off_exponentially(sleeps: list[float]) -> None:
    fake = FakePax8(subscriptions=[subscription(n) for n in range(5)])
    fake.hook = fail_first(2, lambda: httpx.Response(429))
    with fake.client(sleeps, policy=RetryPolicy(max_attempts=4, base_delay=1.0)) as client:
        result = client.subscriptions()
    assert len(sleeps) == 2
    assert 0.5 <= sleeps[0] <= 1.0
    assert 1.0 <= sleeps[1] <= 2.0
    assert len(result.items) == 5


def test_5xx_then_success_is_retried(sleeps: list[float]) -> None:
    fake = FakePax8(companies=[company(n) for n in range(5)])
    fake.hook = fail_first(2, lambda: httpx.Response(502, text="<html>Bad Gateway</html>"))
    with fake.client(sleeps) as client:
        result = client.companies()
    assert len(sleeps) == 2
    assert len(result.items) == 5
    assert client.requests_sent == 1 + 3 + 2


def test_5xx_that_outlasts_the_retries_fails_with_status_and_attempts(sleeps: list[float]) -> None:
    fake = FakePax8(companies=[company(n) for n in range(5)])
    fake.hook = fail_first(
        99, lambda: httpx.Response(503, json={"type": "INTERNAL_SERVER_ERROR", "message": "Try later"})
    )
    with (
        fake.client(sleeps, policy=RetryPolicy(max_attempts=3)) as client,
        pytest.raises(UpstreamError) as caught,
    ):
        client.companies()
    error = caught.value
    assert error.status == 503
    assert error.retryable is True
    assert "GET /companies page 1: HTTP 503 after 3 attempts: INTERNAL_SERVER_ERROR: Try later" in str(error)
    assert fake.times[("/v1/companies", 1)] == 3
    assert len(sleeps) == 2


def test_timeout_is_retried_then_fails(sleeps: list[float]) -> None:
    fake = FakePax8(companies=[company(1)])

    def hang(request: httpx.Request, page: int, times: int) -> httpx.Response | None:
        raise httpx.ReadTimeout("read timed out", request=request)

    fake.hook = hang
    policy = RetryPolicy(max_attempts=3, timeout=4.0)
    with fake.client(sleeps, policy=policy) as client, pytest.raises(UpstreamError) as caught:
        client.companies()
    assert "GET /companies page 0: timed out after 4s, 3 attempts" in str(caught.value)
    assert caught.value.retryable is True
    assert isinstance(caught.value.__cause__, httpx.ReadTimeout)
    assert len(sleeps) == 2


def test_timeout_then_success_is_retried(sleeps: list[float]) -> None:
    fake = FakePax8(companies=[company(n) for n in range(3)])

    def hang_once(request: httpx.Request, page: int, times: int) -> httpx.Response | None:
        if page == 1 and times == 1:
            raise httpx.ReadTimeout("read timed out", request=request)
        return None

    fake.hook = hang_once
    with fake.client(sleeps) as client:
        assert len(client.companies().items) == 3
    assert len(sleeps) == 1


# --- authentication and errors ----------------------------------------------------------------------


def test_expired_token_gets_exactly_one_new_token() -> None:
    fake = FakePax8(companies=[company(n) for n in range(3)])
    with fake.client() as client:
        client.companies()
        fake.valid_tokens.clear()  # Pax8 revoked or expired the token early
        result = client.companies()
    assert len(fake.token_requests) == 2
    assert len(result.items) == 3
    assert fake.api_requests[-1].headers["Authorization"] == "Bearer token-2"


def test_401_after_a_fresh_token_fails() -> None:
    fake = FakePax8(companies=[company(1)])
    fake.tokens_accepted = False
    with fake.client() as client, pytest.raises(UpstreamError) as caught:
        client.companies()
    error = caught.value
    assert error.status == 401
    assert error.retryable is False
    assert "GET /companies page 0: credentials rejected (HTTP 401): UNAUTHORIZED: Invalid token" in str(error)
    assert len(fake.token_requests) == 2
    assert len(fake.api_requests) == 2


def test_token_endpoint_401_reports_pax8_error_without_the_secret() -> None:
    fake = FakePax8(companies=[company(1)])
    fake.token_reply = httpx.Response(
        401, json={"error": "access_denied", "error_description": "Unauthorized"}
    )
    with fake.client() as client, pytest.raises(UpstreamError) as caught:
        client.companies()
    message = str(caught.value)
    assert message == "pax8: POST /v1/token: credentials rejected (HTTP 401): access_denied: Unauthorized"
    assert SECRET not in message
    assert SECRET not in repr(client)
    assert fake.api_requests == []


def test_an_error_body_echoing_the_secret_is_redacted() -> None:
    fake = FakePax8(companies=[company(1)])
    echo = {"error": "invalid_request", "error_description": f"bad client_secret {SECRET}"}
    fake.token_reply = httpx.Response(400, json=echo)
    with fake.client() as client, pytest.raises(UpstreamError) as caught:
        client.companies()
    assert SECRET not in str(caught.value)
    assert "invalid_request: bad client_secret ***" in str(caught.value)


def test_404_reports_pax8_message() -> None:
    fake = FakePax8(products=[product(1)])
    envelope = {
        "type": "NOT_FOUND",
        "message": "Company Not Found: 3d0617ac-57f6-40e3-951d-e91da47a326b",
        "instance": "/public/v1/companies/3d0617ac-57f6-40e3-951d-e91da47a326b",
        "status": 404,
        "details": [],
    }
    fake.hook = fail_first(1, lambda: httpx.Response(404, json=envelope), page=0)
    with fake.client() as client, pytest.raises(UpstreamError) as caught:
        client.products()
    assert caught.value.status == 404
    assert caught.value.retryable is False
    assert "GET /products page 0: HTTP 404: NOT_FOUND: Company Not Found: 3d0617ac" in str(caught.value)
    assert fake.times[("/v1/products", 0)] == 1


def test_error_descriptions_cover_both_envelopes_and_plain_text() -> None:
    request = httpx.Request("GET", "https://api.pax8.com/v1/companies")
    api = httpx.Response(
        400,
        json={
            "type": "BAD_REQUEST",
            "message": "Invalid sort",
            "details": [{"message": "sort must be name"}],
        },
        request=request,
    )
    token = httpx.Response(401, json={"error": "access_denied", "error_description": "Unauthorized"})
    html = httpx.Response(502, text="<html>" + "x" * 1000 + "</html>")
    assert describe_pax8_error(api) == "BAD_REQUEST: Invalid sort (sort must be name)"
    assert describe_pax8_error(token) == "access_denied: Unauthorized"
    assert describe_pax8_error(html).startswith("<html>xxx")
    assert len(describe_pax8_error(html)) < 320
    assert describe_pax8_error(httpx.Response(500)) == "(empty body)"


# --- malformed data ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("reply", "problem"),
    [
        (lambda: httpx.Response(200, text='{"content": [{"id": '), "malformed page: body is not JSON"),
        (
            lambda: httpx.Response(200, json=[{"id": "s-1"}]),
            "malformed page: expected a JSON object, got list",
        ),
        (lambda: httpx.Response(200, json={"items": [], "page": {}}), "malformed page: no `content` list"),
        (
            lambda: httpx.Response(200, json={"content": [], "pageInfo": {"totalRecords": 3}}),
            "malformed page: no `page` object",
        ),
        (
            lambda: httpx.Response(200, json={"content": [], "page": {"totalPages": 3}}),
            "malformed page: page.totalElements is missing",
        ),
        (
            lambda: httpx.Response(
                200,
                json={"content": [], "page": {"size": 2, "totalElements": 8, "totalPages": 1, "number": 3}},
            ),
            "malformed page: totalPages 1 of size 2 cannot hold totalElements 8",
        ),
        (
            lambda: httpx.Response(
                200,
                json={"content": [], "page": {"size": 2, "totalElements": 8, "totalPages": 4, "number": 0}},
            ),
            "malformed page: asked for page 3, got page 0",
        ),
    ],
)
def test_malformed_page_fails_naming_list_and_page(reply: Callable[[], httpx.Response], problem: str) -> None:
    fake = FakePax8(subscriptions=[subscription(n) for n in range(8)])
    fake.hook = fail_first(99, reply, page=3)
    with fake.client() as client, pytest.raises(UpstreamError) as caught:
        client.subscriptions()
    assert f"pax8: GET /subscriptions page 3: {problem}" in str(caught.value)


def test_malformed_records_are_skipped_and_reported_and_the_rest_counted() -> None:
    records: list[Any] = [
        subscription(1),
        subscription(2, quantity="ten"),
        subscription(3, quantity=2.5),
        subscription(4, quantity=-1),
        ["not", "an", "object"],
        {k: v for k, v in subscription(6).items() if k != "companyId"},
        subscription(7, startDate="next tuesday"),
        subscription(8, id=8),
        subscription(9, status=None),
        subscription(10, quantity=5.0),
        subscription(11, quantity="5"),
    ]
    fake = FakePax8(subscriptions=records, per_page=3)
    with fake.client() as client:
        result = client.subscriptions()
    assert [(s.id, s.quantity) for s in result.items] == [("s-001", 1), ("s-010", 5), ("s-011", 5)]
    assert [(s.id, s.reason, s.company_id) for s in result.skipped] == [
        ("s-002", "quantity 'ten' is not a number", "c-002"),
        ("s-003", "quantity 2.5 is not a whole number", "c-000"),
        ("s-004", "quantity -1 is negative", "c-001"),
        (None, "record is not a JSON object (list)", None),
        ("s-006", "companyId is missing", None),
        ("s-007", "startDate 'next tuesday' is not a readable date", "c-001"),
        (None, "id 8 is not a string", "c-002"),
        ("s-009", "status is null", "c-000"),
    ]
    assert {(s.source, s.kind) for s in result.skipped} == {("pax8", "subscription")}


def test_malformed_company_and_product_are_skipped() -> None:
    fake = FakePax8(
        companies=[company(1), company(2, name=None)],
        products=[product(1), {"id": "p-002", "vendorName": "Acme"}],
    )
    with fake.client() as client:
        data = client.fetch_all(datetime(2024, 5, 1, tzinfo=UTC))
    assert [c.id for c in data.companies] == ["c-001"]
    assert [p.id for p in data.products] == ["p-001"]
    assert data.skipped == [
        SkippedRecord(source="pax8", kind="company", id="c-002", reason="name is null", company_id="c-002"),
        SkippedRecord(source="pax8", kind="product", id="p-002", reason="name is missing"),
    ]


@pytest.mark.parametrize(
    ("quantity", "reason"),
    [
        (5.0, None),
        ("5", None),
        (" 7 ", None),
        (0, None),
        (True, "quantity True is not a number"),
        ("NaN", "quantity 'NaN' is not a number"),
        (float("inf"), "quantity inf is not a number"),
        ("2.5", "quantity '2.5' is not a whole number"),
        ("1e400000000", "quantity '1e400000000' is not a plausible quantity"),
        ({"value": 5}, "quantity {'value': 5} is not a number"),
        (None, "quantity is null"),
    ],
)
def test_quantity_is_read_only_when_it_is_a_whole_number(quantity: object, reason: str | None) -> None:
    record = read_subscription(subscription(1, quantity=quantity))
    if reason is None:
        assert isinstance(record, Subscription)
        assert record.quantity == int(str(quantity).strip().split(".")[0])
    else:
        assert isinstance(record, SkippedRecord)
        assert record.reason == reason


def test_unknown_status_and_billing_term_are_kept() -> None:
    fake = FakePax8(subscriptions=[subscription(1, status="PendingQuantumReview", billingTerm="5-Year")])
    with fake.client() as client:
        [sub] = client.subscriptions().items
    assert sub.status == "PendingQuantumReview"
    assert sub.billing_term == "5-Year"


def test_read_subscription_ignores_unknown_fields() -> None:
    record = read_subscription(SPEC_SUBSCRIPTION | {"vendorSubscriptionId": "x", "newField": {"a": 1}})
    assert isinstance(record, Subscription)
    assert record.quantity == 1


# --- data moving under the paging -------------------------------------------------------------------


def _shifted(records: list[Any]) -> httpx.Response:
    content = records[1:3]  # records 1 and 2: record 1 again, record 3 missed
    body = {
        "content": content,
        "page": {"size": 2, "totalElements": len(records), "totalPages": 3, "number": 1},
    }
    return httpx.Response(200, json=body)


def shift_page_1(fake: FakePax8, *, listings: set[int]) -> None:
    def hook(request: httpx.Request, page: int, times: int) -> httpx.Response | None:
        if page == 1 and times in listings:
            return _shifted(fake.lists[request.url.path])
        return None

    fake.hook = hook


def test_data_moving_under_the_paging_is_listed_again() -> None:
    fake = FakePax8(subscriptions=[subscription(n) for n in range(6)], per_page=2)
    shift_page_1(fake, listings={1})
    with fake.client() as client:
        result = client.subscriptions()
    assert [s.id for s in result.items] == [f"s-{n:03d}" for n in range(6)]
    assert fake.times[("/v1/subscriptions", 0)] == 2


def test_data_moving_on_both_listings_fails_rather_than_returning_a_short_list() -> None:
    fake = FakePax8(subscriptions=[subscription(n) for n in range(6)], per_page=2)
    shift_page_1(fake, listings={1, 2})
    with fake.client() as client, pytest.raises(UpstreamError) as caught:
        client.subscriptions()
    message = str(caught.value)
    assert "GET /subscriptions changed while paging: 5 unique records, totalElements 6" in message
    assert caught.value.retryable is True
    assert fake.times[("/v1/subscriptions", 0)] == 2


def test_a_record_seen_on_two_pages_is_kept_once() -> None:
    records = [subscription(n) for n in range(5)]
    fake = FakePax8(subscriptions=records, per_page=2)

    def moved(request: httpx.Request, page: int, times: int) -> httpx.Response | None:
        # Record 1 moved down the sort order between the requests for page 0 and page 1.
        content = {1: records[1:3], 2: records[3:5]}.get(page)
        if content is None:
            return None
        body = {"content": content, "page": {"size": 2, "totalElements": 5, "totalPages": 3, "number": page}}
        return httpx.Response(200, json=body)

    fake.hook = moved
    with fake.client() as client:
        result = client.subscriptions()
    assert [s.id for s in result.items] == [f"s-{n:03d}" for n in range(5)]


def test_a_growing_total_on_a_later_page_counts_as_moving_data() -> None:
    fake = FakePax8(companies=[company(n) for n in range(4)], per_page=2)

    def grew(request: httpx.Request, page: int, times: int) -> httpx.Response | None:
        if page == 1 and times == 1:
            return page_response(fake.lists[request.url.path], 1, 2, total=5)
        return None

    fake.hook = grew
    with fake.client() as client:
        assert len(client.companies().items) == 4
    assert fake.times[("/v1/companies", 0)] == 2


def test_malformed_records_without_id_do_not_look_like_missing_data() -> None:
    fake = FakePax8(subscriptions=[subscription(1), "junk", subscription(3)], per_page=2)
    with fake.client() as client:
        result = client.subscriptions()
    assert len(result.items) == 2
    assert len(result.skipped) == 1
    assert fake.times[("/v1/subscriptions", 0)] == 1


# --- dates ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2020-12-03", datetime(2020, 12, 3, tzinfo=UTC)),
        ("2021-01-01T08:30:00Z", datetime(2021, 1, 1, 8, 30, tzinfo=UTC)),
        ("2023-08-11T11:33:12.314-0600", datetime(2023, 8, 11, 17, 33, 12, 314000, tzinfo=UTC)),
        ("2023-08-11T11:33:12.314+05:30", datetime(2023, 8, 11, 6, 3, 12, 314000, tzinfo=UTC)),
    ],
)
def test_pax8_dates_parse_to_aware_utc(text: str, expected: datetime) -> None:
    parsed = parse_pax8_datetime(text)
    assert parsed == expected
    assert parsed is not None
    assert parsed.utcoffset() == timedelta(0)


def test_offset_dates_keep_their_instant() -> None:
    parsed = parse_pax8_datetime("2023-08-11T11:33:12.314-0600")
    assert parsed == datetime(2023, 8, 11, 11, 33, 12, 314000, tzinfo=timezone(timedelta(hours=-6)))


@pytest.mark.parametrize("empty", [None, ""])
def test_absent_dates_are_none(empty: object) -> None:
    assert parse_pax8_datetime(empty) is None


@pytest.mark.parametrize("bad", ["2020-13-45", "next tuesday", 20201203, "2023-08-11T25:00:00Z"])
def test_unreadable_dates_raise_naming_the_value(bad: object) -> None:
    with pytest.raises(ValueError, match=re.escape(repr(bad))):
        parse_pax8_datetime(bad)


def test_fetch_all_returns_one_complete_sync() -> None:
    synced_at = datetime(2024, 5, 1, 6, 0, tzinfo=UTC)
    fake = FakePax8(
        companies=[company(n) for n in range(3)],
        products=[product(1)],
        subscriptions=[subscription(n) for n in range(1, 5)] + [subscription(5, quantity="lots")],
    )
    with fake.client() as client:
        data = client.fetch_all(synced_at)
    assert isinstance(data, Pax8Data)
    assert data.synced_at == synced_at
    assert len(data.companies) == 3
    assert len(data.products) == 1
    assert sum(s.quantity for s in data.subscriptions) == 1 + 2 + 3 + 4
    assert [(s.id, s.reason) for s in data.skipped] == [("s-005", "quantity 'lots' is not a number")]
