"""Coverages: which Pax8 products license devices, grouped so licences are never double-counted.

Out of the box trueup proposes one coverage per per-device product the MSP actually sells (all
billing terms together), merging products whose names differ only by a device-class word
("Huntress Managed EDR - Workstation" and "... - Server"). Per-device products are recognised by
vendor and name patterns; per-user products (Microsoft 365, email security, password managers...)
are never proposed, even from a vendor that also sells per-device products.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Iterable, Sequence

from trueup.domain.models import Coverage, Product, Subscription

# Vendors whose products are licensed per device (endpoint protection, EDR/MDR, RMM agents, device backup).
PER_DEVICE_VENDORS = (
    "sentinelone",
    "huntress",
    "crowdstrike",
    "webroot",
    "bitdefender",
    "sophos",
    "acronis",
    "datto",
    "n-able",
    "ninjaone",
    "ninjarmm",
    "eset",
    "malwarebytes",
    "threatlocker",
    "blackpoint",
    "cylance",
    "carbon black",
    "trend micro",
    "axcient",
)
# Product-name words that mean per device, whoever the vendor.
PER_DEVICE_WORDS = re.compile(
    r"\b(endpoint|edr|mdr|xdr|antivirus|anti-?malware|rmm|agents?|workstations?|servers?|desktops?|devices?)\b"
)
# Per-user products are never per-device coverages, even from a per-device vendor.
PER_USER_WORDS = re.compile(
    r"(microsoft|office 365|\bm365\b|\bo365\b|exchange|\bteams\b|sharepoint|onedrive|google workspace|"
    r"password|keeper|lastpass|bitwarden|1password|passportal|\be-?mail|\bmailbox|\bmail\b|proofpoint|"
    r"mimecast|per user|\busers?\b|\bsaas\b|identity|\bitdr\b|awareness|phishing|dmarc|adobe|dropbox|"
    r"\bzoom\b|dropsuite|skykick)"
)
# Words naming a device class: products differing only by these form one coverage.
DEVICE_CLASS_WORDS = re.compile(r"\b(workstations?|servers?|desktops?)\b", re.IGNORECASE)


def is_per_device(product: Product) -> bool:
    """True when the product licenses devices (by vendor or name) and is not a per-user product."""
    text = f"{product.vendor_name or ''} {product.name}".casefold()
    if PER_USER_WORDS.search(text):
        return False
    return any(vendor in text for vendor in PER_DEVICE_VENDORS) or bool(PER_DEVICE_WORDS.search(text))


def coverage_name(product_name: str) -> str:
    """The product name without its device-class word: "Huntress EDR - Servers" -> "Huntress EDR"."""
    name = DEVICE_CLASS_WORDS.sub(" ", product_name)
    name = re.sub(r"\(\s*\)|\[\s*\]", " ", name)
    name = re.sub(r"\s+", " ", name).strip(" -–—:/,|")
    name = re.sub(r"\s*[-–—:/,|]\s*$", "", name)
    return name or product_name.strip()


def slugify(text: str) -> str:
    slug = re.sub(r"[^a-z0-9]+", "-", text.casefold()).strip("-")
    return slug[:60].strip("-") or "coverage"


def products_in_use(products: Iterable[Product], subscriptions: Iterable[Subscription]) -> list[Product]:
    """Products that have subscriptions; one missing from the catalogue is named after its subscription."""
    catalogue = {p.id: p for p in products}
    used: dict[str, Product] = {}
    for sub in subscriptions:
        if sub.product_id in used:
            continue
        product = catalogue.get(sub.product_id)
        if product is None:
            product = Product(id=sub.product_id, name=sub.product_name or sub.product_id)
        used[sub.product_id] = product
    return list(used.values())


def propose_coverages(
    products: Sequence[Product], subscriptions: Sequence[Subscription], counted_statuses: Iterable[str]
) -> list[Coverage]:
    """One coverage per per-device product in counted subscriptions; most-held coverage first."""
    counted = {s.casefold() for s in counted_statuses}
    live = [s for s in subscriptions if s.status.casefold() in counted and s.quantity > 0]
    groups: dict[str, list[Product]] = defaultdict(list)
    for product in products_in_use(products, live):
        if is_per_device(product):
            groups[coverage_name(product.name).casefold()].append(product)

    holders: dict[str, set[str]] = defaultdict(set)
    group_of = {p.id: key for key, members in groups.items() for p in members}
    for sub in live:
        if sub.product_id in group_of:
            holders[group_of[sub.product_id]].add(sub.company_id)

    ordered = sorted(groups, key=lambda key: (-len(holders[key]), key))
    coverages: list[Coverage] = []
    used_ids: set[str] = set()
    for key in ordered:
        members = sorted(groups[key], key=lambda p: (p.name.casefold(), p.id))
        name = coverage_name(members[0].name)
        slug = base = slugify(name)
        n = 2
        while slug in used_ids:
            slug, n = f"{base}-{n}", n + 1
        used_ids.add(slug)
        coverages.append(Coverage(id=slug, name=name, product_ids=[p.id for p in members]))
    return coverages


def in_coverage(coverage: Coverage, product: Product) -> bool:
    """Whether a product's licences count toward a coverage (by id, vendor, or name substring)."""
    if product.id in coverage.product_ids:
        return True
    vendor = (product.vendor_name or "").casefold()
    if vendor and any(vendor == v.casefold() for v in coverage.vendor_names):
        return True
    name = product.name.casefold()
    return any(part.casefold() in name for part in coverage.name_contains if part)
