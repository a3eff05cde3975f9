"""What every RMM adapter over HTTP has in common: its httpx client (its own, or one it is given),
its `VendorHttp`, the requests it sent, closing, and keeping its secret out of the vendor's words."""

from __future__ import annotations

from types import TracebackType
from typing import Self

import httpx

from trueup.vendors.credentials import ClientCredentials
from trueup.vendors.resilience import VendorHttp


class HttpRmmAdapter:
    """A base for `RmmAdapter`s that talk to their vendor through `VendorHttp` (`self._client`)."""

    _client: VendorHttp

    def __init__(self, credentials: ClientCredentials, http: httpx.Client | None) -> None:
        self._credentials = credentials
        self._owns_http = http is None
        self._http = http if http is not None else httpx.Client()

    @property
    def requests_sent(self) -> int:
        """HTTP requests sent so far, retries and token requests included."""
        return self._client.requests_sent

    def close(self) -> None:
        if self._owns_http:
            self._http.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def _redacted(self, message: str) -> str:
        # A vendor echoing the request back must not carry the secret into logs or errors.
        secret = self._credentials.client_secret
        return message.replace(secret, "***") if secret else message
