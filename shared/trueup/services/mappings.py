"""Client mappings over HTTP: the current view (automatic, manual, suggestions) and manual changes."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from trueup.domain.mapping import map_clients, suggest
from trueup.domain.models import Company, MappingResult, Organization, Suggestion
from trueup.domain.names import folded
from trueup.errors import Conflict, InvalidInput, NotFound
from trueup.services.current_generations import current_rmm
from trueup.services.snapshots import NoCurrentData
from trueup.store.generations import read_pax8_companies
from trueup.store.suggestion_files import read_suggestions
from trueup.store.table import TrueupTable

# The lists the view holds, each paged and searched on its own (?list=, ?q=, ?cursor=).
LISTS = ("mappings", "manual", "suggestions", "unmapped_pax8", "unmapped_rmm", "companies")
DEFAULT_LIST_ROWS = 100
MAX_LIST_ROWS = 1000


# A warm function keeps what the last view read and worked out: the parties of the current
# generations, the suggestions stored for them after the sync (`trueup.services.suggestions`), and
# those it had to work out itself (the costly part: a fuzzy comparison of each organization with
# every company), until any of them changes.
@dataclass
class _Parties:
    generations: tuple[str, str]  # (Pax8, RMM)
    companies: list[Company]
    organizations: list[Organization]
    stored: dict[str, list[Suggestion]] | None = None  # by organization, as worked out after the sync
    worked_out: tuple[tuple[str, ...], dict[str, list[Suggestion]]] | None = None  # (for, by organization)
    # (the manual mappings, the ignored organizations, the result)
    mapped: tuple[dict[str, list[str]], set[str], MappingResult] | None = None
    requested_at: float | None = None  # when this function last asked for them (time.monotonic)

    def mapping(self, manual: dict[str, list[str]], ignored: set[str]) -> MappingResult:
        """The mapping of these parties with these manual mappings, the ignored organizations left out
        (they are no one's), worked out again when either changes."""
        if self.mapped is None or self.mapped[:2] != (manual, ignored):
            billable = [o for o in self.organizations if o.id not in ignored]
            result = map_clients(self.companies, billable, manual, with_suggestions=False)
            self.mapped = (manual, set(ignored), result)
        return self.mapped[2]


_parties: _Parties | None = None


def current_parties(table: TrueupTable) -> _Parties | None:
    global _parties
    pax8_ptr, rmm = table.get_current("pax8"), current_rmm(table)
    if pax8_ptr is None or not rmm.complete:
        return None
    generations = (pax8_ptr["generation"], rmm.generation)
    if _parties is None or _parties.generations != generations:
        _parties = _Parties(
            generations,
            read_pax8_companies(pax8_ptr["key"], pax8_ptr.get("parties_key")),
            rmm.organizations(),
        )
    return _parties


def _suggestions(
    table: TrueupTable, parties: _Parties, unmapped: list[str], organization: str | None
) -> list[Suggestion] | None:
    """Suggestions for the unmapped organizations (only `organization`'s, when named), in `unmapped`'s
    order: those stored after the sync, and those of any organization it did not foresee (mapped by
    name until its company was mapped by hand elsewhere) worked out here. None while they are being
    worked out: more than a moment's work is never done while a person waits, but asked of the
    suggestions function (they are after every sync; this covers the time it takes, a failure, and
    data older than them)."""
    if parties.stored is None:  # not stored yet, or not read yet: it may have been since
        key = table.suggestions_of(*parties.generations)
        parties.stored = read_suggestions(key) if key else None
    stored = parties.stored or {}
    wanted = unmapped if organization is None else [o for o in unmapped if o == organization]
    missing = tuple(o for o in wanted if o not in stored)
    if organization is None and len(missing) * len(parties.companies) > LIVE_COMPARISONS:
        _request_suggestions(parties)
        return None
    if missing and (parties.worked_out is None or not set(missing) <= parties.worked_out[1].keys()):
        by_id = {o.id: o for o in parties.organizations}
        found: dict[str, list[Suggestion]] = {o: [] for o in missing}
        for suggestion in suggest(parties.companies, [by_id[o] for o in missing]):
            found[suggestion.rmm_organization_id].append(suggestion)
        parties.worked_out = (missing, found)
    worked_out = parties.worked_out[1] if missing and parties.worked_out else {}
    return [s for o in wanted for s in (stored[o] if o in stored else worked_out[o])]


# The most name comparisons an answer makes itself (each about a microsecond): 400 organizations
# against 1,000 companies, 40 against 10,000. Beyond, the suggestions function is asked.
LIVE_COMPARISONS = 400_000
REQUEST_AGAIN_S = 60.0  # a request lost (or a function that failed) is asked again after this


def _request_suggestions(parties: _Parties) -> None:
    now = time.monotonic()
    if parties.requested_at is not None and now - parties.requested_at < REQUEST_AGAIN_S:
        return
    from trueup import events

    events.publish(
        [
            events.SuggestionsRequested(
                pax8_generation=parties.generations[0], rmm_generation=parties.generations[1]
            )
        ]
    )
    parties.requested_at = now


def parse_list(value: str | None) -> str | None:
    if value is None or not value.strip():
        return None
    if value.strip() not in LISTS:
        raise InvalidInput(f"unknown list {value!r}; use one of {', '.join(LISTS)}")
    return value.strip()


def mapping_view(
    only: str | None = None,
    search: str | None = None,
    *,
    start: int = 0,
    limit: int = DEFAULT_LIST_ROWS,
    company: str | None = None,
    organization: str | None = None,
) -> dict[str, Any]:
    """Mappings (automatic and manual), suggestions and what is left unmapped, from the current data.

    `summary` counts each list whole. Each list answers a page (`limit` entries from `start`) of the
    entries whose names contain `search`, and `next` says where each continues (null: its end).
    `only` answers one list, and works out suggestions only when that list is them (or none is
    named): counting what is unmapped is quick, suggesting is not. `company` and `organization`
    narrow every list to the entries of one company or organization (a picker shows a client's own
    suggestions first; saving reads the company's mapping).
    `manual` holds the mappings set by hand; `companies` every Pax8 company, mapped or not: where an
    organization may go."""
    table = TrueupTable()
    records = table.manual_mapping_records()
    manual = {cid: doc["rmm_organization_ids"] for cid, doc in records.items()}

    def changed(company_id: str) -> dict[str, Any]:
        doc = records.get(company_id) or {}
        return {
            "updated_at": doc.get("updated_at"),
            "updated_by": doc.get("updated_by"),
            **({"version": doc["version"]} if doc else {}),
        }

    parties = current_parties(table)
    lists: dict[str, _List]
    extra: dict[str, Any] = {}
    if parties is None:
        lists = {
            "mappings": _List(
                sorted(manual.items()),
                render=lambda item: {
                    "pax8_company_id": item[0],
                    "client": None,
                    "rmm_organization_ids": item[1],
                    "source": "manual",
                    **changed(item[0]),
                },
                names=lambda item: (),
                company=lambda item: item[0],
                organizations=lambda item: item[1],
            ),
            **{name: _List([]) for name in ("suggestions", "unmapped_rmm", "unmapped_pax8", "companies")},
        }
        lists["manual"] = lists["mappings"]
        suggested = True
        extra = {"data": "no current sync: sync first"}
    else:
        from trueup.services.not_billable import ignored_ids, rejected_pairs

        companies, organizations = parties.companies, parties.organizations
        result = parties.mapping(manual, ignored_ids(table))
        suggested = only in (None, "suggestions")
        worked_out = _suggestions(table, parties, result.unmapped_rmm, organization) if suggested else []
        if worked_out is None:  # being worked out: none yet, and the summary cannot count them
            extra["suggestions_pending"] = True
            suggested = False
        rejected = rejected_pairs(table) if worked_out else set()
        suggestions = [
            s for s in worked_out or [] if (s.pax8_company_id, s.rmm_organization_id) not in rejected
        ]
        names = {c.id: c.name for c in companies}
        org_names = {o.id: o.name for o in organizations}
        mapped = _List(
            result.mappings,
            render=lambda m: {
                **m.model_dump(mode="json"),
                "rmm_organizations": [{"id": o, "name": org_names[o]} for o in m.rmm_organization_ids],
                **(changed(m.pax8_company_id) if m.source == "manual" else {}),
            },
            names=lambda m: (m.client, *(org_names[o] for o in m.rmm_organization_ids)),
            company=lambda m: m.pax8_company_id,
            organizations=lambda m: m.rmm_organization_ids,
        )
        lists = {
            "mappings": mapped,
            "manual": dataclasses.replace(mapped, items=[m for m in result.mappings if m.source == "manual"]),
            "suggestions": _List(
                suggestions,
                render=lambda s: {
                    **s.model_dump(mode="json"),
                    "client": names[s.pax8_company_id],
                    "rmm_organization_name": org_names[s.rmm_organization_id],
                },
                names=lambda s: (names[s.pax8_company_id], org_names[s.rmm_organization_id]),
                company=lambda s: s.pax8_company_id,
                organizations=lambda s: (s.rmm_organization_id,),
            ),
            "unmapped_rmm": _List(
                result.unmapped_rmm,
                render=lambda o: {"rmm_organization_id": o, "name": org_names[o]},
                names=lambda o: (org_names[o],),
                organizations=lambda o: (o,),
            ),
            "unmapped_pax8": _List(
                result.unmapped_pax8,
                render=lambda c: {"pax8_company_id": c, "client": names[c]},
                names=lambda c: (names[c],),
                company=lambda c: c,
            ),
            "companies": _List(
                sorted(companies, key=lambda c: (c.name.casefold(), c.id)),
                render=lambda c: {"pax8_company_id": c.id, "client": c.name},
                names=lambda c: (c.name,),
                company=lambda c: c.id,
            ),
        }
    summary: dict[str, Any] = {name: len(entries.items) for name, entries in lists.items()}
    if not suggested:
        summary["suggestions"] = None  # not worked out for this answer
    needle = folded(search.strip()) if search and search.strip() else None
    view: dict[str, Any] = {"summary": summary}
    following: dict[str, str | None] = {}
    for name in LISTS if only is None else (only,):
        chosen = lists[name]
        items = chosen.items
        if needle is not None:
            items = [i for i in items if any(needle in folded(text) for text in chosen.names(i))]
        if company is not None:
            items = [i for i in items if chosen.company(i) == company]
        if organization is not None:
            items = [i for i in items if organization in chosen.organizations(i)]
        view[name] = [chosen.render(i) for i in items[start : start + limit]]  # only the page is built
        following[name] = str(start + limit) if start + limit < len(items) else None
    return {**view, "next": following, **extra}


@dataclass(frozen=True)
class _List:
    """One list of the view: its entries as worked out, and how to show, search and narrow one."""

    items: Sequence[Any]
    render: Callable[[Any], dict[str, Any]] = lambda item: item
    names: Callable[[Any], Sequence[str]] = lambda item: ()
    company: Callable[[Any], str | None] = lambda item: None
    organizations: Callable[[Any], Sequence[str]] = lambda item: ()


def set_mapping(
    company_id: str,
    organization_ids: list[str],
    by: dict[str, Any] | None = None,
    if_match: int | None = None,
) -> dict[str, Any]:
    """Map a Pax8 company to exactly these RMM organizations (an empty list: it has none); `by` made
    it. Over the version read, or the one If-Match names (412 when stale; 0: no manual mapping yet)."""
    table = TrueupTable()
    parties = current_parties(table)
    if parties is None:
        raise NoCurrentData("no current sync to check the ids against: sync first (POST /syncs)")
    companies, organizations = parties.companies, parties.organizations
    names = {c.id: c.name for c in companies}
    if company_id not in names:
        raise NotFound(f"no Pax8 company {company_id!r} in the current sync")
    wanted = list(dict.fromkeys(organization_ids))
    known = {o.id for o in organizations}
    unknown = [o for o in wanted if o not in known]
    if unknown:  # well-formed, but not what the data holds now: a conflict with the current state
        raise Conflict(f"unknown RMM organization id(s) {', '.join(unknown)} (not in the current sync)")
    from trueup.services.not_billable import ignored_ids

    ignored = sorted(ignored_ids(table) & set(wanted))
    if ignored:
        raise Conflict(
            f"RMM organization {', '.join(ignored)} is ignored (not billable): restore it first "
            "(DELETE /ignored-organizations/{id})"
        )
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
    from trueup.services.audit import audit_entry

    now = datetime.now(UTC)
    doc = {"rmm_organization_ids": wanted, "updated_at": _iso(now), "updated_by": by}
    before = records.get(company_id)
    version = before["version"] if before else 0
    _check(if_match, version, company_id)
    listed = ", ".join(wanted) if wanted else "no RMM organization"
    audit = audit_entry(
        now,
        by,
        "mapping",
        f"mapping of {names[company_id]}: {listed}",
        None if before is None else {"rmm_organization_ids": before["rmm_organization_ids"]},
        {"rmm_organization_ids": wanted},
        client=company_id,
    )
    _write(table, if_match, company_id, doc, before, owners, audit)
    return {
        "version": version + 1,
        "pax8_company_id": company_id,
        "client": names[company_id],
        "rmm_organization_ids": wanted,
        "source": "manual",
        "updated_at": doc["updated_at"],
        "updated_by": by,
    }


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def clear_mapping(company_id: str, by: dict[str, Any] | None = None, if_match: int | None = None) -> None:
    """Return a company to automatic mapping (`by` did); If-Match as for set_mapping."""
    from trueup.services.audit import audit_entry

    table = TrueupTable()
    records = table.manual_mapping_records()
    if company_id not in records:
        raise NotFound(f"no manual mapping for Pax8 company {company_id!r}")
    before = {"rmm_organization_ids": records[company_id]["rmm_organization_ids"]}
    what = f"mapping of {company_id}: back to automatic"
    audit = audit_entry(datetime.now(UTC), by, "mapping", what, before, None, client=company_id)
    _check(if_match, records[company_id]["version"], company_id)
    _write(table, if_match, company_id, None, records[company_id], {}, audit)


def _check(if_match: int | None, version: int, company_id: str) -> None:
    from trueup.services.versions import check_version

    check_version(if_match, version, f"the mapping of {company_id}", "GET /mappings?company=")


def _write(
    table: TrueupTable,
    if_match: int | None,
    company_id: str,
    doc: dict[str, Any] | None,
    before: dict[str, Any] | None,
    owners: dict[str, str],
    audit: dict[str, Any],
) -> None:
    """Write over the version read: a lost race is 409, or 412 when If-Match named the version."""
    from trueup.errors import LostRace, PreconditionFailed

    try:
        table.write_mapping(company_id, doc, before, owners, audit)
    except LostRace as exc:
        if if_match is not None:
            raise PreconditionFailed(str(exc)) from exc
        raise
