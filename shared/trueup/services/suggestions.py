"""Mapping suggestions worked out after a sync, so that the mapping view never does it while a person
waits (see `trueup.store.suggestion_files`)."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from trueup.domain.mapping import organizations_to_suggest, suggest
from trueup.domain.models import Suggestion
from trueup.services.current_generations import current_rmm
from trueup.store.generations import read_pax8_companies
from trueup.store.suggestion_files import put_suggestions, suggestions_key
from trueup.store.table import TrueupTable

# How long stored suggestions are kept: the table's TTL here, and the bucket's rule ExpireSuggestions
# (template.yaml), which must say the same. After that the view works them out itself (slowly).
KEPT_DAYS = 35


def prepare_suggestions(now: datetime) -> dict[str, Any]:
    """Work out and store the suggestions for the current generations of both sources, unless they
    are already stored. Answers what was done (for the log): the key, and how many organizations were
    compared (None when nothing was to do)."""
    table = TrueupTable()
    pax8, rmm = table.get_current("pax8"), current_rmm(table)
    if pax8 is None or not rmm.complete:
        return {"key": None, "organizations": None, "reason": "a source has no current sync yet"}
    pair = (pax8["generation"], rmm.generation)
    if table.suggestions_of(*pair) is not None:
        return {"key": table.suggestions_of(*pair), "organizations": None, "reason": "already worked out"}
    key = suggestions_key(*pair)
    companies = read_pax8_companies(pax8["key"], pax8.get("parties_key"))
    organizations = organizations_to_suggest(companies, rmm.organizations())
    by_organization: dict[str, list[Suggestion]] = {o.id: [] for o in organizations}
    for found in suggest(companies, organizations):
        by_organization[found.rmm_organization_id].append(found)
    put_suggestions(key, by_organization)
    kept = now + timedelta(days=KEPT_DAYS)
    table.record_suggestions(*pair, key, int(kept.timestamp()))
    return {"key": key, "organizations": len(organizations), "reason": None}
