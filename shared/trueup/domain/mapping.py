"""Client mapping: which RMM organizations belong to which Pax8 company.

A wrong automatic match silently corrupts billing, so automatic mapping is deliberately narrow: only
an exact match of normalized names, and only when that name belongs to one Pax8 company. Everything
else becomes a scored suggestion a person accepts or not.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence

from trueup.domain.models import (
    ClientMapping,
    Company,
    MappingResult,
    MappingSource,
    Organization,
    Suggestion,
)
from trueup.domain.names import name_tokens, normalize_name

SUGGESTION_CUTOFF = 80.0  # WRatio score (0-100) below which a name is not worth proposing
SUGGESTIONS_PER_ORGANIZATION = 3


def map_clients(
    companies: Sequence[Company],
    organizations: Sequence[Organization],
    manual: Mapping[str, Sequence[str]],
    *,
    with_suggestions: bool = True,
) -> MappingResult:
    """Map organizations to companies: manual mappings first, then exact normalized-name matches.

    `manual` maps a Pax8 company id to the organization ids a person chose (an empty list means
    "this company has no RMM organization" and stops automatic mapping for it). Manual entries for
    companies or organizations that no longer exist are ignored. Should two manual entries claim
    the same organization (the API refuses this), the company with the smaller id keeps it.
    Suggestions (fuzzy name matches, for a person to accept) are left out when not wanted: a
    reconciliation never applies them.
    """
    company_by_id = {c.id: c for c in companies}
    org_by_id = {o.id: o for o in organizations}

    owner: dict[str, str] = {}  # organization id -> company id
    manual_orgs: dict[str, list[str]] = {}
    for company_id in sorted(manual):
        if company_id not in company_by_id:
            continue
        kept = []
        for org_id in dict.fromkeys(manual[company_id]):
            if org_id in org_by_id and org_id not in owner:
                owner[org_id] = company_id
                kept.append(org_id)
        manual_orgs[company_id] = kept

    companies_by_name: dict[str, list[str]] = defaultdict(list)
    for company in companies:
        companies_by_name[normalize_name(company.name)].append(company.id)

    auto_orgs: dict[str, list[str]] = defaultdict(list)
    for org in organizations:
        if org.id in owner:
            continue
        candidates = companies_by_name.get(normalize_name(org.name), [])
        if len(candidates) == 1 and candidates[0] not in manual_orgs:
            owner[org.id] = candidates[0]
            auto_orgs[candidates[0]].append(org.id)

    mappings = [
        ClientMapping(
            pax8_company_id=c.id,
            client=c.name,
            rmm_organization_ids=manual_orgs[c.id],
            source=MappingSource.MANUAL,
        )
        if c.id in manual_orgs
        else ClientMapping(
            pax8_company_id=c.id,
            client=c.name,
            rmm_organization_ids=auto_orgs[c.id],
            source=MappingSource.AUTO,
        )
        for c in sorted(companies, key=lambda c: (c.name.casefold(), c.id))
        if c.id in manual_orgs or c.id in auto_orgs
    ]
    unmapped = sorted(
        (o for o in organizations if o.id not in owner), key=lambda o: (o.name.casefold(), o.id)
    )
    return MappingResult(
        mappings=mappings,
        suggestions=suggest(companies, unmapped) if with_suggestions else [],
        unmapped_rmm=[o.id for o in unmapped],
        unmapped_pax8=[
            c.id
            for c in sorted(companies, key=lambda c: (c.name.casefold(), c.id))
            if c.id not in manual_orgs and c.id not in auto_orgs
        ],
    )


def organizations_to_suggest(
    companies: Sequence[Company], organizations: Sequence[Organization]
) -> list[Organization]:
    """The organizations that automatic mapping cannot place by name: their normalized name is no
    company's, or several companies'. Those are the ones left unmapped unless a person maps them
    (an organization placed by name is unmapped only when its company is mapped by hand elsewhere),
    so their suggestions are the ones worth working out ahead."""
    owners: dict[str, int] = defaultdict(int)
    for company in companies:
        owners[normalize_name(company.name)] += 1
    return [o for o in organizations if owners.get(normalize_name(o.name), 0) != 1]


def suggest(companies: Sequence[Company], organizations: Sequence[Organization]) -> list[Suggestion]:
    """Scored candidates for organizations that map to no company (best first per organization).

    Every company is a candidate, mapped ones included: a site often rolls up into a company whose
    main organization is already mapped ("Contoso - Denver" into "Contoso").
    """
    if not companies:
        return []
    # Only the mapping view suggests: a function that never does never loads the fuzzy matcher.
    from rapidfuzz import fuzz, process

    choices = [" ".join(name_tokens(c.name)) for c in companies]
    suggestions: list[Suggestion] = []
    for org in organizations:
        query = " ".join(name_tokens(org.name))
        found = process.extract(
            query, choices, scorer=fuzz.WRatio, score_cutoff=SUGGESTION_CUTOFF, limit=None
        )
        ranked = sorted(
            found, key=lambda hit: (-hit[1], companies[hit[2]].name.casefold(), companies[hit[2]].id)
        )
        suggestions.extend(
            Suggestion(pax8_company_id=companies[index].id, rmm_organization_id=org.id, score=round(score, 1))
            for _, score, index in ranked[:SUGGESTIONS_PER_ORGANIZATION]
        )
    return suggestions
