"""The shared retry discipline: Retry-After, backoff, rate limit, token reuse and the 408/401 rules."""

from __future__ import annotations

from datetime import UTC, datetime

import httpx
import pytest

from trueup.errors import UpstreamError
from trueup.vendors.credentials import ClientCredentials
from trueup.vendors.resilience import (
    RateLimiter,
    ResilientClient,
    RetryPolicy,
    TokenSource,
    retry_after_seconds,
    short_body,
)

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


# --- token source ---------------------------------------------------------------------------------------


class TokenIssuer:
    def __init__(self, expires_in: float) -> None:
        self.expires_in = expires_in
        self.issued = 0

    def __call__(self) -> tuple[str, float]:
        self.issued += 1
        return f"token-{self.issued}", self.expires_in


def test_token_is_reused_until_the_refresh_margin() -> None:
    clock = FakeClock(0.0)
    issuer = TokenIssuer(3600)
    tokens = TokenSource(issuer, refresh_margin=60, clock=clock)
    assert tokens.get() == "token-1"
    clock.now = 3539.0
    assert tokens.get() == "token-1"
    clock.now = 3540.0
    assert tokens.get() == "token-2"
    assert issuer.issued == 2


def test_short_lived_token_is_refreshed_half_way_through_its_life() -> None:
    clock = FakeClock(0.0)
    issuer = TokenIssuer(30)
    tokens = TokenSource(issuer, refresh_margin=60, clock=clock)
    tokens.get()
    clock.now = 14.0
    assert tokens.get() == "token-1"
    clock.now = 15.0
    assert tokens.get() == "token-2"


def test_invalidate_forgets_only_the_token_it_names() -> None:
    issuer = TokenIssuer(3600)
    tokens = TokenSource(issuer, clock=FakeClock(0.0))
    assert tokens.get() == "token-1"
    tokens.invalidate("some-older-token")  # another thread already replaced it: keep the current one
    assert tokens.get() == "token-1"
    tokens.invalidate("token-1")
    assert tokens.get() == "token-2"


# --- the client ---------------------------------------------------------------------------------------


def resilient(handler: httpx.MockTransport, sleeps: list[float], **options: object) -> ResilientClient:
    return ResilientClient(
        "vendor",
        httpx.Client(transport=handler),
        describe_error=short_body,
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


def test_401_refreshes_the_token_once() -> None:
    seen: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request.headers["Authorization"])
        return httpx.Response(200 if request.headers["Authorization"] == "Bearer token-2" else 401)

    issuer = TokenIssuer(3600)
    client = resilient(httpx.MockTransport(handler), [], tokens=TokenSource(issuer))
    client.request("GET", "https://vendor.test/x", what="GET /x")
    assert seen == ["Bearer token-1", "Bearer token-2"]
    assert issuer.issued == 2


def test_credentials_repr_hides_the_secret() -> None:
    credentials = ClientCredentials(client_id="id-1", client_secret="hunter2-secret")
    assert "hunter2-secret" not in repr(credentials)
    assert "hunter2-secret" not in str(credentials)
    assert "id-1" in repr(credentials)
