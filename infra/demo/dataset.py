"""The demo data set, as the vendors would send it (wire-format dicts, vendor field names)."""

from __future__ import annotations

import random
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

WireRecord = dict[str, Any]


@dataclass
class DemoDataset:
    """Everything the demo upstreams serve. Lists are in id order; records are vendor JSON objects."""

    pax8_companies: list[WireRecord] = field(default_factory=list)
    pax8_products: list[WireRecord] = field(default_factory=list)
    pax8_subscriptions: list[WireRecord] = field(default_factory=list)
    ninjaone_organizations: list[WireRecord] = field(default_factory=list)
    ninjaone_devices: list[WireRecord] = field(default_factory=list)
    ninjaone_roles: list[WireRecord] = field(default_factory=list)  # GET /v2/roles: one list, not paged
    # GET /v2/devices-detailed adds each device's `system` (serial numbers) to /v2/devices' records
    ninjaone_systems: dict[int, WireRecord] = field(default_factory=dict)
    datto_sites: list[WireRecord] = field(default_factory=list)
    datto_devices: list[WireRecord] = field(default_factory=list)
    # GET /v2/audit/device/{uid}, by device uid (a device without one answers 404: never audited)
    datto_audits: dict[str, WireRecord] = field(default_factory=dict)


# --- The demo story ------------------------------------------------------------------------------
#
# About forty clients of a fictional MSP, each written out below so that the answers trueup should
# give can be worked out by hand (tests/integration/test_demo_reconciliation.py does). Devices are
# listed per RMM organization as counts per kind:
#   ws  Windows/Mac/Linux workstations, seen in the last few days      srv  servers, seen recently
#   stale  workstations last seen 35-200 days ago    never  workstations never seen (no lastContact)
#   pending  workstations awaiting approval          network  agentless NMS_* devices
#   vguest  virtual machines (agentless guests)      vhost  hypervisor hosts   mobile  phones/tablets
# Subscriptions are (product key, quantity, status, billing term).

EDR_WS, EDR_SRV, BACKUP, S1 = "huntress-ws", "huntress-srv", "acronis", "sentinelone"
M365, EXO, KEEPER, PROOFPOINT, ITDR = "m365", "exchange", "keeper", "proofpoint", "itdr"

PRODUCTS: dict[str, tuple[str, str]] = {
    EDR_WS: ("Huntress Managed EDR - Workstation", "Huntress"),
    EDR_SRV: ("Huntress Managed EDR - Server", "Huntress"),
    BACKUP: ("Acronis Cyber Protect Cloud", "Acronis"),
    S1: ("SentinelOne Control", "SentinelOne"),
    M365: ("Microsoft 365 Business Premium", "Microsoft"),
    EXO: ("Exchange Online (Plan 1)", "Microsoft"),
    KEEPER: ("Keeper Business", "Keeper Security"),
    PROOFPOINT: ("Proofpoint Essentials - Business", "Proofpoint"),
    ITDR: ("Huntress Managed ITDR", "Huntress"),
}

# What each product costs per licence and month, in US dollars: (price billed to the client, cost
# paid to Pax8). A longer term is paid for the whole term at a discount (ANNUAL_DISCOUNT off twelve
# months), as Pax8 prices NCE-style annual commitments.
PRICES: dict[str, tuple[str, str]] = {
    EDR_WS: ("6.50", "4.50"),
    EDR_SRV: ("12.00", "8.00"),
    BACKUP: ("8.00", "5.50"),
    S1: ("7.00", "5.00"),
    M365: ("26.40", "22.00"),
    EXO: ("4.80", "4.00"),
    KEEPER: ("4.50", "3.00"),
    PROOFPOINT: ("3.75", "2.50"),
    ITDR: ("5.00", "3.50"),
}
ANNUAL_DISCOUNT = Decimal("0.9")
# Clients billed in another currency than the MSP's US dollars (the same figures, in that currency).
CURRENCIES: dict[str, str] = {"Fjord Analytics GmbH": "EUR"}
# Clients whose subscriptions Pax8 sends without a price (a product priced by hand, off the catalogue).
UNPRICED: frozenset[str] = frozenset({"Zenith Media"})

Sub = tuple[str, int, str, str]
Devices = dict[str, int]


@dataclass(frozen=True)
class DemoClient:
    company: str | None  # Pax8 company name; None: an RMM organization with no Pax8 company
    organizations: dict[str, Devices]  # NinjaOne organization name -> device counts per kind
    subscriptions: tuple[Sub, ...] = ()
    malformed_subscription: bool = False  # one extra subscription record Pax8 sends unreadable
    malformed_device: bool = False  # one extra device record NinjaOne sends unreadable


def _s(product: str, quantity: int, status: str = "Active", term: str = "Monthly") -> Sub:
    return (product, quantity, status, term)


CLIENTS: tuple[DemoClient, ...] = (
    DemoClient(
        "Acme Dental Group",
        {"Acme Dental Group": {"ws": 14, "srv": 1}},
        (_s(EDR_WS, 12), _s(EDR_SRV, 1), _s(M365, 20)),
    ),
    DemoClient(
        "Brightline Logistics, LLC",
        {"Brightline Logistics": {"ws": 33, "srv": 2, "stale": 4}},
        (_s(EDR_WS, 30, term="Annual"), _s(EDR_WS, 5), _s(BACKUP, 35), _s(M365, 30), _s(PROOFPOINT, 30)),
    ),
    DemoClient(
        "Cedar & Pine Architects",
        {"Cedar and Pine Architects": {"ws": 6, "pending": 2}},
        (_s(EDR_WS, 10, term="Annual"), _s(EXO, 8)),
    ),
    DemoClient(
        "Contoso Ltd",
        {"Contoso": {"ws": 16, "srv": 2}, "Contoso - Denver": {"ws": 4}},
        (_s(EDR_WS, 20), _s(EDR_SRV, 2), _s(M365, 25)),
    ),
    DemoClient("Dunmore Veterinary Clinic", {"Dunmore Vet Clinic": {"ws": 8}}, (_s(EDR_WS, 8),)),
    DemoClient("Evergreen Family Practice", {}, (_s(EDR_WS, 5), _s(M365, 6))),
    DemoClient(
        "Fjord Analytics GmbH",
        {"Fjord Analytics": {"ws": 10, "srv": 1, "vguest": 3, "vhost": 1}},
        (_s(S1, 12), _s(ITDR, 12)),
    ),
    DemoClient(
        "Granite Peak Construction Inc.",
        {"Granite Peak Construction": {"ws": 27, "network": 5, "mobile": 6}},
        (_s(EDR_WS, 25), _s(BACKUP, 20), _s(M365, 30)),
    ),
    DemoClient("Harbor Point Marina", {"Harbor Point Marina": {"ws": 6}}, (_s(EDR_WS, 6, "Trial", "Trial"),)),
    DemoClient("Ironwood Legal Partners", {"Ironwood Legal": {"ws": 9}}, (_s(BACKUP, 9), _s(KEEPER, 9))),
    DemoClient(
        "Juniper Health Co.",
        {"Juniper Health": {"ws": 17, "srv": 2, "never": 3}},
        (_s(EDR_WS, 18), _s(EDR_SRV, 2), _s(BACKUP, 20)),
    ),
    DemoClient("Keystone Accounting", {"Keystone Accounting": {"ws": 7}}, (_s(EDR_WS, 7), _s(KEEPER, 7))),
    DemoClient(
        "Lakeside Montessori School",
        {"Lakeside Montessori School": {"ws": 15}},
        (_s(EDR_WS, 15, "Cancelled"), _s(EDR_WS, 12)),
    ),
    DemoClient("Maple Street Bakery", {"Maple Street Bakery": {"ws": 3}}, (_s(EDR_WS, 4, "PendingCancel"),)),
    DemoClient(
        "Northwind Traders",
        {"Northwind Traders": {"ws": 44, "srv": 3}},
        (_s(S1, 40, term="Annual"), _s(M365, 50)),
    ),
    DemoClient("Oakridge Dental", {"Oakridge Dental": {"ws": 9}}, (_s(EDR_WS, 9), _s(BACKUP, 9))),
    DemoClient(
        "Pinnacle Insurance Group",
        {"Pinnacle Insurance Group": {"ws": 48, "srv": 4, "stale": 6}},
        (_s(EDR_WS, 50), _s(EDR_SRV, 4), _s(BACKUP, 54), _s(M365, 60)),
    ),
    DemoClient("Quarry Lane Vets", {"Quarry Lane Vets": {"ws": 11}}, (_s(EDR_WS, 11),)),
    DemoClient(
        "Redwood Financial Advisors",
        {"Redwood Financial Advisors": {"ws": 20}},
        (_s(EDR_WS, 14), _s(PROOFPOINT, 14)),
    ),
    DemoClient("Summit & Co", {"Summit": {"ws": 10}}, (_s(BACKUP, 10),)),
    DemoClient(
        "Tidewater Engineering",
        {"Tidewater Engineering": {"ws": 22, "srv": 3}},
        (_s(EDR_WS, 22), _s(EDR_SRV, 3), _s(BACKUP, 24), _s(S1, 25)),
    ),
    DemoClient("Union Street Pharmacy", {"Union Street Pharmacy": {"ws": 2, "pending": 1}}, (_s(EDR_WS, 5),)),
    DemoClient("Valley Orthopedics", {"Valley Orthopedics": {"ws": 12, "srv": 2}}, (_s(BACKUP, 16),)),
    DemoClient(
        "Westbrook Realty", {"Westbrook Realty": {"ws": 10}}, (_s(EDR_WS, 10),), malformed_subscription=True
    ),
    DemoClient(
        "Xavier Consulting", {"Xavier Consulting": {"ws": 3}}, (_s(EDR_WS, 3),), malformed_device=True
    ),
    DemoClient("Yellowstone Outfitters", {"Yellowstone Outfitters": {"ws": 9}}, (_s(EDR_WS, 8),)),
    DemoClient("Zenith Media", {"Zenith Media": {"ws": 6}}, (_s(S1, 6),)),
    DemoClient(
        "Alder Creek Brewing", {"Alder Creek Brewing Company": {"ws": 12, "vguest": 4}}, (_s(EDR_WS, 12),)
    ),
    DemoClient("Bluebird Pediatrics", {"Bluebird Pediatrics": {"ws": 10}}, (_s(M365, 12), _s(KEEPER, 12))),
    DemoClient(None, {"Internal IT - Lab": {"ws": 5}}),
    DemoClient("Delmar Law", {"Delmar Law": {"ws": 6, "stale": 2}}, (_s(EDR_WS, 6), _s(BACKUP, 6))),
    DemoClient("Eastgate Church", {"Eastgate Church": {"ws": 4}}, (_s(EDR_WS, 4),)),
    DemoClient("Foxglove Florists", {"Foxglove Florists": {"ws": 5}}, (_s(EDR_WS, 3),)),
    DemoClient("Greenleaf Accounting", {"Greenleaf Accounting": {"ws": 7}}, (_s(EDR_WS, 7),)),
    DemoClient("Greenleaf Accounting Pty Ltd", {}, (_s(M365, 3, "Cancelled"),)),
    DemoClient(
        "Hillcrest Senior Living",
        {"Hillcrest Senior Living": {"ws": 41, "srv": 5, "network": 8, "mobile": 10}},
        (_s(EDR_WS, 40), _s(EDR_SRV, 5), _s(BACKUP, 45), _s(M365, 45)),
    ),
    DemoClient("Ivy League Tutoring", {"Ivy League Tutoring": {"stale": 2}}, (_s(EDR_WS, 2),)),
    DemoClient("Jasper Creek Winery", {"Jasper Creek Winery": {"ws": 8}}, (_s(S1, 8),)),
    DemoClient("Kingfisher Marine", {"Kingfisher Marine": {"ws": 13}}, (_s(EDR_WS, 10),)),
    DemoClient(
        "Lumen Optometry", {"Lumen Optometry": {"ws": 5}}, (_s(EDR_WS, 5, term="Annual"), _s(BACKUP, 3))
    ),
    DemoClient("Meridian Title & Escrow", {"Meridian Title and Escrow": {"ws": 9}}, (_s(EDR_WS, 9),)),
)

# Datto RMM (TRUEUP_RMM=ninjaone,datto): the MSP still runs the RMM of a practice it took over.
# Valley Orthopedics keeps its front desk in Datto RMM: three desktops, one of which (VO-PC-001) still
# has its NinjaOne agent too. With both RMMs: 12 workstations and 2 servers in NinjaOne, 3 desktops in
# Datto, one machine in both (the same serial): 16 devices for 16 Acronis licences, matched (with
# NinjaOne alone: 14, over-licensed by 2). Site name -> (hostname, Datto deviceType.category).
DATTO_SITES: dict[str, tuple[tuple[str, str], ...]] = {
    "Valley Orthopedics": (("VO-FRONT-01", "Desktop"), ("VO-FRONT-02", "Laptop"), ("VO-PC-001", "Desktop")),
}

_NS = uuid.UUID("6f1c3c1e-4c8e-4a57-9d7e-2b7f3f0e9a11")
_NODE_CLASSES = {
    "ws": ("WINDOWS_WORKSTATION", "WINDOWS_WORKSTATION", "WINDOWS_WORKSTATION", "MAC", "LINUX_WORKSTATION"),
    "srv": ("WINDOWS_SERVER", "WINDOWS_SERVER", "LINUX_SERVER"),
    "stale": ("WINDOWS_WORKSTATION", "MAC"),
    "never": ("WINDOWS_WORKSTATION",),
    "pending": ("WINDOWS_WORKSTATION",),
    "network": ("NMS_SWITCH", "NMS_FIREWALL", "NMS_PRINTER", "NMS_WAP"),
    "vguest": ("VMWARE_VM_GUEST", "HYPERV_VMM_GUEST"),
    "vhost": ("VMWARE_VM_HOST",),
    "mobile": ("APPLE_IOS", "ANDROID", "APPLE_IPADOS"),
}
_NAME_PREFIX = {"srv": "SRV", "network": "NET", "vguest": "VM", "vhost": "ESX", "mobile": "MOB"}
# NinjaOne device roles (GET /v2/roles): a built-in role per node class, named after it, and one
# custom role, as id -> (name, nodeClass, custom). A device names its role by id (`nodeRoleId`).
_BUILT_IN_ROLES = (
    "WINDOWS_WORKSTATION",
    "WINDOWS_SERVER",
    "MAC",
    "LINUX_WORKSTATION",
    "LINUX_SERVER",
    "VMWARE_VM_HOST",
    "VMWARE_VM_GUEST",
    "HYPERV_VMM_GUEST",
    "APPLE_IOS",
    "APPLE_IPADOS",
    "ANDROID",
    "NMS_SWITCH",
    "NMS_FIREWALL",
    "NMS_PRINTER",
    "NMS_WAP",
)
DOMAIN_CONTROLLER_ROLE = 101  # the role of the first server of each organization
_ROLES: dict[int, tuple[str, str, bool]] = {
    **{i: (node_class, node_class, False) for i, node_class in enumerate(_BUILT_IN_ROLES, start=1)},
    DOMAIN_CONTROLLER_ROLE: ("Domain Controller", "WINDOWS_SERVER", True),
}
_ROLES_CREATED = datetime(2021, 3, 1, 9, 0, tzinfo=UTC)
_BUILT_IN_ROLE = {node_class: i for i, node_class in enumerate(_BUILT_IN_ROLES, start=1)}
# Device tags, by organization (and kind and position): a lab, and two loaner laptops a client is not
# billed for; everything else is untagged.
LAB_TAG, NOT_BILLABLE_TAG = "lab", "not-billable"
_FILLER_VENDORS = (
    "Microsoft",
    "Adobe",
    "Dropbox",
    "Zoom",
    "Cisco",
    "Google",
    "Intuit",
    "Autodesk",
    "Dell",
    "Lenovo",
)
_FILLER_KINDS = ("Standard", "Premium", "Business", "Enterprise", "Essentials", "Professional")


def _pricing(company: str, product: str, term: str) -> dict[str, Any]:
    """A subscription's price fields as Pax8 sends them: per unit and per billing term (numbers)."""
    if company in UNPRICED or term not in ("Monthly", "Annual"):
        return {}
    price, cost = (Decimal(v) for v in PRICES[product])
    if term == "Annual":
        price, cost = (round(12 * v * ANNUAL_DISCOUNT, 2) for v in (price, cost))
    return {"price": float(price), "partnerCost": float(cost), "currencyCode": CURRENCIES.get(company, "USD")}


def _annual_commitment(start: datetime, now: datetime, n: int, k: int) -> dict[str, Any]:
    """An annual commitment renewed each year since `start`: it ends at the next anniversary."""
    years = max(1, now.year - start.year)
    end = start.replace(year=start.year + years)
    while end <= now:
        end = end.replace(year=end.year + 1)
    return {
        "endDate": end.strftime("%Y-%m-%d"),
        "commitmentTerm": {
            "id": _uuid("commitment", f"{n}:{k}"),
            "term": "1-Year",
            "endDate": end.strftime("%Y-%m-%dT%H:%M:%SZ"),
        },
    }


def _uuid(kind: str, key: object) -> str:
    return str(uuid.uuid5(_NS, f"{kind}:{key}"))


def _pax8_offset_time(moment: datetime) -> str:
    """Pax8's third date format: milliseconds and a colon-less offset, e.g. 2023-08-11T11:33:12.314-0600."""
    local = moment.astimezone(timezone(timedelta(hours=-6)))
    return local.strftime("%Y-%m-%dT%H:%M:%S.") + f"{local.microsecond // 1000:03d}" + local.strftime("%z")


# One generated client in ten is named differently in the RMM, as at a real MSP: unmapped until a
# person accepts the suggestion, so that large data sets have thousands of names to compare.
RENAMED_EVERY = 10


def _generated_client(index: int, devices_per_client: int, rng: random.Random) -> DemoClient:
    """A synthetic client for large data sets: EDR and backup near its device count, plus per-user seats."""
    name = f"Client {index:05d} Services"
    organization = f"Client {index:05d} Svcs - Main Office" if index % RENAMED_EVERY == 3 else name
    ws = max(devices_per_client - devices_per_client // 10, 0)
    srv = devices_per_client - ws
    stale = rng.randint(0, 2)
    counts = {"ws": max(ws - stale, 0), "srv": srv, "stale": stale}
    edr = max(ws + rng.randint(-2, 2), 1)
    return DemoClient(
        name,
        {organization: counts},
        (
            _s(EDR_WS, edr),
            _s(EDR_SRV, max(srv, 1)),
            _s(BACKUP, devices_per_client + rng.randint(-1, 1)),
            _s(M365, devices_per_client),
            _s(KEEPER, devices_per_client),
        ),
    )


def build_dataset(
    clients: int | None = None, devices_per_client: int = 50, *, now: datetime | None = None, seed: int = 7
) -> DemoDataset:
    """The demo data set as Pax8 and NinjaOne would send it.

    Up to `len(CLIENTS)` clients come from the hand-written story above (device counts as written);
    beyond that, synthetic clients with `devices_per_client` devices each are added, so the same
    generator serves the large benchmarks. Device "last contact" times are relative to `now`.
    """
    now = now or datetime.now(UTC)
    clients = len(CLIENTS) if clients is None else clients
    rng = random.Random(seed)
    story = list(CLIENTS[:clients])
    story += [_generated_client(i, devices_per_client, rng) for i in range(len(story), clients)]

    data = DemoDataset()
    created = datetime(2021, 3, 1, 9, 30, tzinfo=UTC)
    for key, (name, vendor) in PRODUCTS.items():
        data.pax8_products.append(_product(_uuid("product", key), name, vendor, key))
    for i in range(240):  # the rest of a Pax8 catalogue: products nobody here subscribes to
        vendor = _FILLER_VENDORS[i % len(_FILLER_VENDORS)]
        name = f"{vendor} Cloud Suite {_FILLER_KINDS[i % len(_FILLER_KINDS)]} {i // len(_FILLER_VENDORS) + 1}"
        data.pax8_products.append(_product(_uuid("filler", i), name, vendor, f"filler-{i}"))

    data.ninjaone_roles = [_role(role_id) for role_id in _ROLES]
    device_id = 1000
    org_id = 1
    for n, client in enumerate(story):
        company_id = _uuid("company", client.company) if client.company else None
        if client.company:
            data.pax8_companies.append(
                {
                    "id": company_id,
                    "name": client.company,
                    "address": {
                        "street": f"{100 + n} Main Street",
                        "city": "Denver",
                        "postalCode": "80202",
                        "country": "US",
                        "stateOrProvince": "Colorado",
                    },
                    "phone": f"303-555-{n:04d}",
                    "website": f"client{n}.example.com",
                    "externalId": f"C{n:04d}",
                    "status": "Active" if client.subscriptions else "Inactive",
                    "selfServiceAllowed": False,
                    "billOnBehalfOfEnabled": n % 3 == 0,
                    "orderApprovalRequired": False,
                    "updatedDate": _pax8_offset_time(
                        created + timedelta(days=n, minutes=n, milliseconds=314)
                    ),
                }
            )
            for k, (product, quantity, status, term) in enumerate(client.subscriptions):
                start = created + timedelta(days=7 * n + k)
                data.pax8_subscriptions.append(
                    {
                        "id": _uuid("subscription", f"{n}:{k}"),
                        "companyId": company_id,
                        "productId": _uuid("product", product),
                        "quantity": quantity,
                        "startDate": start.strftime("%Y-%m-%dT%H:%M:%SZ"),
                        "createdDate": (start - timedelta(days=1)).strftime("%Y-%m-%d"),
                        "billingStart": start.strftime("%Y-%m-%d"),
                        "updatedDate": _pax8_offset_time(start + timedelta(days=30, milliseconds=314)),
                        "status": status,
                        **_pricing(client.company or "", product, term),
                        "productName": PRODUCTS[product][0],
                        "billingTerm": term,
                        **(_annual_commitment(start, now, n, k) if term == "Annual" else {}),
                    }
                )
            if client.malformed_subscription:
                data.pax8_subscriptions.append(
                    {
                        "id": _uuid("subscription", f"{n}:malformed"),
                        "companyId": company_id,
                        "productId": _uuid("product", EDR_WS),
                        "quantity": "ten",
                        "status": "Active",
                        "createdDate": "2024-02-01",
                        "productName": PRODUCTS[EDR_WS][0],
                        "billingTerm": "Monthly",
                    }
                )
        for org_name, counts in client.organizations.items():
            data.ninjaone_organizations.append(
                {
                    "id": org_id,
                    "name": org_name,
                    "description": "",
                    "nodeApprovalMode": "MANUAL",
                    "tags": [],
                    "fields": {},
                }
            )
            for kind, count in counts.items():
                for j in range(count):
                    device_id += 1
                    data.ninjaone_devices.append(_device(device_id, org_id, org_name, kind, j, now, rng))
                    if kind not in ("network", "mobile"):  # agentless: no system to read
                        data.ninjaone_systems[device_id] = _system(device_id, kind)
            if client.malformed_device:
                device_id += 1
                data.ninjaone_devices.append(
                    {
                        "id": device_id,
                        "organizationId": org_id,
                        "nodeClass": "WINDOWS_WORKSTATION",
                        "approvalStatus": "APPROVED",
                        "displayName": "BROKEN-CLOCK",
                        "lastContact": "yesterday",
                    }
                )
            org_id += 1
    _add_datto(data, now)
    data.pax8_companies.sort(key=lambda r: r["id"])
    data.pax8_products.sort(key=lambda r: r["id"])
    data.pax8_subscriptions.sort(key=lambda r: r["id"])
    return data


def _system(device_id: int, kind: str) -> WireRecord:
    """A NinjaOne device's `system` (DeviceComputerSystem): serial numbers as a firmware reports them."""
    if kind == "vguest":  # a virtual machine: the hypervisor's serial, as VMware writes it
        serial = f"VMware-56 4d {device_id % 256:02x} {device_id // 256 % 256:02x} 9b 1e"
    else:
        serial = f"5CG{device_id:07d}"
    return {
        "manufacturer": "HP",
        "model": "EliteDesk 800 G6",
        "serialNumber": serial,
        "biosSerialNumber": serial,
    }


def _add_datto(data: DemoDataset, now: datetime) -> None:
    """Datto RMM's sites and devices (DATTO_SITES), in its wire format: epoch-millisecond times; a
    hostname NinjaOne also has is the same machine (the same serial in its audit)."""
    by_name = {record["displayName"]: record["id"] for record in data.ninjaone_devices}
    device_id = 50_000
    for n, (site_name, devices) in enumerate(DATTO_SITES.items(), start=1):
        site_uid = _uuid("datto-site", site_name)
        data.datto_sites.append(
            {
                "id": 900 + n,
                "uid": site_uid,
                "accountUid": "demo-account",
                "name": site_name,
                "description": "",
                "onDemand": False,
                "splashtopAutoInstall": False,
                "devicesStatus": {"numberOfDevices": len(devices), "numberOfOnlineDevices": len(devices)},
                "portalUrl": f"https://merlot.centrastage.net/site/{900 + n}",
            }
        )
        for k, (hostname, category) in enumerate(devices):
            device_id += 1
            uid = _uuid("datto-device", hostname)
            seen = now - timedelta(hours=3 + k)
            data.datto_devices.append(
                {
                    "id": device_id,
                    "uid": uid,
                    "siteId": 900 + n,
                    "siteUid": site_uid,
                    "siteName": site_name,
                    "deviceType": {"category": category, "type": "Physical"},
                    "hostname": hostname,
                    "intIpAddress": f"10.9.{n}.{10 + k}",
                    "operatingSystem": "Microsoft Windows 11 Pro 23H2",
                    "lastLoggedInUser": "frontdesk",
                    "domain": "VALLEYORTHO",
                    "description": "",
                    "a64Bit": True,
                    "rebootRequired": False,
                    "online": True,
                    "suspended": False,
                    "deleted": False,
                    "lastSeen": int(seen.timestamp() * 1000),
                    "lastReboot": int((seen - timedelta(days=2)).timestamp() * 1000),
                    "lastAuditDate": int((seen - timedelta(hours=1)).timestamp() * 1000),
                    "creationDate": int((now - timedelta(days=500)).timestamp() * 1000),
                    "udf": {},
                    "snmpEnabled": False,
                    "deviceClass": "device",
                    "portalUrl": f"https://merlot.centrastage.net/device/{device_id}",
                    "softwareStatus": "OK",
                }
            )
            twin = by_name.get(hostname)
            serial = data.ninjaone_systems[twin]["serialNumber"] if twin in data.ninjaone_systems else None
            data.datto_audits[uid] = {
                "systemInfo": {"manufacturer": "HP", "model": "ProDesk 400 G7", "totalCpuCores": 8},
                "bios": {"instance": "", "serialNumber": serial or f"8CC{device_id:07d}"},
                "baseBoard": {"manufacturer": "HP", "product": "8767"},
            }


_DATTO_KINDS = (  # (deviceClass, deviceType.category) in turn: mostly PCs, some servers and others
    *[("device", "Desktop")] * 5,
    *[("device", "Laptop")] * 3,
    ("device", "Server"),
    ("esxihost", "ESXi Host"),
    ("rmmnetworkdevice", "Network Device"),
)


def datto_inventory(
    sites: int, devices_per_site: int, *, now: datetime | None = None
) -> tuple[list[WireRecord], list[WireRecord]]:
    """A Datto RMM account of `sites` sites with `devices_per_site` devices each, in its wire format
    (for tests of paging and for the benchmark): (sites, devices)."""
    now = now or datetime.now(UTC)
    site_records: list[WireRecord] = []
    device_records: list[WireRecord] = []
    for s in range(sites):
        site_uid = _uuid("datto-bench-site", s)
        name = f"Client {s:05d} Services"
        site_records.append({"id": 10_000 + s, "uid": site_uid, "name": name, "onDemand": False})
        for d in range(devices_per_site):
            n = s * devices_per_site + d
            datto_class, category = _DATTO_KINDS[n % len(_DATTO_KINDS)]
            device_records.append(
                {
                    "id": 1_000_000 + n,
                    "uid": _uuid("datto-bench-device", n),
                    "siteId": 10_000 + s,
                    "siteUid": site_uid,
                    "siteName": name,
                    "deviceType": {"category": category, "type": "Physical"},
                    "hostname": f"C{s:05d}-{d:04d}",
                    "deviceClass": datto_class,
                    "online": True,
                    "suspended": False,
                    "deleted": False,
                    "lastSeen": int((now - timedelta(minutes=n % 5000)).timestamp() * 1000),
                }
            )
    return site_records, device_records


def _product(pid: str, name: str, vendor: str, sku: str) -> WireRecord:
    return {
        "id": pid,
        "name": name,
        "vendorName": vendor,
        "shortDescription": f"{name} from {vendor}",
        "sku": f"PAX-{sku.upper()}",
        "vendorSku": sku,
        "requiresCommitment": False,
    }


def _role(role_id: int) -> WireRecord:
    name, node_class, custom = _ROLES[role_id]
    return {
        "id": role_id,
        "name": name,
        "description": name if custom else node_class.replace("_", " ").title(),
        "nodeClass": node_class,
        "custom": custom,
        "chassisType": "UNKNOWN",
        "created": (_ROLES_CREATED + timedelta(minutes=role_id)).timestamp(),
    }


def _device_role(node_class: str, kind: str, j: int) -> int:
    if kind == "srv" and j == 0 and node_class == "WINDOWS_SERVER":
        return DOMAIN_CONTROLLER_ROLE
    return _BUILT_IN_ROLE[node_class]


def _device_tags(org_name: str, kind: str, j: int) -> list[str]:
    # From the device's place in the story only: the random sequence the counts rely on is untouched.
    if org_name == "Internal IT - Lab":
        return [LAB_TAG]
    if org_name == "Granite Peak Construction" and kind == "ws" and j < 2:
        return ["loaner", NOT_BILLABLE_TAG]
    return []


def _device(
    device_id: int, org_id: int, org_name: str, kind: str, j: int, now: datetime, rng: random.Random
) -> WireRecord:
    classes = _NODE_CLASSES[kind]
    node_class = classes[j % len(classes)]
    initials = "".join(w[0] for w in org_name.split() if w[0].isalnum()).upper()[:4]
    name = f"{initials}-{_NAME_PREFIX.get(kind, 'PC')}-{j + 1:03d}"
    created = now - timedelta(days=400 + rng.randint(0, 300))
    record: WireRecord = {
        "id": device_id,
        "organizationId": org_id,
        "locationId": org_id * 10,
        "nodeClass": node_class,
        "nodeRoleId": _device_role(node_class, kind, j),
        "rolePolicyId": 1,
        "policyId": 1,
        "approvalStatus": "PENDING" if kind == "pending" else "APPROVED",
        "offline": kind == "stale",
        "displayName": name,
        "systemName": name,
        "dnsName": f"{name.lower()}.local",
        "created": created.timestamp(),
    }
    if kind != "never":
        days = rng.uniform(35, 200) if kind == "stale" else rng.uniform(0, 5)
        seen = (now - timedelta(days=days)).timestamp()
        record["lastContact"] = seen
        record["lastUpdate"] = seen
    record["tags"] = _device_tags(org_name, kind, j)
    return record
