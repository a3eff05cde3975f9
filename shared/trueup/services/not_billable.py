"""What is not billable, decided by a person: RMM organizations ignored (the MSP's own, a lab, a test
tenant: they leave every coverage and the unmapped lists) and mapping suggestions rejected (never
suggested again for that pair). Both are checked against the current data when they are made; both
are kept when that data changes, and shown with the name they had then."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from trueup.errors import Conflict, NotFound
from trueup.services.review import IGNORED, REJECTED, Change, change, iso
from trueup.store.table import TrueupTable


def ignored_ids(table: TrueupTable) -> set[str]:
    return set(table.review_items()[IGNORED])


def rejected_pairs(table: TrueupTable) -> set[tuple[str, str]]:
    """(Pax8 company id, RMM organization id) of every rejected suggestion."""
    return {_pair(key) for key in table.review_items()[REJECTED]}


def _pair(key: str) -> tuple[str, str]:
    company, _, organization = key.partition("#")
    return company, organization


def list_ignored() -> list[dict[str, Any]]:
    items = TrueupTable().review_items()[IGNORED]
    found = [{"rmm_organization_id": org, **doc, "version": version} for org, (doc, version) in items.items()]
    return sorted(found, key=lambda o: (o["name"].casefold(), o["rmm_organization_id"]))


def list_rejected() -> list[dict[str, Any]]:
    items = TrueupTable().review_items()[REJECTED]
    found = [
        {"pax8_company_id": c, "rmm_organization_id": o, **doc, "version": version}
        for (c, o), (doc, version) in ((_pair(k), v) for k, v in items.items())
    ]
    return sorted(found, key=lambda s: (s["client"].casefold(), s["rmm_organization_name"].casefold()))


def ignore_organization(
    organization_id: str, reason: str, by: dict[str, Any] | None, if_match: int | None
) -> dict[str, Any]:
    """Leave an RMM organization out of every coverage and the unmapped lists, with why."""
    from trueup.services.mappings import current_parties

    table = TrueupTable()
    parties = current_parties(table)
    names = {o.id: o.name for o in parties.organizations} if parties else {}
    if organization_id not in names:
        raise NotFound(f"no RMM organization {organization_id!r} in the current sync")
    name, why = names[organization_id], reason.strip()
    clients = {c.id: c.name for c in parties.companies} if parties else {}
    for company, record in table.manual_mapping_records().items():
        if organization_id in record["rmm_organization_ids"]:
            raise Conflict(
                f"{name} is mapped to {clients.get(company, company)} by hand: "
                "remove it from that mapping first"
            )
    now = datetime.now(UTC)
    doc = {"name": name, "reason": why, "updated_by": by, "updated_at": iso(now)}
    told = f"{name} ignored: not billable"
    _, version = change(_ignored(organization_id, name), doc, by, if_match, told, why, now)
    return {"rmm_organization_id": organization_id, **doc, "version": version}


def restore_organization(
    organization_id: str, by: dict[str, Any] | None, if_match: int | None, reason: str | None = None
) -> None:
    """Count an ignored organization again (from the next snapshot on)."""
    doc, _ = TrueupTable().get_review_item(IGNORED, organization_id)
    name = doc["name"] if doc else organization_id
    change(_ignored(organization_id, name), None, by, if_match, f"{name} restored: billable again", reason)


def _ignored(organization_id: str, name: str) -> Change:
    return Change(
        IGNORED,
        organization_id,
        "organization",
        f"ignored RMM organization {name} ({organization_id})",
        "GET /ignored-organizations",
        client=organization_id,
    )


def reject_suggestion(
    company_id: str,
    organization_id: str,
    reason: str | None,
    by: dict[str, Any] | None,
    if_match: int | None,
) -> dict[str, Any]:
    """Never suggest this organization for this company again."""
    from trueup.services.mappings import current_parties

    table = TrueupTable()
    parties = current_parties(table)
    companies = {c.id: c.name for c in parties.companies} if parties else {}
    organizations = {o.id: o.name for o in parties.organizations} if parties else {}
    if company_id not in companies:
        raise NotFound(f"no Pax8 company {company_id!r} in the current sync")
    if organization_id not in organizations:
        raise NotFound(f"no RMM organization {organization_id!r} in the current sync")
    now = datetime.now(UTC)
    client, name = companies[company_id], organizations[organization_id]
    why = reason.strip() if reason and reason.strip() else None
    doc = {
        "client": client,
        "rmm_organization_name": name,
        "reason": why,
        "updated_by": by,
        "updated_at": iso(now),
    }
    item = _rejected(company_id, organization_id, client, name)
    _, version = change(item, doc, by, if_match, f"suggestion rejected: {name} is not {client}", why, now)
    return {"pax8_company_id": company_id, "rmm_organization_id": organization_id, **doc, "version": version}


def unreject_suggestion(
    company_id: str, organization_id: str, by: dict[str, Any] | None, if_match: int | None
) -> None:
    """Let the pair be suggested again."""
    doc, _ = TrueupTable().get_review_item(REJECTED, f"{company_id}#{organization_id}")
    client = doc["client"] if doc else company_id
    name = doc["rmm_organization_name"] if doc else organization_id
    told = f"suggestion no longer rejected: {name} for {client}"
    change(_rejected(company_id, organization_id, client, name), None, by, if_match, told)


def _rejected(company_id: str, organization_id: str, client: str, name: str) -> Change:
    return Change(
        REJECTED,
        f"{company_id}#{organization_id}",
        "suggestion",
        f"rejected suggestion of {name} for {client}",
        "GET /rejected-suggestions",
        client=company_id,
    )
