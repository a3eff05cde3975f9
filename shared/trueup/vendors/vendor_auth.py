"""How trueup signs in to a vendor: one `httpx.Auth` per style.

- `OAuthBearerAuth`: an OAuth token endpoint (client credentials as JSON or a form, or the password
  grant), the token kept for its lifetime and shared by every thread, one fresh token after a 401.
- `ApiKeyAuth`: a fixed key in a header.

The token request is sent by httpx itself as part of the auth flow, so it passes through the same
client (event hooks, transport) as the API requests. A failed token request raises `TokenRequestFailed`
with the response; `VendorHttp` decides, with the rules it applies to every response, whether it is
worth another attempt.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Generator, Mapping
from typing import Any

import httpx

from trueup.errors import UpstreamError

log = logging.getLogger("trueup.vendors")


class TokenRequestFailed(Exception):
    """The token endpoint answered an error status; `what` names the token request in messages."""

    def __init__(self, response: httpx.Response, what: str) -> None:
        super().__init__(f"{what}: HTTP {response.status_code}")
        self.response = response
        self.what = what


class TokenCache:
    """One access token and when to stop using it (thread-safe).

    A token is dropped `refresh_margin` seconds before it expires, or half-way through its life
    when that is shorter, so a short-lived token is still reused rather than fetched every time.
    """

    def __init__(self, *, refresh_margin: float = 60.0, clock: Callable[[], float] = time.monotonic) -> None:
        self._margin = refresh_margin
        self._clock = clock
        self._token: str | None = None
        self._expires_at = 0.0

    def current(self) -> str | None:
        if self._token is None or self._clock() >= self._expires_at:
            return None
        return self._token

    def store(self, token: str, lifetime: float) -> None:
        margin = min(self._margin, lifetime / 2)
        self._token, self._expires_at = token, self._clock() + lifetime - margin

    def invalidate(self, token: str) -> None:
        """Forget `token` (after a 401) unless another thread already replaced it."""
        if self._token == token:
            self._token = None


def read_bearer_token(
    response: httpx.Response, *, source: str, what: str, default_lifetime: float
) -> tuple[str, float]:
    """(access_token, lifetime in seconds) from an OAuth token response.

    Problems are described without quoting the body: it may hold a token under another name.
    """
    try:
        body = response.json()
    except ValueError:
        kind = response.headers.get("Content-Type", "no content type")
        raise UpstreamError(
            source,
            f"{what}: token response is not JSON ({kind}, {len(response.content)} bytes)",
            status=response.status_code,
            retryable=True,
        ) from None
    if not isinstance(body, dict):
        raise UpstreamError(
            source,
            f"{what}: token response is not a JSON object",
            status=response.status_code,
            retryable=False,
        )
    token = body.get("access_token")
    if not isinstance(token, str) or not token:
        fields = ", ".join(sorted(str(key) for key in body)) or "none"
        raise UpstreamError(
            source,
            f"{what}: token response has no access_token (fields: {fields})",
            status=response.status_code,
            retryable=False,
        )
    token_type = body.get("token_type")
    if isinstance(token_type, str) and token_type.lower() != "bearer":
        raise UpstreamError(
            source,
            f"{what}: unexpected token_type {token_type[:20]!r}, expected Bearer",
            status=response.status_code,
            retryable=False,
        )
    expires_in = body.get("expires_in")
    if isinstance(expires_in, int | float) and not isinstance(expires_in, bool) and expires_in > 0:
        lifetime = float(expires_in)
    else:
        log.warning(
            "%s: the token response has no usable expires_in; assuming %.0fs", source, default_lifetime
        )
        lifetime = default_lifetime
    # Nothing of the token and nothing of the credentials: they stay out of the logs.
    log.info("%s: access token obtained (expires in %.0fs)", source, lifetime)
    return token, lifetime


class OAuthBearerAuth(httpx.Auth):
    """`Authorization: Bearer` from an OAuth token endpoint, shared by every request of one client.

    `token_request` builds the request for a new token (the grant and how it carries the
    credentials are the vendor's); `read_token` reads the answer. One thread fetches while the
    others wait for its token. A 401 on an API request drops the token it used and retries that
    request once with a fresh one; a second 401 is returned, for the caller to report.
    """

    requires_response_body = True

    def __init__(
        self,
        *,
        source: str,
        token_request: Callable[[], httpx.Request],
        what: str,
        read_token: Callable[[httpx.Response], tuple[str, float]],
        clock: Callable[[], float] = time.monotonic,
        refresh_margin: float = 60.0,
    ) -> None:
        self.source = source
        self.what = what
        self._token_request = token_request
        self._read_token = read_token
        self._cache = TokenCache(refresh_margin=refresh_margin, clock=clock)
        self._lock = threading.Lock()
        self.tokens_fetched = 0

    def _token(self, stale: str | None = None) -> Generator[httpx.Request, httpx.Response, str]:
        # The lock is held across the token request (sent by httpx in this same thread), so the other
        # threads wait for this token instead of each asking for one.
        with self._lock:
            if stale is not None:
                self._cache.invalidate(stale)
            token = self._cache.current()
            if token is not None:
                return token
            response = yield self._token_request()
            self.tokens_fetched += 1
            if response.status_code >= 400:
                raise TokenRequestFailed(response, self.what)
            token, lifetime = self._read_token(response)
            self._cache.store(token, lifetime)
            return token

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        # httpx drives this flow (reading each response first, as `requires_response_body` asks);
        # the lock in `_token` makes it for synchronous clients only, which is all trueup uses.
        token = yield from self._token()
        request.headers["Authorization"] = f"Bearer {token}"
        response = yield request
        if response.status_code == 401:
            log.info(
                "%s %s %s: 401, refreshing the access token once",
                self.source,
                request.method,
                request.url.path,
            )
            token = yield from self._token(stale=token)
            # A new request rather than the sent one changed: what was sent stays as it was sent.
            again = httpx.Request(
                request.method,
                request.url,
                headers=request.headers,
                content=request.content,
                extensions=request.extensions,
            )
            again.headers["Authorization"] = f"Bearer {token}"
            yield again


def token_post(
    url: str,
    *,
    timeout: float,
    form: Mapping[str, str] | None = None,
    json: Any = None,
    headers: Mapping[str, str] | None = None,
) -> httpx.Request:
    """A token request: a POST carrying a form or a JSON body, asking for JSON back.

    It is built outside the client, so it carries its own timeout (httpx's transport has none).
    """
    return httpx.Request(
        "POST",
        url,
        data=form,
        json=json,
        headers={"Accept": "application/json", **(headers or {})},
        extensions={"timeout": httpx.Timeout(timeout).as_dict()},
    )


class ApiKeyAuth(httpx.Auth):
    """A fixed API key in a header (e.g. Atera's `X-API-KEY`). There is nothing to refresh."""

    def __init__(self, header: str, key: str) -> None:
        self.header = header
        self._key = key

    def __repr__(self) -> str:
        return f"ApiKeyAuth(header={self.header!r}, key='***')"

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        request.headers[self.header] = self._key
        yield request
