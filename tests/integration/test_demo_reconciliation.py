"""Both clients sync the demo upstreams over loopback; the engine's rows equal the answers worked out by hand
from the story in infra/demo/dataset.py (device kinds and subscriptions are quoted beside each row)."""

from __future__ import annotations

from decimal import Decimal

from infra.demo.servers import DemoUpstreams
from tests.integration.conftest import NINJAONE_CREDENTIALS, NOW, PAX8_CREDENTIALS
from trueup.domain.mapping import map_clients
from trueup.domain.models import CurrencyTotals, ExclusionReason, Settings, Summary
from trueup.domain.reconcile import reconcile
from trueup.vendors.ninjaone import NinjaOneAdapter
from trueup.vendors.pax8 import Pax8Client
from trueup.vendors.rmm import RmmConnection, collect

# Unmapped RMM organizations with counted workstations appear in every coverage (licences unknown):
# "Contoso - Denver" (a site of Contoso Ltd, not auto-mapped) 4, "Dunmore Vet Clinic" (near name) 8,
# "Greenleaf Accounting" (two Pax8 companies share that name) 7, "Internal IT - Lab" (no company) 5,
# "Ironwood Legal" (near name) 9.
ORPHANS = {
    "Contoso - Denver": ("Contoso - Denver", 4, None, None, "unmapped"),
    "Dunmore Vet Clinic": ("Dunmore Vet Clinic", 8, None, None, "unmapped"),
    "Greenleaf Accounting": ("Greenleaf Accounting", 7, None, None, "unmapped"),
    "Internal IT - Lab": ("Internal IT - Lab", 5, None, None, "unmapped"),
    "Ironwood Legal": ("Ironwood Legal", 9, None, None, "unmapped"),
}

HUNTRESS = [
    ("Redwood Financial Advisors", 20, 14, 6, "under_licensed"),  # ws 20 vs EDR 14
    ("Kingfisher Marine", 13, 10, 3, "under_licensed"),
    ("Lakeside Montessori School", 15, 12, 3, "under_licensed"),  # the cancelled 15 do not count
    ("Acme Dental Group", 15, 13, 2, "under_licensed"),  # ws 14 + srv 1 vs ws 12 + srv 1
    ("Foxglove Florists", 5, 3, 2, "under_licensed"),
    ("Granite Peak Construction Inc.", 27, 25, 2, "under_licensed"),  # 5 network + 6 mobile not covered
    ("Hillcrest Senior Living", 46, 45, 1, "under_licensed"),  # ws 41 + srv 5 vs 40 + 5
    ("Yellowstone Outfitters", 9, 8, 1, "under_licensed"),
    ORPHANS["Contoso - Denver"],
    ORPHANS["Dunmore Vet Clinic"],
    ("Dunmore Veterinary Clinic", None, 8, None, "unmapped"),
    ("Evergreen Family Practice", None, 5, None, "unmapped"),  # no RMM organization at all
    ("Greenleaf Accounting", None, 7, None, "unmapped"),  # the Pax8 company (ties: company first)
    ORPHANS["Greenleaf Accounting"],
    ORPHANS["Internal IT - Lab"],
    ORPHANS["Ironwood Legal"],
    ("Cedar & Pine Architects", 6, 10, -4, "over_licensed"),  # 2 pending not counted
    ("Contoso Ltd", 18, 22, -4, "over_licensed"),  # ws 16 + srv 2 vs 20 + 2; Denver unmapped
    ("Union Street Pharmacy", 2, 5, -3, "over_licensed"),  # 1 pending
    ("Ivy League Tutoring", 0, 2, -2, "over_licensed"),  # both devices stale
    ("Pinnacle Insurance Group", 52, 54, -2, "over_licensed"),  # 6 stale
    ("Juniper Health Co.", 19, 20, -1, "over_licensed"),  # 3 never seen
    ("Maple Street Bakery", 3, 4, -1, "over_licensed"),  # PendingCancel counts
    ("Alder Creek Brewing", 12, 12, 0, "matched"),  # 4 virtual guests not covered
    ("Brightline Logistics, LLC", 35, 35, 0, "matched"),  # annual 30 + monthly 5; 4 stale
    ("Delmar Law", 6, 6, 0, "matched"),
    ("Eastgate Church", 4, 4, 0, "matched"),
    ("Keystone Accounting", 7, 7, 0, "matched"),
    ("Lumen Optometry", 5, 5, 0, "matched"),
    ("Meridian Title & Escrow", 9, 9, 0, "matched"),
    ("Oakridge Dental", 9, 9, 0, "matched"),
    ("Quarry Lane Vets", 11, 11, 0, "matched"),
    ("Tidewater Engineering", 25, 25, 0, "matched"),
    ("Westbrook Realty", 10, 10, 0, "matched"),  # plus a malformed subscription, skipped
    ("Xavier Consulting", 3, 3, 0, "matched"),  # plus a malformed device, skipped
]

ACRONIS = [
    ("Granite Peak Construction Inc.", 27, 20, 7, "under_licensed"),
    ("Lumen Optometry", 5, 3, 2, "under_licensed"),
    ("Hillcrest Senior Living", 46, 45, 1, "under_licensed"),
    ("Tidewater Engineering", 25, 24, 1, "under_licensed"),
    ORPHANS["Contoso - Denver"],
    ORPHANS["Dunmore Vet Clinic"],
    ORPHANS["Greenleaf Accounting"],
    ORPHANS["Internal IT - Lab"],
    ORPHANS["Ironwood Legal"],
    ("Ironwood Legal Partners", None, 9, None, "unmapped"),
    ("Pinnacle Insurance Group", 52, 54, -2, "over_licensed"),
    ("Valley Orthopedics", 14, 16, -2, "over_licensed"),
    ("Juniper Health Co.", 19, 20, -1, "over_licensed"),
    ("Brightline Logistics, LLC", 35, 35, 0, "matched"),  # EDR and backup for the same 35: never 70
    ("Delmar Law", 6, 6, 0, "matched"),
    ("Oakridge Dental", 9, 9, 0, "matched"),
    ("Summit & Co", 10, 10, 0, "matched"),  # auto-mapped to "Summit"
]

SENTINELONE = [
    ("Northwind Traders", 47, 40, 7, "under_licensed"),  # ws 44 + srv 3 vs annual 40
    *ORPHANS.values(),
    ("Fjord Analytics GmbH", 11, 12, -1, "over_licensed"),  # 3 virtual guests, 1 host not covered
    ("Jasper Creek Winery", 8, 8, 0, "matched"),
    ("Tidewater Engineering", 25, 25, 0, "matched"),  # holds all three coverages
    ("Zenith Media", 6, 6, 0, "matched"),
]


def test_the_demo_story_reconciles_to_the_hand_worked_rows(demo: DemoUpstreams) -> None:
    with Pax8Client(PAX8_CREDENTIALS, api_url=demo.pax8_api_url, token_url=demo.pax8_token_url) as client:
        pax8 = client.fetch_all(NOW)
    with NinjaOneAdapter(RmmConnection(NINJAONE_CREDENTIALS, demo.ninjaone_url)) as adapter:
        rmm = collect(adapter, NOW)

    result = reconcile(pax8, rmm, Settings())

    assert [(c.id, c.name) for c in result.coverages] == [
        ("huntress-managed-edr", "Huntress Managed EDR"),  # held by 30 clients
        ("acronis-cyber-protect-cloud", "Acronis Cyber Protect Cloud"),  # 12
        ("sentinelone-control", "SentinelOne Control"),  # 5
    ]
    tables = {
        c.id: [(r.client, r.devices, r.licenses, r.variance, r.status.value) for r in c.rows]
        for c in result.coverages
    }
    assert tables["huntress-managed-edr"] == HUNTRESS
    assert tables["acronis-cyber-protect-cloud"] == ACRONIS
    assert tables["sentinelone-control"] == SENTINELONE
    summaries = [c.summary.model_copy(update={"money": {}}) for c in result.coverages]
    assert summaries == [
        Summary(under_licensed=8, over_licensed=7, matched=12, unmapped=8),
        Summary(under_licensed=4, over_licensed=3, matched=4, unmapped=6),
        Summary(under_licensed=1, over_licensed=1, matched=3, unmapped=5),
    ]

    # The money, worked out by hand from infra/demo/dataset.py's PRICES (a month: EDR workstation
    # $6.50 billed / $4.50 paid, server $12.00 / $8.00, annual 10 % off: $5.85 / $4.05; backup $8.00 /
    # $5.50; SentinelOne $7.00 / $5.00, annual $6.30 / $4.50; Fjord is billed in euros).
    # EDR under: Redwood +6 x 6.50 = 39.00, Kingfisher +3 = 19.50, Lakeside +3 = 19.50, Acme Dental +2
    # x (12 x 6.50 + 12.00) / 13 = 13.85, Foxglove +2 = 13.00, Granite Peak +2 = 13.00, Hillcrest +1 x
    # (40 x 6.50 + 5 x 12.00) / 45 = 7.11, Yellowstone +1 = 6.50: $131.46 (costs: 27.00 + 13.50 +
    # 13.50 + 9.54 + 9.00 + 9.00 + 4.89 + 4.50 = $90.93).
    # EDR over: Cedar & Pine -4 x 5.85 (annual) = -23.40, Contoso -4 x 154 / 22 = -28.00, Union Street
    # -3 x 6.50 = -19.50, Ivy League -13.00, Pinnacle -2 x 373 / 54 = -13.81, Juniper -1 x 141 / 20 =
    # -7.05, Maple Street -6.50: -$111.26 (costs: -16.20 - 19.27 - 13.50 - 9.00 - 9.52 - 4.85 - 4.50).
    # Backup under: Granite Peak +7 x 8.00, Lumen +2, Hillcrest +1, Tidewater +1: $88.00 ($60.50);
    # over: Pinnacle -2, Valley -2, Juniper -1: -$40.00 (-$27.50).
    # SentinelOne: Northwind +7 x 6.30 (annual) = $44.10 ($31.50); Fjord -1 x 7.00 = -EUR 7.00 (-5.00);
    # Zenith Media has no price (and says so).
    def totals(under: str, under_cost: str, over: str, over_cost: str) -> CurrencyTotals:
        return CurrencyTotals(
            under_licensed_price_gap=Decimal(under),
            under_licensed_cost_gap=Decimal(under_cost),
            over_licensed_price_gap=Decimal(over),
            over_licensed_cost_gap=Decimal(over_cost),
        )

    edr_rows = {r.client: r for r in result.coverages[0].rows if r.pax8_company_id}
    assert [c.summary.money for c in result.coverages] == [
        {"USD": totals("131.46", "90.93", "-111.26", "-76.84")},
        {"USD": totals("88.00", "60.50", "-40.00", "-27.50")},
        {"EUR": totals("0.00", "0.00", "-7.00", "-5.00"), "USD": totals("44.10", "31.50", "0.00", "0.00")},
    ]
    # Cedar & Pine's annual commitment renews each year: reducible at its next anniversary only.
    cedar = edr_rows["Cedar & Pine Architects"]
    assert cedar.status.value == "over_licensed" and cedar.commitment_ends is not None
    assert NOW.date() < cedar.commitment_ends <= NOW.date().replace(year=NOW.year + 1)
    assert edr_rows["Contoso Ltd"].commitment_ends is None  # monthly: reducible any month
    s1 = {r.client: r for r in result.coverages[2].rows}
    assert s1["Zenith Media"].amounts is None
    assert s1["Zenith Media"].amounts_warning == (
        "no counted subscription has a price for a billing term of known months: no amount"
    )

    edr = {r.client: r for r in result.coverages[0].rows if r.pax8_company_id}
    assert edr["Juniper Health Co."].excluded[ExclusionReason.NEVER_SEEN] == 3
    assert edr["Pinnacle Insurance Group"].excluded[ExclusionReason.STALE] == 6
    assert edr["Granite Peak Construction Inc."].excluded[ExclusionReason.CLASS_NOT_COVERED] == 11
    assert edr["Cedar & Pine Architects"].excluded[ExclusionReason.PENDING] == 2
    assert edr["Westbrook Realty"].warnings and "quantity 'ten'" in edr["Westbrook Realty"].warnings[0]
    assert (
        edr["Xavier Consulting"].warnings
        and "NinjaOne: 1 device record" in edr["Xavier Consulting"].warnings[0]
    )
    assert [
        r.warnings
        for r in result.coverages[0].rows
        if r.client not in {"Westbrook Realty", "Xavier Consulting"}
    ] == [[]] * (len(HUNTRESS) - 2)

    # Mapping: the near names and the site are suggested, never mapped on their own.
    names = {c.id: c.name for c in pax8.companies}
    orgs = {o.id: o.name for o in rmm.organizations}
    # A reconciliation never applies suggestions, so it does not compute them: the mapping view does.
    assert result.mapping.suggestions == []
    view = map_clients(pax8.companies, rmm.organizations, {})
    assert view.mappings == result.mapping.mappings
    suggested = {(orgs[s.rmm_organization_id], names[s.pax8_company_id]) for s in view.suggestions}
    assert {
        ("Dunmore Vet Clinic", "Dunmore Veterinary Clinic"),
        ("Ironwood Legal", "Ironwood Legal Partners"),
        ("Contoso - Denver", "Contoso Ltd"),
        ("Greenleaf Accounting", "Greenleaf Accounting"),
        ("Greenleaf Accounting", "Greenleaf Accounting Pty Ltd"),
    } <= suggested
    assert sorted(orgs[o] for o in result.mapping.unmapped_rmm) == sorted(ORPHANS)
