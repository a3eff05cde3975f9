"""Client mappings over HTTP: the current view (automatic, manual, suggestions) and manual changes."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from trueup.domain.mapping import map_clients
from trueup.domain.models import Company, Organization
from trueup.errors import Conflict, NotFound
from trueup.services.snapshots import NoCurrentData
from trueup.store.generations import read_pax8, read_rmm_organizations
from trueup.store.table import TrueupTable


def _current_parties(table: TrueupTable) -> tuple[list[Company], list[Organization]] | None:
    pax8_ptr, rmm_ptr = table.get_current("pax8"), table.get_current("rmm")
    if pax8_ptr is None or rmm_ptr is None:
        return None
    companies = read_pax8(pax8_ptr["key"], datetime.fromisoformat(pax8_ptr["synced_at"])).companies
    return companies, read_rmm_organizations(rmm_ptr["key"])


def mapping_view() -> dict[str, Any]:
    """Mappings (automatic and manual), suggestions and what is left unmapped, from the current data."""
    table = TrueupTable()
    records = table.manual_mapping_records()
    manual = {cid: doc["rmm_organization_ids"] for cid, doc in records.items()}

    def changed(company_id: str) -> dict[str, Any]:
        doc = records.get(company_id) or {}
        return {"updated_at": doc.get("updated_at"), "updated_by": doc.get("updated_by")}

    parties = _current_parties(table)
    if parties is None:
        return {
            "mappings": [
                {
                    "pax8_company_id": cid,
                    "client": None,
                    "rmm_organization_ids": orgs,
                    "source": "manual",
                    **changed(cid),
                }
                for cid, orgs in sorted(manual.items())
            ],
            "suggestions": [],
            "unmapped_rmm": [],
            "unmapped_pax8": [],
            "data": "no current sync: sync first",
        }
    companies, organizations = parties
    result = map_clients(companies, organizations, manual)
    names = {c.id: c.name for c in companies}
    org_names = {o.id: o.name for o in organizations}
    return {
        "mappings": [
            {
                **m.model_dump(mode="json"),
                "rmm_organizations": [{"id": o, "name": org_names[o]} for o in m.rmm_organization_ids],
                **(changed(m.pax8_company_id) if m.source == "manual" else {}),
            }
            for m in result.mappings
        ],
        "suggestions": [
            {
                **s.model_dump(mode="json"),
                "client": names[s.pax8_company_id],
                "rmm_organization_name": org_names[s.rmm_organization_id],
            }
            for s in result.suggestions
        ],
        "unmapped_rmm": [{"rmm_organization_id": o, "name": org_names[o]} for o in result.unmapped_rmm],
        "unmapped_pax8": [{"pax8_company_id": c, "client": names[c]} for c in result.unmapped_pax8],
    }


def set_mapping(
    company_id: str, organization_ids: list[str], by: dict[str, Any] | None = None
) -> dict[str, Any]:
    """Map a Pax8 company to exactly these RMM organizations (an empty list: it has none); `by` made it."""
    table = TrueupTable()
    parties = _current_parties(table)
    if parties is None:
        raise NoCurrentData("no current sync to check the ids against: sync first (POST /syncs)")
    companies, organizations = parties
    names = {c.id: c.name for c in companies}
    if company_id not in names:
        raise NotFound(f"no Pax8 company {company_id!r} in the current sync")
    wanted = list(dict.fromkeys(organization_ids))
    known = {o.id for o in organizations}
    unknown = [o for o in wanted if o not in known]
    if unknown:  # well-formed, but not what the data holds now: a conflict with the current state
        raise Conflict(f"unknown RMM organization id(s) {', '.join(unknown)} (not in the current sync)")
    records = table.manual_mapping_records()
    owners = {
        org: names.get(other, other) for other, r in records.items() for org in r["rmm_organization_ids"]
    }
    taken = sorted(
        org
        for other, r in records.items()
        if other != company_id
        for org in set(r["rmm_organization_ids"]) & set(wanted)
    )
    if taken:  # the common case, said plainly; a race is caught by the claims in the write itself
        raise Conflict(
            f"RMM organization {', '.join(f'{o} is already mapped to {owners[o]}' for o in taken)}; "
            "remove it there first"
        )
    doc = {"rmm_organization_ids": wanted, "updated_at": _iso(datetime.now(UTC)), "updated_by": by}
    table.write_mapping(company_id, doc, records.get(company_id), owners)
    return {
        "pax8_company_id": company_id,
        "client": names[company_id],
        "rmm_organization_ids": wanted,
        "source": "manual",
        "updated_at": doc["updated_at"],
        "updated_by": by,
    }


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def clear_mapping(company_id: str) -> None:
    """Return a company to automatic mapping."""
    table = TrueupTable()
    records = table.manual_mapping_records()
    if company_id not in records:
        raise NotFound(f"no manual mapping for Pax8 company {company_id!r}")
    table.write_mapping(company_id, None, records[company_id], {})
