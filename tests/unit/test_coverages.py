"""The coverage proposal: per-device products become coverages, per-user products never do."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.engine_builders import company, devices, org, pax8, rmm, sub
from trueup.domain.coverages import in_coverage, is_per_device, propose_coverages
from trueup.domain.models import Coverage, Product, Settings, Subscription
from trueup.domain.reconcile import reconcile

SPEC_SAMPLES = Path(__file__).resolve().parents[3] / "shared" / "specs" / "pax8" / "samples"


def sample_subscriptions() -> list[Subscription]:
    raw = json.loads((SPEC_SAMPLES / "subscriptions-paged.json").read_text())["content"]
    return [
        Subscription(
            id=s["id"],
            company_id=s["companyId"],
            product_id=s["productId"],
            product_name=s["productName"],
            quantity=s["quantity"],
            status=s["status"],
            billing_term=s["billingTerm"],
        )
        for s in raw
    ]


def test_the_proposal_on_pax8s_own_sample_takes_webroot_and_never_microsoft_or_proofpoint() -> None:
    subs = sample_subscriptions()
    every_status = {s.status for s in subs}
    names = [c.name for c in propose_coverages([], subs, every_status)]
    # The sample gives Acronis the product id of "VMware vSphere Essentials Plus" (a quirk of the
    # sample), so Acronis is checked by its product below; Webroot has its own id.
    assert "Webroot SecureAnywhere Business Endpoint Protection" in names
    for per_user in (
        "Microsoft 365 Business Standard",
        "Proofpoint Essentials - Professional",
        "Microsoft Defender for Business",
        "Google Workspace Business Starter",
        "Dropbox Business Advanced",
        "Zoom Meetings Pro",
        "Adobe Creative Cloud",
    ):
        assert per_user not in names
    acronis = next(s for s in subs if s.product_name == "Acronis Cyber Protect Cloud")
    assert is_per_device(Product(id=acronis.product_id, name="Acronis Cyber Protect Cloud"))


@pytest.mark.parametrize(
    ("name", "vendor", "per_device"),
    [
        ("SentinelOne Singularity Complete", "SentinelOne", True),
        ("Huntress Managed EDR", "Huntress", True),
        ("CrowdStrike Falcon Go", "CrowdStrike", True),
        ("Bitdefender GravityZone Business Security", "Bitdefender", True),
        ("Sophos Intercept X Advanced", "Sophos", True),
        ("Datto RMM", "Datto", True),
        ("N-able Cove Data Protection - Server", "N-able", True),
        ("NinjaOne RMM Agent", "NinjaOne", True),
        ("Generic Endpoint Detection and Response", "SmallVendor", True),
        ("Microsoft 365 Business Premium", "Microsoft", False),
        ("Exchange Online (Plan 1)", "Microsoft", False),
        ("Proofpoint Essentials - Business", "Proofpoint", False),
        ("Keeper Business", "Keeper Security", False),
        ("Huntress Managed ITDR", "Huntress", False),
        ("Huntress Security Awareness Training", "Huntress", False),
        ("Datto SaaS Protection for Microsoft 365", "Datto", False),
        ("Sophos Central Email Advanced", "Sophos", False),
        ("Mimecast Email Security", "Mimecast", False),
        ("Acronis Cyber Protect Cloud - Microsoft 365 backup per user", "Acronis", False),
    ],
)
def test_per_device_products_are_recognised_by_vendor_and_name(
    name: str, vendor: str, per_device: bool
) -> None:
    assert is_per_device(Product(id="p", name=name, vendor_name=vendor)) is per_device


def test_products_differing_only_by_device_class_word_form_one_coverage_most_held_first() -> None:
    products = [
        Product(id="ws", name="Huntress Managed EDR - Workstation", vendor_name="Huntress"),
        Product(id="srv", name="Huntress Managed EDR - Server", vendor_name="Huntress"),
        Product(id="bk", name="Acronis Cyber Protect Cloud", vendor_name="Acronis"),
        Product(id="m365", name="Microsoft 365 Business Premium", vendor_name="Microsoft"),
        Product(id="old", name="Webroot SecureAnywhere", vendor_name="Webroot"),
    ]
    subs = [
        sub("1", "a", 5, "ws"),
        sub("2", "a", 1, "srv"),
        sub("3", "b", 4, "ws", term="Annual"),
        sub("4", "a", 5, "bk"),
        sub("5", "a", 10, "m365"),
        sub("6", "c", 3, "old", status="Cancelled"),
    ]
    proposed = propose_coverages(products, subs, ["Active"])
    # Huntress is held by a and b, Acronis by a only; Webroot is only cancelled; Microsoft is per user.
    assert proposed == [
        Coverage(id="huntress-managed-edr", name="Huntress Managed EDR", product_ids=["srv", "ws"]),
        Coverage(id="acronis-cyber-protect-cloud", name="Acronis Cyber Protect Cloud", product_ids=["bk"]),
    ]


def test_without_coverages_in_the_settings_the_engine_uses_the_proposal() -> None:
    products = [
        Product(id="ws", name="Huntress Managed EDR - Workstation", vendor_name="Huntress"),
        Product(id="srv", name="Huntress Managed EDR - Server", vendor_name="Huntress"),
        Product(id="m365", name="Microsoft 365 Business Premium", vendor_name="Microsoft"),
    ]
    data = pax8(
        [company("acme")],
        [sub("1", "acme", 4, "ws"), sub("2", "acme", 1, "srv"), sub("3", "acme", 25, "m365")],
        products=products,
    )
    result = reconcile(data, rmm([org(1, "Acme")], devices(1, 6)), Settings())
    # One coverage: 4 + 1 EDR licences against 6 devices; the 25 Microsoft 365 seats never count.
    assert [(c.id, [(r.devices, r.licenses, r.variance) for r in c.rows]) for c in result.coverages] == [
        ("huntress-managed-edr", [(6, 5, 1)])
    ]


def test_settings_coverages_replace_the_proposal_and_match_by_vendor_or_name() -> None:
    by_vendor = Coverage(id="any-huntress", name="Huntress", vendor_names=["huntress"])
    by_name = Coverage(id="edr-named", name="EDR", name_contains=["edr"])
    edr = Product(id="x", name="Huntress Managed EDR", vendor_name="Huntress")
    sat = Product(id="y", name="Security Awareness Training", vendor_name="Huntress")
    assert in_coverage(by_vendor, edr) and in_coverage(by_vendor, sat)
    assert in_coverage(by_name, edr) and not in_coverage(by_name, sat)
    data = pax8([company("acme")], [sub("1", "acme", 2, "x"), sub("2", "acme", 3, "y")], products=[edr, sat])
    result = reconcile(data, rmm([org(1, "Acme")], devices(1, 2)), Settings(coverages=[by_name]))
    assert [(c.id, [(r.devices, r.licenses) for r in c.rows]) for c in result.coverages] == [
        ("edr-named", [(2, 2)])
    ]
