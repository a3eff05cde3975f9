"""The Datto RMM adapter: sites and devices from the Datto RMM API v2.

Wire facts (vendor OpenAPI "Datto RMM API 2.0.0", the vendor's API v2 help page, and a client
library author's sweep of a live account; see shared/specs/datto-rmm/SOURCES.md):
- The API lives on the account's platform host, `https://<platform>-api.centrastage.net` (concord,
  merlot, pinotage, vidal, zinfandel, syrah); the RMM's Setup page names it.
- OAuth 2.0 password grant: `POST {host}/auth/oauth/token`, form-encoded `grant_type=password`,
  `username=<API key>`, `password=<API secret key>`, the client sent as HTTP Basic
  `public-client:public`. Tokens last 100 hours.
- `GET /api/v2/account/sites` and `GET /api/v2/account/devices` page with `page` and `max` (at most
  250); each page has `pageDetails.nextPageUrl`, empty on the last page.
- 600 reads per rolling 60 seconds per account; beyond it, 429.
- Timestamps (`lastSeen`, ...) are epoch **milliseconds** as JSON numbers (the spec says date-time
  strings; live responses carry numbers).
- `deviceClass` is device, printer, esxihost, rmmnetworkdevice or unknown; `deviceType.category`
  says Desktop, Laptop or Server for agent devices (the values scripts written against live
  accounts filter on); `deleted` (in the recycle bin) and `suspended` devices are listed too.
- The device list has no serial number: the device audit (`GET /api/v2/audit/device/{uid}`,
  `bios.serialNumber`) has it, one request per device. Only devices another RMM in use also has a
  device of that name for are audited (`RmmConnection.match_hostnames`): a serial only matters for
  a machine two RMMs may both see, and it keeps a large account's sync within the read budget.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote, urlsplit

import httpx
from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictStr, field_validator

from trueup.domain.models import Device, DeviceClass, DeviceState, Organization, SkippedRecord
from trueup.errors import InvalidInput, UpstreamError
from trueup.vendors.paging import pages_by_next_url
from trueup.vendors.records import MalformedRecord, RecordReader
from trueup.vendors.resilience import RateLimiter, RetryPolicy, VendorHttp, short_body
from trueup.vendors.rmm import RmmConnection
from trueup.vendors.rmm_http import HttpRmmAdapter
from trueup.vendors.vendor_auth import OAuthBearerAuth, read_bearer_token, token_post

log = logging.getLogger("trueup.vendors.datto")

SOURCE = "datto"

PLATFORMS = ("concord", "merlot", "pinotage", "vidal", "zinfandel", "syrah")
TOKEN_PATH = "/auth/oauth/token"
SITES_PATH = "/api/v2/account/sites"
DEVICES_PATH = "/api/v2/account/devices"
AUDIT_PATH = "/api/v2/audit/device/{uid}"
# The public OAuth client every Datto RMM API user signs in with (the vendor's documented value).
OAUTH_CLIENT = ("public-client", "public")
PAGE_SIZE = 250  # the most `max` allows
TOKEN_LIFETIME = 100 * 3600.0  # used only when a token response leaves `expires_in` out
DEFAULT_RATE_LIMIT = (600, 60.0)
_ACCEPT_JSON = {"Accept": "application/json"}


def resolve_base_url(value: str | None) -> str:
    """The API host for a platform name (`merlot`) or an explicit http(s) URL.

    Datto RMM has no default platform: each account lives on one, shown in its Setup page.
    """
    platforms = ", ".join(PLATFORMS)
    if value is None or not value.strip():
        raise InvalidInput(
            f"Datto RMM needs its platform ({platforms}) or API URL: set DATTO_URL "
            "(the RMM's Setup > Global Settings > API shows it)"
        )
    text = value.strip()
    if text.lower() in PLATFORMS:
        return f"https://{text.lower()}-api.centrastage.net"
    parts = urlsplit(text)
    if parts.scheme in ("http", "https") and parts.hostname and not parts.query and not parts.fragment:
        url = text.rstrip("/")
        # People paste the API URL as the Setup page shows it, with /api at the end.
        return url.removesuffix("/api")
    raise InvalidInput(
        f"Datto RMM URL {text!r} is neither a platform ({platforms}) nor an http(s) URL such as "
        "https://merlot-api.centrastage.net"
    )


# --- Device classes --------------------------------------------------------------------------------

# deviceClass first: everything but agent devices is told by it alone.
_DEVICE_CLASSES: dict[str, DeviceClass] = {
    "esxihost": DeviceClass.VIRTUAL_HOST,
    "printer": DeviceClass.NETWORK,
    "rmmnetworkdevice": DeviceClass.NETWORK,
}
# An agent device (deviceClass "device") by its deviceType.category.
_CATEGORIES: dict[str, DeviceClass] = {
    "desktop": DeviceClass.WORKSTATION,
    "laptop": DeviceClass.WORKSTATION,
    "server": DeviceClass.SERVER,
}


def device_class(datto_class: str | None, category: str | None) -> DeviceClass:
    """Map Datto's `deviceClass` and `deviceType.category` to a DeviceClass (the README's table).

    ESXi hosts are virtual hosts; printers and network devices (monitored over SNMP, without an
    agent) are network; an agent device is a workstation (Desktop, Laptop) or a server (Server) by
    its category. Anything else, including a class or category Datto adds later, is `other`.
    """
    key = (datto_class or "").strip().lower()
    if key in _DEVICE_CLASSES:
        return _DEVICE_CLASSES[key]
    if key == "device":
        return _CATEGORIES.get((category or "").strip().lower(), DeviceClass.OTHER)
    return DeviceClass.OTHER


# --- Wire models -----------------------------------------------------------------------------------


class _WireModel(BaseModel):
    # Tolerant of fields Datto adds; strict on the types of the fields trueup reads.
    model_config = ConfigDict(extra="ignore", frozen=True, populate_by_name=True, defer_build=True)


class DattoSite(_WireModel):
    """One item of `GET /v2/account/sites` (Site)."""

    uid: StrictStr
    name: StrictStr


class DattoDeviceType(_WireModel):
    category: str | None = None
    type: str | None = None

    @field_validator("category", "type", mode="before")
    @classmethod
    def _text(cls, value: Any) -> str | None:
        # Only feeds the device class: an odd value reads as unknown (class other), not as a broken record.
        return value if isinstance(value, str) else None


class DattoDevice(_WireModel):
    """One item of `GET /v2/account/devices` (Device)."""

    uid: StrictStr
    site_uid: StrictStr = Field(alias="siteUid")
    hostname: StrictStr | None = None
    description: str | None = None
    device_class: StrictStr | None = Field(default=None, alias="deviceClass")
    device_type: DattoDeviceType | None = Field(default=None, alias="deviceType")
    last_seen: int | float | str | None = Field(default=None, alias="lastSeen")
    deleted: StrictBool | None = None
    suspended: StrictBool | None = None

    @field_validator("description", mode="before")
    @classmethod
    def _description(cls, value: Any) -> str | None:
        return value if isinstance(value, str) else None

    @field_validator("last_seen", mode="before")
    @classmethod
    def _timestamp(cls, value: Any) -> Any:
        if isinstance(value, bool):
            raise ValueError("is a boolean, not a timestamp")
        return value


_RECORDS = RecordReader(SOURCE, id_key="uid", organization_key="siteUid", log=log)


def prefixed(vendor_id: str) -> str:
    return f"{SOURCE}:{vendor_id}"


def last_seen_utc(value: int | float | str | None) -> datetime | None:
    """`lastSeen` as an aware UTC datetime: epoch milliseconds (what Datto sends) or an ISO date-time
    (what its spec declares). Zero means never."""
    if value is None:
        return None
    if isinstance(value, str):
        text = value.strip()
        if not text:
            return None
        try:
            parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
        except ValueError:
            raise MalformedRecord(
                f"lastSeen {value[:40]!r} is neither epoch milliseconds nor a date-time"
            ) from None
        return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
    if value == 0:
        return None
    try:
        return datetime.fromtimestamp(value / 1000, UTC)
    except (OverflowError, OSError, ValueError) as exc:
        raise MalformedRecord(f"lastSeen {value!r} is not a usable epoch-milliseconds timestamp") from exc


def organization_from_wire(wire: DattoSite) -> Organization:
    name = wire.name.strip()
    if not name:
        raise MalformedRecord("name is empty")
    return Organization(id=prefixed(wire.uid), name=name)


def device_state(wire: DattoDevice) -> DeviceState:
    if wire.deleted:
        return DeviceState.DELETED
    if wire.suspended:
        return DeviceState.SUSPENDED
    return DeviceState.ACTIVE


def device_from_wire(wire: DattoDevice, serial: str | None = None) -> Device:
    name = (wire.hostname or "").strip() or (wire.description or "").strip() or f"device {wire.uid}"
    category = wire.device_type.category if wire.device_type else None
    return Device(
        id=prefixed(wire.uid),
        organization_id=prefixed(wire.site_uid),
        name=name,
        device_class=device_class(wire.device_class, category),
        last_seen=last_seen_utc(wire.last_seen),
        state=device_state(wire),
        serial=serial,
    )


def describe_error(response: httpx.Response) -> str:
    """Datto's own words for a failed response: OAuth's `{error, error_description}` from the token
    endpoint, a `message` or `error` from the API, else a short excerpt or the status phrase."""
    try:
        body = response.json()
    except ValueError:
        body = None
    if isinstance(body, dict):
        error, description = body.get("error"), body.get("error_description")
        if isinstance(error, str) and isinstance(description, str) and description:
            return f"{error}: {description}"
        for key in ("message", "error_description", "error"):
            value = body.get(key)
            if isinstance(value, str) and value.strip():
                return value.strip()[:300]
    return short_body(response) or response.reason_phrase or "no response body"


def _json_object(response: httpx.Response, where: str) -> dict[str, Any]:
    try:
        body = response.json()
    except ValueError as exc:
        raise UpstreamError(
            SOURCE, f"{where}: response is not JSON: {short_body(response, 120)}", retryable=True
        ) from exc
    if not isinstance(body, dict):
        raise UpstreamError(
            SOURCE, f"{where}: expected a JSON object, got {type(body).__name__}", retryable=False
        )
    return body


# --- The adapter -----------------------------------------------------------------------------------


class DattoAdapter(HttpRmmAdapter):
    """Reads one Datto RMM account's sites and devices (implements `RmmAdapter`).

    Both lists are generators that fetch one page at a time. Records that cannot be read are
    yielded as SkippedRecord; vendor failures raise UpstreamError after the retry discipline of
    `VendorHttp`. Agent devices whose hostname is in the connection's `match_hostnames` get their
    serial number from the device audit.
    """

    source = SOURCE
    reads_serials_by_name = True  # one audit request per device

    def __init__(
        self,
        connection: RmmConnection,
        *,
        http: httpx.Client | None = None,
        policy: RetryPolicy | None = None,
        limiter: RateLimiter | None = None,
        page_size: int = PAGE_SIZE,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if not 1 <= page_size <= PAGE_SIZE:
            raise InvalidInput(f"Datto RMM page size must be between 1 and {PAGE_SIZE}, not {page_size}")
        self.base_url = resolve_base_url(connection.base_url)
        self.page_size = page_size
        self.match_hostnames = connection.match_hostnames or frozenset()
        super().__init__(connection.credentials, http)
        token_what = f"POST {TOKEN_PATH}"
        self._client = VendorHttp(
            SOURCE,
            self._http,
            describe_error=self._describe_error,
            auth=OAuthBearerAuth(
                source=SOURCE,
                token_request=self._token_request,
                what=token_what,
                read_token=lambda response: read_bearer_token(
                    response, source=SOURCE, what=token_what, default_lifetime=TOKEN_LIFETIME
                ),
            ),
            policy=policy,
            limiter=limiter or RateLimiter(*DEFAULT_RATE_LIMIT, sleep=sleep),
            sleep=sleep,
        )
        self.audits_read = 0

    def __repr__(self) -> str:
        return f"DattoAdapter(base_url={self.base_url!r}, api_key={self._credentials.client_id!r})"

    def _describe_error(self, response: httpx.Response) -> str:
        return self._redacted(describe_error(response))

    def _token_request(self) -> httpx.Request:
        request = token_post(
            f"{self.base_url}{TOKEN_PATH}",
            timeout=self._client.policy.timeout,
            form={
                "grant_type": "password",
                "username": self._credentials.client_id,
                "password": self._credentials.client_secret,
            },
        )
        # HTTP Basic for the public OAuth client, as httpx writes it.
        return next(httpx.BasicAuth(*OAUTH_CLIENT).auth_flow(request))

    # --- Paging ---

    def _pages(self, path: str, key: str) -> Iterator[list[Any]]:
        def fetch(url: str, where: str) -> tuple[list[Any], str | None]:
            response = self._client.request("GET", url, what=where, headers=_ACCEPT_JSON)
            body = _json_object(response, where)
            items = body.get(key)
            if not isinstance(items, list):
                raise UpstreamError(SOURCE, f"{where}: no `{key}` list in the page", retryable=False)
            details = body.get("pageDetails")
            next_url = details.get("nextPageUrl") if isinstance(details, dict) else None
            if next_url is not None and not isinstance(next_url, str):
                raise UpstreamError(
                    SOURCE, f"{where}: pageDetails.nextPageUrl is not a string", retryable=False
                )
            log.info("datto %s: %s, %d records", path, where, len(items))
            return items, next_url

        first = f"{self.base_url}{path}?max={self.page_size}&page=0"
        return iter(pages_by_next_url(fetch, first, source=SOURCE, path=path))

    # --- RmmAdapter ---

    def organizations(self) -> Iterator[Organization | SkippedRecord]:
        for page in self._pages(SITES_PATH, "sites"):
            for item in page:
                yield self._organization(item)

    def devices(self) -> Iterator[Device | SkippedRecord]:
        for page in self._pages(DEVICES_PATH, "devices"):
            for item in page:
                yield self._device(item)

    def _organization(self, item: Any) -> Organization | SkippedRecord:
        return _RECORDS.read(
            "organization", item, lambda raw: organization_from_wire(DattoSite.model_validate(raw))
        )

    def _device(self, item: Any) -> Device | SkippedRecord:
        return _RECORDS.read("device", item, self._device_from)

    def _device_from(self, item: dict[str, Any]) -> Device:
        wire = DattoDevice.model_validate(item)
        serial = None
        hostname = (wire.hostname or "").strip().casefold()
        if hostname in self.match_hostnames and (wire.device_class or "").lower() == "device":
            serial = self.serial_number(wire.uid)
        return device_from_wire(wire, serial)

    def serial_number(self, device_uid: str) -> str | None:
        """The BIOS serial number from the device's audit; None when the audit has none.

        A device whose audit is missing (404: never audited yet) has no serial; any other failure
        fails the sync, since a serial silently missing could count one machine twice.
        """
        path = AUDIT_PATH.format(uid=quote(device_uid, safe=""))
        where = f"GET {AUDIT_PATH.format(uid=device_uid)}"
        try:
            response = self._client.request("GET", f"{self.base_url}{path}", what=where, headers=_ACCEPT_JSON)
        except UpstreamError as exc:
            if exc.status == 404:
                log.info("datto: device %s has no audit yet, so no serial number", device_uid)
                return None
            raise
        self.audits_read += 1
        body = _json_object(response, where)
        bios = body.get("bios")
        serial = bios.get("serialNumber") if isinstance(bios, dict) else None
        return serial.strip() if isinstance(serial, str) and serial.strip() else None
