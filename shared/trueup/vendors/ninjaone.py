"""The NinjaOne RMM adapter: organizations and devices from the NinjaOne Public API v2.

Wire facts (vendor OpenAPI "NinjaOne Public API 2.0" and responses captured from a live tenant):
- OAuth2 client credentials: `POST {base}/ws/oauth/token`, form-encoded, `scope=monitoring`.
- `GET /v2/organizations` and `GET /v2/devices` return bare JSON arrays and page by id:
  `pageSize` plus `after=<last id of the previous page>`, until an empty page.
- `lastContact` is epoch seconds as a JSON number with a fraction (e.g. `1742412252.744`).
- A device names its role by id (`nodeRoleId`); `GET /v2/roles` (NodeRole: `id`, `name`, `nodeClass`,
  `custom`, ...) gives the names, as one bare JSON array: the spec declares no paging for it.
- A device's `tags` is an array of strings (NodeWithDetailedReferences); the item captured from a
  live tenant has none, so it may be missing.
- `approvalStatus` is `APPROVED` or `PENDING`.
- The spec declares no error body for the API; the token endpoint answers OAuth's
  `{error, error_description}`.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator, Mapping
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

import httpx
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictFloat,
    StrictInt,
    StrictStr,
    ValidationError,
    field_validator,
)

from trueup.domain.models import Device, DeviceClass, DeviceState, Organization, SkippedRecord
from trueup.errors import InvalidInput, UpstreamError
from trueup.vendors.paging import pages_after_id
from trueup.vendors.records import MalformedRecord, RecordReader, describe_validation, readable_id
from trueup.vendors.resilience import RetryPolicy, VendorHttp, short_body
from trueup.vendors.rmm import RmmConnection
from trueup.vendors.rmm_http import HttpRmmAdapter
from trueup.vendors.vendor_auth import OAuthBearerAuth, read_bearer_token, token_post

log = logging.getLogger("trueup.vendors.ninjaone")

SOURCE = "ninjaone"

REGIONS: dict[str, str] = {
    "us": "https://app.ninjarmm.com",
    "eu": "https://eu.ninjarmm.com",
    "ca": "https://ca.ninjarmm.com",
    "oc": "https://oc.ninjarmm.com",
    "us2": "https://us2.ninjarmm.com",
}
DEFAULT_REGION = "us"

TOKEN_PATH = "/ws/oauth/token"
ORGANIZATIONS_PATH = "/v2/organizations"
DEVICES_PATH = "/v2/devices"
# The same list with each device's details (`system.serialNumber` among them): read when serials matter.
DEVICES_DETAILED_PATH = "/v2/devices-detailed"
ROLES_PATH = "/v2/roles"
SCOPE = "monitoring"
# NinjaOne's tokens live 3600s; used only when a token response leaves `expires_in` out.
DEFAULT_TOKEN_LIFETIME = 3600.0
_ACCEPT_JSON = {"Accept": "application/json"}


def resolve_base_url(value: str | None) -> str:
    """The API host for a region key (`us`, `eu`, `ca`, `oc`, `us2`) or an explicit http(s) URL.

    None or a blank string means the default host (`us`, app.ninjarmm.com); a URL loses its
    trailing slash. Anything else raises InvalidInput naming the accepted values.
    """
    if value is None or not value.strip():
        return REGIONS[DEFAULT_REGION]
    text = value.strip()
    region = REGIONS.get(text.lower())
    if region is not None:
        return region
    parts = urlsplit(text)
    if parts.scheme in ("http", "https") and parts.hostname and not parts.query and not parts.fragment:
        return text.rstrip("/")
    regions = ", ".join(REGIONS)
    raise InvalidInput(
        f"NinjaOne URL {text!r} is neither a region ({regions}) nor an http(s) URL such as {REGIONS['eu']}"
    )


# --- Device classes --------------------------------------------------------------------------------

_NODE_CLASSES: dict[str, DeviceClass] = {
    "WINDOWS_WORKSTATION": DeviceClass.WORKSTATION,
    "LINUX_WORKSTATION": DeviceClass.WORKSTATION,
    "MAC": DeviceClass.WORKSTATION,
    "WINDOWS_SERVER": DeviceClass.SERVER,
    "LINUX_SERVER": DeviceClass.SERVER,
    "MAC_SERVER": DeviceClass.SERVER,
    "VMWARE_VM_HOST": DeviceClass.VIRTUAL_HOST,
    "HYPERV_VMM_HOST": DeviceClass.VIRTUAL_HOST,
    "NMS_VM_HOST": DeviceClass.VIRTUAL_HOST,
    "VMWARE_VM_GUEST": DeviceClass.VIRTUAL_GUEST,
    "HYPERV_VMM_GUEST": DeviceClass.VIRTUAL_GUEST,
    "NMS_VIRTUAL_MACHINE": DeviceClass.VIRTUAL_GUEST,
    "ANDROID": DeviceClass.MOBILE,
    "APPLE_IOS": DeviceClass.MOBILE,
    "APPLE_IPADOS": DeviceClass.MOBILE,
}


def device_class(node_class: str | None) -> DeviceClass:
    """Map a NinjaOne `nodeClass` to a DeviceClass.

    The explicit table first; every other `NMS_*` class is an agentless device monitored over the
    network; anything else (CLOUD_MONITOR_TARGET, UNMANAGED_DEVICE, values NinjaOne adds later,
    a missing value) is `other`.
    """
    if not node_class:
        return DeviceClass.OTHER
    key = node_class.strip().upper()
    mapped = _NODE_CLASSES.get(key)
    if mapped is not None:
        return mapped
    if key.startswith("NMS_"):
        return DeviceClass.NETWORK
    return DeviceClass.OTHER


# --- Wire models -----------------------------------------------------------------------------------


class _WireModel(BaseModel):
    # Tolerant of fields NinjaOne adds; strict on the types of the fields trueup reads, so that
    # a string id or a textual lastContact is reported instead of being guessed at.
    model_config = ConfigDict(extra="ignore", frozen=True, populate_by_name=True, defer_build=True)


class NinjaOrganization(_WireModel):
    """One item of `GET /v2/organizations` (brief mode)."""

    id: StrictInt
    name: StrictStr


class NinjaSystem(_WireModel):
    """A device's `system` (DeviceComputerSystem) in `GET /v2/devices-detailed`: its serial numbers."""

    serial_number: str | None = Field(default=None, alias="serialNumber")
    bios_serial_number: str | None = Field(default=None, alias="biosSerialNumber")

    @field_validator("serial_number", "bios_serial_number", mode="before")
    @classmethod
    def _text(cls, value: Any) -> str | None:
        # Only for matching machines across RMMs: an odd value is no serial, not a broken device.
        return value.strip() if isinstance(value, str) and value.strip() else None


class NinjaDevice(_WireModel):
    """One item of `GET /v2/devices` (NodeWithDetailedReferences) or `/v2/devices-detailed`."""

    id: StrictInt
    organization_id: StrictInt = Field(alias="organizationId")
    node_class: StrictStr | None = Field(default=None, alias="nodeClass")
    approval_status: StrictStr | None = Field(default=None, alias="approvalStatus")
    display_name: StrictStr | None = Field(default=None, alias="displayName")
    system_name: StrictStr | None = Field(default=None, alias="systemName")
    dns_name: StrictStr | None = Field(default=None, alias="dnsName")
    last_contact: StrictFloat | None = Field(default=None, alias="lastContact", allow_inf_nan=False)
    offline: bool | None = None
    node_role_id: int | None = Field(default=None, alias="nodeRoleId")
    tags: tuple[str, ...] = ()
    system: NinjaSystem | None = None

    @field_validator("system", mode="before")
    @classmethod
    def _system(cls, value: Any) -> Any:
        return value if isinstance(value, dict) else None

    @field_validator("offline", mode="before")
    @classmethod
    def _unused_flag(cls, value: Any) -> bool | None:
        # Informational only: an odd value here must not cost the device its place in the count.
        return value if isinstance(value, bool) else None

    # Role and tags only feed exclusion rules: an odd value is read as no role / no such tag rather
    # than costing the device its place in the count.
    @field_validator("node_role_id", mode="before")
    @classmethod
    def _role_id(cls, value: Any) -> int | None:
        return value if isinstance(value, int) and not isinstance(value, bool) else None

    @field_validator("tags", mode="before")
    @classmethod
    def _tag_names(cls, value: Any) -> tuple[str, ...]:
        if not isinstance(value, list):
            return ()
        return tuple(tag.strip() for tag in value if isinstance(tag, str) and tag.strip())


class NinjaRole(_WireModel):
    """One item of `GET /v2/roles` (NodeRole)."""

    id: StrictInt
    name: StrictStr


_RECORDS = RecordReader(SOURCE, id_key="id", organization_key="organizationId", log=log)


def prefixed(vendor_id: int | str) -> str:
    return f"{SOURCE}:{vendor_id}"


def _epoch_to_utc(seconds: float | None) -> datetime | None:
    if seconds is None:
        return None
    try:
        return datetime.fromtimestamp(seconds, UTC)
    except (OverflowError, OSError, ValueError) as exc:
        raise MalformedRecord(f"lastContact {seconds!r} is not a usable epoch timestamp") from exc


def organization_from_wire(wire: NinjaOrganization) -> Organization:
    name = wire.name.strip()
    if not name:
        raise MalformedRecord("name is empty")
    return Organization(id=prefixed(wire.id), name=name)


def device_name(wire: NinjaDevice) -> str:
    """displayName, else systemName, else dnsName, else `device <id>`."""
    for candidate in (wire.display_name, wire.system_name, wire.dns_name):
        if candidate and candidate.strip():
            return candidate.strip()
    return f"device {wire.id}"


def device_from_wire(wire: NinjaDevice, state: DeviceState, roles: Mapping[int, str] | None = None) -> Device:
    """The domain device; `roles` names role ids (`GET /v2/roles`): an id not in it gives no role."""
    role = None
    if wire.node_role_id is not None and roles:
        role = roles.get(wire.node_role_id)
    return Device(
        id=prefixed(wire.id),
        organization_id=prefixed(wire.organization_id),
        name=device_name(wire),
        device_class=device_class(wire.node_class),
        last_seen=_epoch_to_utc(wire.last_contact),
        state=state,
        role=role,
        tags=list(wire.tags),
        serial=(wire.system.serial_number or wire.system.bios_serial_number) if wire.system else None,
    )


_APPROVAL_STATES: dict[str, DeviceState] = {
    "APPROVED": DeviceState.ACTIVE,
    "PENDING": DeviceState.PENDING,
}


def describe_error(response: httpx.Response) -> str:
    """NinjaOne's own words for a failed response.

    The token endpoint answers OAuth's `{error, error_description}`. The API spec declares no error
    body, so the keys seen in practice (`errorMessage`, `message`, `resultCode`) are read when
    present; otherwise a short excerpt of the body, or the status phrase for an empty body.
    """
    try:
        body = response.json()
    except ValueError:
        body = None
    if isinstance(body, dict):
        error, description = body.get("error"), body.get("error_description")
        if isinstance(error, str) and isinstance(description, str) and description:
            return f"{error}: {description}"
        for key in ("error_description", "errorMessage", "message", "error", "resultCode"):
            value = body.get(key)
            if isinstance(value, str) and value.strip():
                return value.strip()[:300]
    excerpt = short_body(response)
    if excerpt:
        return excerpt
    return response.reason_phrase or "no response body"


def _json_array(response: httpx.Response, where: str) -> list[Any]:
    try:
        body = response.json()
    except ValueError as exc:
        raise UpstreamError(
            SOURCE,
            f"{where}: response is not JSON: {short_body(response, 120)}",
            status=response.status_code,
            retryable=True,
        ) from exc
    if not isinstance(body, list):
        raise UpstreamError(
            SOURCE,
            f"{where}: expected a JSON array, got {type(body).__name__}",
            status=response.status_code,
            retryable=False,
        )
    return body


# --- The adapter -----------------------------------------------------------------------------------


class NinjaOneAdapter(HttpRmmAdapter):
    """Reads one NinjaOne tenant's organizations and devices (implements `RmmAdapter`).

    Both lists are generators that fetch one page at a time, so memory stays flat however large
    the inventory. Records that cannot be read are yielded as SkippedRecord; vendor failures raise
    UpstreamError after the retry discipline of `VendorHttp`.
    """

    source = SOURCE
    reads_serials_by_name = False  # /v2/devices-detailed gives every device's serial

    def __init__(
        self,
        connection: RmmConnection,
        *,
        http: httpx.Client | None = None,
        policy: RetryPolicy | None = None,
        page_size: int = 1000,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if page_size < 1:
            raise InvalidInput(f"NinjaOne page size must be at least 1, not {page_size}")
        self.base_url = resolve_base_url(connection.base_url)
        # With several RMMs in use, the detailed list: the same pages, with each device's serial.
        self.devices_path = DEVICES_PATH if connection.match_hostnames is None else DEVICES_DETAILED_PATH
        self.page_size = page_size
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
                    response, source=SOURCE, what=token_what, default_lifetime=DEFAULT_TOKEN_LIFETIME
                ),
            ),
            policy=policy,
            sleep=sleep,
        )
        self._unknown_approval: set[str] = set()
        self._roles: dict[int, str] | None = None
        self._unknown_roles: set[int] = set()

    def __repr__(self) -> str:
        return f"NinjaOneAdapter(base_url={self.base_url!r}, client_id={self._credentials.client_id!r})"

    # --- OAuth ---

    def _describe_error(self, response: httpx.Response) -> str:
        return self._redacted(describe_error(response))

    def _token_request(self) -> httpx.Request:
        return token_post(
            f"{self.base_url}{TOKEN_PATH}",
            timeout=self._client.policy.timeout,
            form={
                "grant_type": "client_credentials",
                "client_id": self._credentials.client_id,
                "client_secret": self._credentials.client_secret,
                "scope": SCOPE,
            },
        )

    # --- Paging ---

    def _pages(self, path: str) -> Iterator[list[Any]]:
        """Every page of a `pageSize` + `after` list, checked to move forward."""

        def fetch(after: int | None, where: str) -> list[Any]:
            params: dict[str, int] = {"pageSize": self.page_size}
            if after is not None:
                params["after"] = after
            response = self._client.request(
                "GET", f"{self.base_url}{path}", what=where, params=params, headers=_ACCEPT_JSON
            )
            return _json_array(response, where)

        return pages_after_id(fetch, source=SOURCE, path=path)

    # --- RmmAdapter ---

    def organizations(self) -> Iterator[Organization | SkippedRecord]:
        for page in self._pages(ORGANIZATIONS_PATH):
            for item in page:
                yield self._organization(item)

    def devices(self) -> Iterator[Device | SkippedRecord]:
        roles = self.roles()
        for page in self._pages(self.devices_path):
            for item in page:
                yield self._device(item, roles)

    def roles(self) -> dict[int, str]:
        """Device role names by id (`GET /v2/roles`), read once per adapter, i.e. once per sync.

        A failure fails the sync like any other list: without the names, exclusion rules by role
        would silently stop applying and the excluded devices would be counted. A role record that
        cannot be read is left out (devices with that role get none) and logged.
        """
        if self._roles is not None:
            return self._roles
        where = f"GET {ROLES_PATH}"
        response = self._client.request(
            "GET", f"{self.base_url}{ROLES_PATH}", what=where, headers=_ACCEPT_JSON
        )
        roles: dict[int, str] = {}
        for item in _json_array(response, where):
            try:
                role = NinjaRole.model_validate(item)
            except ValidationError as exc:
                role_id = readable_id(item.get("id")) if isinstance(item, dict) else None
                log.warning("ninjaone: ignored role %s: %s", role_id, describe_validation(exc))
                continue
            if role.name.strip():
                roles.setdefault(role.id, role.name.strip())
        log.info("ninjaone %s: %d roles", ROLES_PATH, len(roles))
        self._roles = roles
        return roles

    def _organization(self, item: Any) -> Organization | SkippedRecord:
        return _RECORDS.read(
            "organization", item, lambda raw: organization_from_wire(NinjaOrganization.model_validate(raw))
        )

    def _device(self, item: Any, roles: Mapping[int, str]) -> Device | SkippedRecord:
        return _RECORDS.read("device", item, lambda raw: self._device_from(raw, roles))

    def _device_from(self, item: dict[str, Any], roles: Mapping[int, str]) -> Device:
        wire = NinjaDevice.model_validate(item)
        role_id = wire.node_role_id
        if role_id is not None and role_id not in roles and role_id not in self._unknown_roles:
            # No name is guessed: the device has no role, and rules by role pass it by.
            self._unknown_roles.add(role_id)
            log.warning(
                "ninjaone: nodeRoleId %d is not among %s; such devices have no role", role_id, ROLES_PATH
            )
        return device_from_wire(wire, self._state(wire.approval_status), roles)

    def _state(self, approval_status: str | None) -> DeviceState:
        key = (approval_status or "").strip().upper()
        state = _APPROVAL_STATES.get(key)
        if state is not None:
            return state
        # Not counted, but still listed: an unknown status must not inflate or silently drop counts.
        if key not in self._unknown_approval:
            self._unknown_approval.add(key)
            log.warning(
                "ninjaone: unknown approvalStatus %r; such devices are treated as pending", approval_status
            )
        return DeviceState.PENDING
