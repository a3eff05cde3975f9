"""Client mapping: exact normalized names map automatically; everything else is only suggested."""

from __future__ import annotations

import pytest

from tests.engine_builders import EDR, company, devices, org, pax8, rmm, sub
from trueup.domain.mapping import map_clients, organizations_to_suggest
from trueup.domain.models import MappingSource, Settings
from trueup.domain.names import normalize_name
from trueup.domain.reconcile import reconcile


@pytest.mark.parametrize(
    ("pax8_name", "rmm_name"),
    [
        ("Acme Inc", "ACME, Inc."),
        ("Acme Inc.", "acme"),
        ("Smith & Jones LLC", "Smith and Jones"),
        ("Smith & Jones", "Smith Jones"),
        ("Contoso Pty Ltd", "Contoso"),
        ("Müller GmbH", "MÜLLER"),
        ("Northwind Traders Corporation", "Northwind  Traders"),
        ("Fabrikam Co.", "Fabrikam Company"),
        ("Tailspin Toys Limited", "Tailspin-Toys"),
        ("O'Brien Plumbing PLC", "OBrien Plumbing"),
        ("A.B.C. Dental, L.L.C.", "ABC Dental"),
        ("Litware Holdings Corp.", "litware holdings"),
    ],
)
def test_names_that_differ_only_in_form_map_automatically(pax8_name: str, rmm_name: str) -> None:
    result = map_clients([company("c1", pax8_name)], [org(1, rmm_name)], {})
    assert [(m.pax8_company_id, m.rmm_organization_ids, m.source) for m in result.mappings] == [
        ("c1", ["ninjaone:1"], MappingSource.AUTO)
    ]
    assert result.unmapped_rmm == []


@pytest.mark.parametrize(
    ("pax8_name", "rmm_name"),
    [
        ("Acme Dental", "Acme Dental Group"),
        ("Contoso", "Contoso - Denver"),
        ("Northwind Traders", "Northwind Trading"),
        ("Riverside Clinic", "Riverbend Clinic"),
        ("Coho Winery", "Coho Vineyard"),
        ("Acme Holdings Inc", "Acme Inc"),
        ("Blue Yonder Airlines", "Blue Yonder"),
    ],
)
def test_near_names_never_map_automatically(pax8_name: str, rmm_name: str) -> None:
    result = map_clients([company("c1", pax8_name)], [org(1, rmm_name)], {})
    assert result.mappings == []
    assert result.unmapped_rmm == ["ninjaone:1"]
    assert result.unmapped_pax8 == ["c1"]


def test_near_names_become_scored_suggestions_best_first() -> None:
    companies = [company("c1", "Contoso"), company("c2", "Contoso Pharmacy"), company("c3", "Fabrikam")]
    result = map_clients(companies, [org(1, "Contoso Denver"), org(2, "Zebra Labs")], {})
    suggested = [(s.rmm_organization_id, s.pax8_company_id) for s in result.suggestions]
    assert suggested[0] == ("ninjaone:1", "c1")  # "contoso" is contained whole in "contoso denver"
    assert "c3" not in {s.pax8_company_id for s in result.suggestions}
    assert all(s.rmm_organization_id != "ninjaone:2" for s in result.suggestions)  # nothing close to Zebra
    assert all(80 <= s.score <= 100 for s in result.suggestions)
    scores = [s.score for s in result.suggestions if s.rmm_organization_id == "ninjaone:1"]
    assert scores == sorted(scores, reverse=True)


def test_a_name_shared_by_two_companies_is_suggested_not_mapped() -> None:
    companies = [company("c1", "Fabrikam Inc"), company("c2", "Fabrikam LLC")]
    result = map_clients(companies, [org(1, "Fabrikam")], {})
    assert result.mappings == []
    assert {(s.pax8_company_id, s.score) for s in result.suggestions} == {("c1", 100.0), ("c2", 100.0)}


def test_suggestions_are_worked_out_ahead_for_every_organization_no_name_places() -> None:
    companies = [
        company("c1", "Acme Inc"),
        company("c2", "Fabrikam Inc"),
        company("c3", "Fabrikam LLC"),
        company("c4", "Globex"),
    ]
    organizations = [
        org(1, "ACME"),  # one company of that name: placed by name
        org(2, "Acme - Denver"),  # no company of that name
        org(3, "Fabrikam"),  # two companies of that name: a person chooses
        org(4, "Globex Corporation"),  # "corporation" is a legal form: the same name as Globex
        org(5, "Initech"),  # nobody's: asked all the same (it may come close to someone)
    ]
    ahead = organizations_to_suggest(companies, organizations)
    assert [o.name for o in ahead] == ["Acme - Denver", "Fabrikam", "Initech"]
    # Exactly the organizations automatic mapping leaves unmapped when nothing is mapped by hand.
    unmapped = map_clients(companies, organizations, {}, with_suggestions=False).unmapped_rmm
    assert sorted(o.id for o in ahead) == sorted(unmapped)
    assert organizations_to_suggest([], organizations) == organizations
    assert organizations_to_suggest(companies, []) == []


def test_two_sites_with_the_same_normalized_name_both_map_to_the_one_company() -> None:
    result = map_clients([company("c1", "Acme")], [org(1, "Acme Inc"), org(2, "ACME")], {})
    assert [m.rmm_organization_ids for m in result.mappings] == [["ninjaone:1", "ninjaone:2"]]


def test_manual_mapping_overrides_the_automatic_one() -> None:
    companies = [company("c1", "Acme"), company("c2", "Acme Holdings")]
    result = map_clients(companies, [org(1, "Acme")], {"c2": ["ninjaone:1"]})
    assert [(m.pax8_company_id, m.rmm_organization_ids, m.source) for m in result.mappings] == [
        ("c2", ["ninjaone:1"], MappingSource.MANUAL)
    ]
    assert result.unmapped_pax8 == ["c1"]


def test_a_manual_empty_mapping_stops_automatic_mapping() -> None:
    data = pax8([company("acme", "Acme")], [sub("s1", "acme", 3)])
    inventory = rmm([org(1, "Acme")], devices(1, 3))
    result = reconcile(data, inventory, Settings(coverages=[EDR]), {"acme": []})
    assert [(m.rmm_organization_ids, m.source) for m in result.mapping.mappings] == [
        ([], MappingSource.MANUAL)
    ]
    assert result.mapping.unmapped_pax8 == []  # decided by a person, not waiting for a mapping
    # Both sides are now without a partner: the company's licences and the organization's devices.
    assert [(r.client, r.devices, r.licenses, r.status.value) for r in result.coverages[0].rows] == [
        ("Acme", None, 3, "unmapped"),
        ("Acme", 3, None, "unmapped"),
    ]


def test_manual_entries_for_vanished_companies_or_organizations_are_ignored() -> None:
    result = map_clients(
        [company("c1", "Acme")],
        [org(1, "Acme"), org(2, "Other")],
        {"gone": ["ninjaone:2"], "c1": ["ninjaone:1", "ninjaone:404"]},
    )
    assert [(m.pax8_company_id, m.rmm_organization_ids) for m in result.mappings] == [("c1", ["ninjaone:1"])]
    assert result.unmapped_rmm == ["ninjaone:2"]


def test_an_organization_claimed_by_two_manual_mappings_goes_to_one_company_only() -> None:
    result = map_clients(
        [company("c1", "A"), company("c2", "B")], [org(1, "X")], {"c2": ["ninjaone:1"], "c1": ["ninjaone:1"]}
    )
    assert [(m.pax8_company_id, m.rmm_organization_ids) for m in result.mappings] == [
        ("c1", ["ninjaone:1"]),
        ("c2", []),
    ]


def test_normalization_keeps_a_name_that_is_only_a_suffix() -> None:
    assert normalize_name("Company") == "company"
    assert normalize_name("The Co-Op Company Ltd") == "thecoop"
