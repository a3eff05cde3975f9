"""The retry discipline every vendor client shares: OAuth token reuse, retries, rate limits.

- 429: honour `Retry-After` (seconds or an HTTP date), else exponential backoff with jitter.
- 5xx, 408, timeouts and connection errors: bounded retries with backoff.
- 401: drop the token, fetch a new one once, then fail.
- any other 4xx: fail at once with the vendor's own message.
A vendor failure therefore either succeeds after retries or raises `UpstreamError`; it never turns
into a short or empty result.
"""

from __future__ import annotations

import email.utils
import logging
import random
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import httpx

from trueup.errors import UpstreamError

log = logging.getLogger("trueup.vendors")


@dataclass(frozen=True)
class RetryPolicy:
    max_attempts: int = 5  # attempts per request, the first included
    base_delay: float = 0.5  # seconds; doubles on every retry
    max_delay: float = 20.0  # cap for one backoff wait
    max_retry_after: float = 120.0  # cap for a server-requested wait
    timeout: float = 30.0  # per request, seconds

    def backoff(self, retry: int, rand: Callable[[], float] = random.random) -> float:
        """Exponential backoff with jitter for the `retry`-th retry (1-based): half to all of the ceiling."""
        ceiling = min(self.max_delay, self.base_delay * (2.0 ** (retry - 1)))
        return ceiling * (0.5 + rand() / 2)


def retry_after_seconds(value: str | None, now: datetime | None = None) -> float | None:
    """Parse a `Retry-After` header: delta-seconds or an HTTP date. None when absent or unreadable."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - (now or datetime.now(UTC))).total_seconds())


class RateLimiter:
    """At most `max_requests` in any `per_seconds` window (a sliding window shared by threads)."""

    def __init__(
        self,
        max_requests: int,
        per_seconds: float = 60.0,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.max_requests = max_requests
        self.per_seconds = per_seconds
        self._sent: deque[float] = deque()
        self._lock = threading.Lock()
        self._clock = clock
        self._sleep = sleep

    def acquire(self) -> None:
        while True:
            with self._lock:
                now = self._clock()
                while self._sent and now - self._sent[0] >= self.per_seconds:
                    self._sent.popleft()
                if len(self._sent) < self.max_requests:
                    self._sent.append(now)
                    return
                wait = self.per_seconds - (now - self._sent[0])
            log.info("rate limit reached, waiting %.1fs", wait)
            self._sleep(max(wait, 0.01))


class TokenSource:
    """Caches an OAuth access token and refreshes it shortly before it expires (thread-safe).

    `fetch` returns (access_token, expires_in_seconds).
    """

    def __init__(
        self,
        fetch: Callable[[], tuple[str, float]],
        *,
        refresh_margin: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._fetch = fetch
        self._margin = refresh_margin
        self._clock = clock
        self._lock = threading.Lock()
        self._token: str | None = None
        self._expires_at = 0.0

    def get(self) -> str:
        with self._lock:
            if self._token is None or self._clock() >= self._expires_at:
                token, expires_in = self._fetch()
                # A short-lived token is refreshed half-way through its life rather than never reused.
                margin = min(self._margin, expires_in / 2)
                self._token, self._expires_at = token, self._clock() + expires_in - margin
            return self._token

    def invalidate(self, token: str) -> None:
        """Forget `token` (after a 401) unless another thread already replaced it."""
        with self._lock:
            if self._token == token:
                self._token = None


ErrorMessage = Callable[[httpx.Response], str]


def short_body(response: httpx.Response, limit: int = 300) -> str:
    text = response.text.strip().replace("\n", " ")
    return text[:limit] + ("..." if len(text) > limit else "")


class ResilientClient:
    """Sends requests to one vendor with the retry discipline above.

    `describe_error` turns a failed response into the vendor's own message (each vendor has its
    own error envelope). `tokens` adds `Authorization: Bearer` and handles 401 with one refresh.
    """

    def __init__(
        self,
        source: str,
        client: httpx.Client,
        *,
        describe_error: ErrorMessage,
        tokens: TokenSource | None = None,
        policy: RetryPolicy | None = None,
        limiter: RateLimiter | None = None,
        sleep: Callable[[float], None] = time.sleep,
        rand: Callable[[], float] = random.random,
    ) -> None:
        self.source = source
        self.client = client
        self.describe_error = describe_error
        self.tokens = tokens
        self.policy = policy or RetryPolicy()
        self.limiter = limiter
        self._sleep = sleep
        self._rand = rand
        self._count_lock = threading.Lock()
        self.requests_sent = 0

    def request(
        self, method: str, url: str, *, what: str, authorize: bool = True, **kwargs: Any
    ) -> httpx.Response:
        """Send one logical request; `what` names it in errors (e.g. "GET /subscriptions page 3")."""
        policy = self.policy
        attempt = 0
        refreshed = False
        base_headers = dict(kwargs.pop("headers", None) or {})
        while True:
            attempt += 1
            headers = dict(base_headers)
            token = self.tokens.get() if (authorize and self.tokens) else None
            if token:
                headers["Authorization"] = f"Bearer {token}"
            if self.limiter:
                self.limiter.acquire()
            with self._count_lock:
                self.requests_sent += 1
            try:
                response = self.client.request(method, url, headers=headers, timeout=policy.timeout, **kwargs)
            except httpx.TimeoutException as exc:
                problem = f"timed out after {policy.timeout:g}s"
                failure: Exception = exc
            except httpx.TransportError as exc:
                problem = f"connection failed ({type(exc).__name__})"
                failure = exc
            else:
                status = response.status_code
                if status < 400:
                    return response
                if status == 401 and token and not refreshed:
                    # The token may have been revoked or expired early: one fresh token, then fail.
                    assert self.tokens is not None
                    self.tokens.invalidate(token)
                    refreshed = True
                    attempt -= 1
                    log.info("%s %s: 401, refreshing the access token once", self.source, what)
                    continue
                message = self.describe_error(response)
                # 408 (server-side timeout, seen on Pax8 partner endpoints) is as transient as a 5xx.
                if status in (408, 429) or status >= 500:
                    if attempt >= policy.max_attempts:
                        raise UpstreamError(
                            self.source,
                            f"{what}: HTTP {status} after {attempt} attempts: {message}",
                            status=status,
                            retryable=True,
                        )
                    delay = (
                        retry_after_seconds(response.headers.get("Retry-After")) if status == 429 else None
                    )
                    if delay is None:
                        delay = policy.backoff(attempt, self._rand)
                    delay = min(delay, policy.max_retry_after)
                    log.warning(
                        "%s %s: HTTP %s, retry %d in %.2fs", self.source, what, status, attempt, delay
                    )
                    self._sleep(delay)
                    continue
                if status == 401:
                    raise UpstreamError(
                        self.source,
                        f"{what}: credentials rejected (HTTP 401): {message}",
                        status=401,
                        retryable=False,
                    )
                raise UpstreamError(
                    self.source, f"{what}: HTTP {status}: {message}", status=status, retryable=False
                )
            if attempt >= policy.max_attempts:
                raise UpstreamError(
                    self.source, f"{what}: {problem}, {attempt} attempts", retryable=True
                ) from failure
            delay = policy.backoff(attempt, self._rand)
            log.warning("%s %s: %s, retry %d in %.2fs", self.source, what, problem, attempt, delay)
            self._sleep(delay)
