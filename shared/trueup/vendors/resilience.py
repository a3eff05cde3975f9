"""The one retry discipline every vendor client shares, built on tenacity and httpx.

- 429: honour `Retry-After` (seconds or an HTTP date), else exponential backoff with jitter.
- 5xx, 408, timeouts and connection errors: bounded retries with backoff.
- 401: the auth (`vendor_auth.OAuthBearerAuth`) fetches one fresh token; a second 401 fails.
- any other 4xx: fail at once with the vendor's own message.
- a request budget per vendor (`RateLimiter`): every request on the wire, token requests and
  retries included, waits for room in the vendor's window before it goes.
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
from typing import TYPE_CHECKING, Any

import httpx

from trueup.errors import UpstreamError
from trueup.vendors.vendor_auth import TokenRequestFailed

if TYPE_CHECKING:
    import tenacity

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
    """A vendor's request budget: at most `max_requests` in any `per_seconds` window (a sliding
    window shared by threads)."""

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


ErrorMessage = Callable[[httpx.Response], str]


def short_body(response: httpx.Response, limit: int = 300) -> str:
    text = response.text.strip().replace("\n", " ")
    return text[:limit] + ("..." if len(text) > limit else "")


class _Transient(Exception):
    """One attempt failed in a way worth another: the message, and the wait the server asked for."""

    def __init__(self, problem: str, *, status: int | None = None, retry_after: float | None = None) -> None:
        super().__init__(problem)
        self.problem = problem
        self.status = status
        self.retry_after = retry_after


def _transient_status(status: int) -> bool:
    # 408 (server-side timeout, seen on Pax8 partner endpoints) is as transient as a 5xx.
    return status in (408, 429) or status >= 500


class VendorHttp:
    """Sends requests to one vendor with the retry discipline above.

    `describe_error` turns a failed response into the vendor's own message (each vendor has its
    own error envelope); `auth` signs every request (an `httpx.Auth` of `vendor_auth`). The
    client's request hook counts every request on the wire and spends the vendor's budget.
    """

    def __init__(
        self,
        source: str,
        client: httpx.Client,
        *,
        describe_error: ErrorMessage,
        auth: httpx.Auth | None = None,
        policy: RetryPolicy | None = None,
        limiter: RateLimiter | None = None,
        sleep: Callable[[float], None] = time.sleep,
        rand: Callable[[], float] = random.random,
    ) -> None:
        self.source = source
        self.client = client
        self.describe_error = describe_error
        self.auth = auth
        self.policy = policy or RetryPolicy()
        self.limiter = limiter
        self._sleep = sleep
        self._rand = rand
        self._count_lock = threading.Lock()
        self.requests_sent = 0
        # One VendorHttp counts a client's requests: one made again for the same client (a client
        # reopened after close()) takes the place of the one before, rather than counting twice.
        others = [
            hook
            for hook in client.event_hooks.get("request", [])
            if not isinstance(getattr(hook, "__self__", None), VendorHttp)
        ]
        client.event_hooks = {**client.event_hooks, "request": [*others, self._on_the_wire]}

    def _on_the_wire(self, request: httpx.Request) -> None:
        if self.limiter:
            self.limiter.acquire()
        with self._count_lock:
            self.requests_sent += 1

    def _wait(self, state: tenacity.RetryCallState) -> float:
        failure = state.outcome.exception() if state.outcome else None
        delay = failure.retry_after if isinstance(failure, _Transient) else None
        if delay is None:
            delay = self.policy.backoff(state.attempt_number, self._rand)
        return min(delay, self.policy.max_retry_after)

    def request(self, method: str, url: str, *, what: str, **kwargs: Any) -> httpx.Response:
        """Send one logical request; `what` names it in errors (e.g. "GET /subscriptions page 3")."""
        policy = self.policy

        def build() -> httpx.Request:
            # A fresh request per attempt: the auth flow writes its header into the one it sends.
            return self.client.build_request(method, url, timeout=policy.timeout, **kwargs)

        # tenacity loads with the first request, not when a sync function starts: its import (and
        # inspect's) is most of what this module would add to the function's cold start.
        import tenacity

        def log_retry(state: tenacity.RetryCallState) -> None:
            failure = state.outcome.exception() if state.outcome else None
            problem = failure.problem if isinstance(failure, _Transient) else str(failure)
            delay = state.next_action.sleep if state.next_action else 0.0
            log.warning("%s %s, retry %d in %.2fs", self.source, problem, state.attempt_number, delay)

        retrying = tenacity.Retrying(
            stop=tenacity.stop_after_attempt(policy.max_attempts),
            wait=self._wait,
            retry=tenacity.retry_if_exception_type(_Transient),
            sleep=self._sleep,
            before_sleep=log_retry,
            reraise=True,
        )
        try:
            return retrying(self._attempt, build, what)
        except _Transient as exc:
            attempts = retrying.statistics.get("attempt_number", policy.max_attempts)
            if exc.status is not None:
                raise UpstreamError(
                    self.source,
                    f"{exc.problem} after {attempts} attempts: {exc}",
                    status=exc.status,
                    retryable=True,
                ) from None
            raise UpstreamError(
                self.source, f"{exc.problem}, {attempts} attempts", retryable=True
            ) from exc.__cause__

    def _attempt(self, build: Callable[[], httpx.Request], what: str) -> httpx.Response:
        request = build()
        try:
            response = self.client.send(request, auth=self.auth)
        except TokenRequestFailed as failed:
            return self._refuse(failed.response, failed.what)
        except httpx.TimeoutException as exc:
            where = self._what_failed(exc, request, what)
            raise _Transient(f"{where}: timed out after {self.policy.timeout:g}s") from exc
        except httpx.TransportError as exc:
            where = self._what_failed(exc, request, what)
            raise _Transient(f"{where}: connection failed ({type(exc).__name__})") from exc
        if response.status_code < 400:
            return response
        return self._refuse(response, what)

    def _what_failed(self, exc: httpx.TransportError, request: httpx.Request, what: str) -> str:
        # A transport error on the token request (sent inside the auth flow) names the token request.
        try:
            failed: httpx.Request | None = exc.request
        except RuntimeError:  # raised by httpx when the error carries no request
            failed = None
        token_what = getattr(self.auth, "what", None)
        if failed is not None and failed is not request and token_what:
            return str(token_what)
        return what

    def _refuse(self, response: httpx.Response, what: str) -> httpx.Response:
        status = response.status_code
        message = self.describe_error(response)
        if _transient_status(status):
            retry_after = retry_after_seconds(response.headers.get("Retry-After")) if status == 429 else None
            failure = _Transient(f"{what}: HTTP {status}", status=status, retry_after=retry_after)
            failure.args = (message,)
            raise failure
        if status == 401:
            raise UpstreamError(
                self.source,
                f"{what}: credentials rejected (HTTP 401): {message}",
                status=401,
                retryable=False,
            )
        raise UpstreamError(self.source, f"{what}: HTTP {status}: {message}", status=status, retryable=False)
