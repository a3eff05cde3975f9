"""The shared vendor plumbing: Retry-After, backoff, rate limit, token reuse, the 408/401 rules,
the auth styles and the paging helpers."""

from __future__ import annotations

from datetime import UTC, datetime

import httpx
import pytest

from trueup.errors import UpstreamError
from trueup.vendors.credentials import ClientCredentials
from trueup.vendors.paging import pages_after_id, pages_by_next_url, pages_concurrently
from trueup.vendors.resilience import (
    RateLimiter,
    RetryPolicy,
    VendorHttp,
    retry_after_seconds,
    short_body,
)
from trueup.vendors.vendor_auth import ApiKeyAuth, OAuthBearerAuth, TokenCache, read_bearer_token, token_post

NOW = datetime(2024, 5, 1, 12, 0, 0, tzinfo=UTC)


class FakeClock:
    """A monotonic clock that only moves when the code under test sleeps (or the test says so)."""

    def __init__(self, start: float = 100.0) -> None:
        self.now = start
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


# --- Retry-After --------------------------------------------------------------------------------------


@pytest.mark.parametrize(("header", "seconds"), [("7", 7.0), (" 0 ", 0.0), ("2.5", 2.5), ("-3", 0.0)])
def test_retry_after_in_seconds(header: str, seconds: float) -> None:
    assert retry_after_seconds(header, now=NOW) == seconds


def test_retry_after_as_an_http_date_is_the_time_until_then() -> None:
    assert retry_after_seconds("Wed, 01 May 2024 12:00:30 GMT", now=NOW) == 30.0


def test_retry_after_in_the_past_means_now() -> None:
    assert retry_after_seconds("Wed, 01 May 2024 11:00:00 GMT", now=NOW) == 0.0


@pytest.mark.parametrize("header", [None, "", "soon", "Someday, 99 Foo 20xx"])
def test_retry_after_absent_or_unreadable_is_none(header: str | None) -> None:
    assert retry_after_seconds(header, now=NOW) is None


# --- backoff --------------------------------------------------------------------------------------------


def test_backoff_doubles_within_jitter_bounds() -> None:
    policy = RetryPolicy(base_delay=0.5, max_delay=20.0)
    for retry, ceiling in [(1, 0.5), (2, 1.0), (3, 2.0), (4, 4.0)]:
        assert policy.backoff(retry, rand=lambda: 0.0) == ceiling / 2
        assert policy.backoff(retry, rand=lambda: 1.0) == ceiling


def test_backoff_is_capped_by_max_delay() -> None:
    policy = RetryPolicy(base_delay=0.5, max_delay=3.0)
    assert policy.backoff(30, rand=lambda: 1.0) == 3.0
    assert policy.backoff(30, rand=lambda: 0.0) == 1.5


# --- rate limiter ---------------------------------------------------------------------------------------


def test_rate_limiter_waits_until_the_window_has_room() -> None:
    clock = FakeClock()
    limiter = RateLimiter(2, 10.0, clock=clock, sleep=clock.sleep)
    limiter.acquire()
    clock.now += 4.0
    limiter.acquire()
    assert clock.sleeps == []
    limiter.acquire()  # the window [100, 110) is full: wait for the first request to leave it
    assert clock.sleeps == [6.0]
    assert clock.now == 110.0


def test_rate_limiter_does_not_wait_once_the_window_has_passed() -> None:
    clock = FakeClock()
    limiter = RateLimiter(2, 10.0, clock=clock, sleep=clock.sleep)
    limiter.acquire()
    limiter.acquire()
    clock.now += 10.0
    limiter.acquire()
    limiter.acquire()
    assert clock.sleeps == []


# --- token cache ----------------------------------------------------------------------------------------


def test_token_is_reused_until_the_refresh_margin() -> None:
    clock = FakeClock(0.0)
    cache = TokenCache(refresh_margin=60, clock=clock)
    cache.store("token-1", 3600)
    clock.now = 3539.0
    assert cache.current() == "token-1"
    clock.now = 3540.0
    assert cache.current() is None


def test_short_lived_token_is_refreshed_half_way_through_its_life() -> None:
    clock = FakeClock(0.0)
    cache = TokenCache(refresh_margin=60, clock=clock)
    cache.store("token-1", 30)
    clock.now = 14.0
    assert cache.current() == "token-1"
    clock.now = 15.0
    assert cache.current() is None


def test_invalidate_forgets_only_the_token_it_names() -> None:
    cache = TokenCache(clock=FakeClock(0.0))
    cache.store("token-1", 3600)
    cache.invalidate("some-older-token")  # another thread already replaced it: keep the current one
    assert cache.current() == "token-1"
    cache.invalidate("token-1")
    assert cache.current() is None


# --- the client and the OAuth auth ------------------------------------------------------------------------

TOKEN_URL = "https://vendor.test/oauth/token"


class TokenServer:
    """A vendor whose token endpoint issues token-1, token-2, ... and whose API accepts `valid`."""

    def __init__(self, *, valid: set[str] | None = None, expires_in: float = 3600) -> None:
        self.issued = 0
        self.valid = valid
        self.expires_in = expires_in
        self.seen: list[tuple[str, str]] = []  # (path, Authorization) of every request

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.seen.append((request.url.path, request.headers.get("Authorization", "")))
        if request.url.path == "/oauth/token":
            self.issued += 1
            body = {"access_token": f"token-{self.issued}", "expires_in": self.expires_in}
            return httpx.Response(200, json=body)
        token = request.headers.get("Authorization", "").removeprefix("Bearer ")
        if self.valid is not None and token not in self.valid:
            return httpx.Response(401, text="expired")
        return httpx.Response(200, text="ok")


def bearer(clock: FakeClock | None = None) -> OAuthBearerAuth:
    return OAuthBearerAuth(
        source="vendor",
        token_request=lambda: token_post(TOKEN_URL, timeout=5, form={"grant_type": "client_credentials"}),
        what="POST /oauth/token",
        read_token=lambda response: read_bearer_token(
            response, source="vendor", what="POST /oauth/token", default_lifetime=300
        ),
        clock=clock or FakeClock(0.0),
    )


def resilient(
    handler: httpx.MockTransport, sleeps: list[float], *, auth: httpx.Auth | None = None, **options: object
) -> VendorHttp:
    return VendorHttp(
        "vendor",
        httpx.Client(transport=handler),
        describe_error=short_body,
        auth=auth,
        policy=RetryPolicy(max_attempts=3),
        sleep=sleeps.append,
        rand=lambda: 1.0,
        **options,  # type: ignore[arg-type]
    )


def test_408_is_retried_like_a_5xx() -> None:
    replies = iter([httpx.Response(408, text="request timeout"), httpx.Response(200, text="ok")])
    sleeps: list[float] = []
    client = resilient(httpx.MockTransport(lambda request: next(replies)), sleeps)
    assert client.request("GET", "https://vendor.test/x", what="GET /x").text == "ok"
    assert sleeps == [0.5]
    assert client.requests_sent == 2


def test_other_4xx_fails_at_once_with_the_vendor_message() -> None:
    sleeps: list[float] = []
    client = resilient(httpx.MockTransport(lambda request: httpx.Response(403, text="no scope")), sleeps)
    with pytest.raises(UpstreamError) as caught:
        client.request("GET", "https://vendor.test/x", what="GET /x")
    assert str(caught.value) == "vendor: GET /x: HTTP 403: no scope"
    assert caught.value.retryable is False
    assert sleeps == []


def test_retry_after_is_capped_by_the_policy() -> None:
    replies = iter([httpx.Response(429, headers={"Retry-After": "3600"}), httpx.Response(200)])
    sleeps: list[float] = []
    client = resilient(httpx.MockTransport(lambda request: next(replies)), sleeps)
    client.request("GET", "https://vendor.test/x", what="GET /x")
    assert sleeps == [RetryPolicy().max_retry_after]


def test_5xx_that_outlasts_the_attempts_names_status_attempts_and_message() -> None:
    sleeps: list[float] = []
    client = resilient(httpx.MockTransport(lambda request: httpx.Response(502, text="bad gateway")), sleeps)
    with pytest.raises(UpstreamError) as caught:
        client.request("GET", "https://vendor.test/x", what="GET /x")
    assert str(caught.value) == "vendor: GET /x: HTTP 502 after 3 attempts: bad gateway"
    assert caught.value.retryable is True
    assert sleeps == [0.5, 1.0]


def test_a_token_is_fetched_once_and_shared_by_requests() -> None:
    server = TokenServer()
    client = resilient(httpx.MockTransport(server), [], auth=bearer())
    for _ in range(3):
        client.request("GET", "https://vendor.test/x", what="GET /x")
    assert server.seen == [("/oauth/token", ""), *[("/x", "Bearer token-1")] * 3]
    assert client.requests_sent == 4  # the token request is on the wire too


def test_an_expired_token_is_replaced_before_the_request() -> None:
    clock = FakeClock(0.0)
    server = TokenServer(expires_in=600)
    client = resilient(httpx.MockTransport(server), [], auth=bearer(clock))
    client.request("GET", "https://vendor.test/x", what="GET /x")
    clock.now = 600.0
    client.request("GET", "https://vendor.test/x", what="GET /x")
    assert [auth for path, auth in server.seen if path == "/x"] == ["Bearer token-1", "Bearer token-2"]


def test_401_refreshes_the_token_once() -> None:
    server = TokenServer(valid={"token-2"})
    client = resilient(httpx.MockTransport(server), [], auth=bearer())
    client.request("GET", "https://vendor.test/x", what="GET /x")
    assert [auth for path, auth in server.seen if path == "/x"] == ["Bearer token-1", "Bearer token-2"]
    assert server.issued == 2


def test_401_with_a_fresh_token_is_credentials_rejected() -> None:
    server = TokenServer(valid=set())
    client = resilient(httpx.MockTransport(server), [], auth=bearer())
    with pytest.raises(UpstreamError) as caught:
        client.request("GET", "https://vendor.test/x", what="GET /x")
    assert str(caught.value) == "vendor: GET /x: credentials rejected (HTTP 401): expired"
    assert server.issued == 2


def test_a_failing_token_endpoint_is_retried_and_named() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(503, text="token service down")

    sleeps: list[float] = []
    client = resilient(httpx.MockTransport(handler), sleeps, auth=bearer())
    with pytest.raises(UpstreamError) as caught:
        client.request("GET", "https://vendor.test/x", what="GET /x")
    assert str(caught.value) == "vendor: POST /oauth/token: HTTP 503 after 3 attempts: token service down"
    assert len(sleeps) == 2


def test_a_timeout_on_the_token_request_names_the_token_request() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        raise httpx.ReadTimeout("slow", request=request)

    client = resilient(httpx.MockTransport(handler), [], auth=bearer())
    with pytest.raises(UpstreamError, match=r"POST /oauth/token: timed out after 30s, 3 attempts"):
        client.request("GET", "https://vendor.test/x", what="GET /x")


def test_the_rate_limit_counts_token_requests_and_retries() -> None:
    clock = FakeClock()
    replies = iter([httpx.Response(500), httpx.Response(200)])

    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/oauth/token":
            return httpx.Response(200, json={"access_token": "t", "expires_in": 3600})
        return next(replies)

    limiter = RateLimiter(2, 10.0, clock=clock, sleep=clock.sleep)
    client = resilient(httpx.MockTransport(handler), [], auth=bearer(), limiter=limiter)
    client.request("GET", "https://vendor.test/x", what="GET /x")
    # token + 500 fill the window; the retry waits for the token request to leave it
    assert clock.sleeps == [10.0]
    assert client.requests_sent == 3


def test_a_client_reopened_on_the_same_http_client_counts_and_budgets_each_request_once() -> None:
    clock = FakeClock()
    http = httpx.Client(transport=httpx.MockTransport(lambda request: httpx.Response(200)))
    limiter = RateLimiter(1, 60.0, clock=clock, sleep=clock.sleep)  # one request a minute
    VendorHttp("vendor", http, describe_error=short_body, limiter=limiter)
    again = VendorHttp("vendor", http, describe_error=short_body, limiter=limiter)
    again.request("GET", "https://vendor.test/x", what="GET /x")
    assert again.requests_sent == 1 and clock.sleeps == []  # spent once: no wait for a second slot


def test_api_key_auth_sets_its_header_and_hides_the_key() -> None:
    seen: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request.headers["X-API-KEY"])
        return httpx.Response(200)

    auth = ApiKeyAuth("X-API-KEY", "k-123-secret")
    resilient(httpx.MockTransport(handler), [], auth=auth).request(
        "GET", "https://vendor.test/x", what="GET /x"
    )
    assert seen == ["k-123-secret"]
    assert "k-123-secret" not in repr(auth)


def test_credentials_repr_hides_the_secret() -> None:
    credentials = ClientCredentials(client_id="id-1", client_secret="hunter2-secret")
    assert "hunter2-secret" not in repr(credentials)
    assert "hunter2-secret" not in str(credentials)
    assert "id-1" in repr(credentials)


# --- paging ---------------------------------------------------------------------------------------------


def test_pages_after_id_follow_the_last_id_until_an_empty_page() -> None:
    data = {None: [{"id": 1}, {"id": 2}], 2: [{"id": 5}], 5: []}
    asked: list[str] = []

    def fetch(after: int | None, where: str) -> list[object]:
        asked.append(where)
        return list(data[after])

    pages = list(pages_after_id(fetch, source="vendor", path="/things"))
    assert pages == [[{"id": 1}, {"id": 2}], [{"id": 5}]]
    assert asked == [
        "GET /things page 1 (after=none)",
        "GET /things page 2 (after=2)",
        "GET /things page 3 (after=5)",
    ]


def test_pages_after_id_refuse_a_page_that_does_not_advance() -> None:
    with pytest.raises(UpstreamError, match="page does not advance"):
        list(pages_after_id(lambda after, where: [{"id": 1}], source="vendor", path="/things"))


def test_pages_by_next_url_follow_the_links_to_the_end() -> None:
    links = {
        "https://v.test/api/d?page=0": "https://v.test/api/d?page=1",
        "https://v.test/api/d?page=1": "",
    }
    pages = list(
        pages_by_next_url(
            lambda url, where: (where, links[url]), "https://v.test/api/d?page=0", source="vendor", path="/d"
        )
    )
    assert pages == ["GET /d page 1", "GET /d page 2"]


def test_pages_by_next_url_never_take_the_token_to_another_host() -> None:
    def fetch(url: str, where: str) -> tuple[str, str]:
        return "page", "https://elsewhere.test/api/d?page=1"

    with pytest.raises(UpstreamError, match=r"another host \(elsewhere.test\)"):
        list(pages_by_next_url(fetch, "https://v.test/api/d", source="vendor", path="/d"))


def test_pages_by_next_url_stop_a_link_back_to_a_page_already_read() -> None:
    def fetch(url: str, where: str) -> tuple[str, str]:
        return "page", "https://v.test/api/d?page=0"

    with pytest.raises(UpstreamError, match="points back to a page already read"):
        list(pages_by_next_url(fetch, "https://v.test/api/d?page=0", source="vendor", path="/d"))


def test_pages_concurrently_keep_page_order_and_raise_the_first_failure() -> None:
    assert pages_concurrently(lambda n: n * 10, [1, 2, 3], concurrency=2, name="t") == [10, 20, 30]

    def fetch(number: int) -> int:
        if number == 2:
            raise UpstreamError("vendor", "page 2 failed", retryable=False)
        return number

    with pytest.raises(UpstreamError, match="page 2 failed"):
        pages_concurrently(fetch, [1, 2, 3], concurrency=1, name="t")
