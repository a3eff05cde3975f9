"""What people decided, as the engine applies it: organizations that are not billable, rules that
leave devices out, a client's own terms, and decisions on gaps.

Pure: no clock (a decision's expiry is judged at the moment the snapshot is taken, passed in).

- An ignored organization (the MSP's own, a lab, a test tenant) leaves every coverage and the
  unmapped lists: its devices are no one's.
- An exclusion rule leaves matching devices out of the coverages it names, under the reason
  `excluded_by_rule`, checked right after pending and inactive: it is a person's explicit choice.
- A client's allowance ("25 devices included") counts that many of its devices as licensed:
  variance = max(devices - allowance, 0) - licences. Its own tolerance replaces the settings'.
- A decision belongs to a client and coverage, not to a snapshot. `will_bill` and `will_adjust` hold
  while the row's devices and licences are those it was decided on, and lapse as soon as either
  changes; `dismissed` holds until an admin removes it; `muted` holds until its date has passed. A
  lapsed decision is still shown, with why; dismissed and muted rows in effect are set aside from
  the cards and counted apart.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Sequence
from datetime import datetime

from trueup.domain.models import (
    Decision,
    DecisionKind,
    Device,
    ExclusionRule,
    Organization,
    Review,
    RowDecision,
)

SET_ASIDE = (DecisionKind.DISMISSED, DecisionKind.MUTED)


def review_key(coverage_id: str, row_key: str) -> str:
    """Where a client's terms and decision in one coverage are kept in a Review."""
    return f"{coverage_id}/{row_key}"


def billable_organizations(organizations: Sequence[Organization], review: Review) -> list[Organization]:
    """The organizations that are not ignored."""
    ignored = review.ignored_organizations
    return [o for o in organizations if o.id not in ignored] if ignored else list(organizations)


class RuleMatcher:
    """Which rules a device matches (by index in `rules`), worked out once per device."""

    def __init__(self, rules: Sequence[ExclusionRule]):
        self.rules = list(rules)
        self._names = [
            re.compile("|".join(fnmatch.translate(p.casefold()) for p in rule.name_patterns))
            if rule.name_patterns
            else None
            for rule in self.rules
        ]
        self._roles = [{r.casefold() for r in rule.roles} for rule in self.rules]
        self._tags = [{t.casefold() for t in rule.tags} for rule in self.rules]

    def __bool__(self) -> bool:
        return bool(self.rules)

    def matched(self, device: Device) -> tuple[int, ...]:
        if not self.rules:
            return ()
        name = device.name.casefold()
        role = (device.role or "").casefold()
        tags = {t.casefold() for t in device.tags}
        return tuple(
            i
            for i in range(len(self.rules))
            if (self._names[i] is not None and self._names[i].match(name))  # type: ignore[union-attr]
            or (role and role in self._roles[i])
            or (tags & self._tags[i])
        )

    def applying(self, matched: tuple[int, ...], coverage_id: str) -> ExclusionRule | None:
        """The first of the matched rules that applies to this coverage, if any."""
        for i in matched:
            rule = self.rules[i]
            if not rule.coverage_ids or coverage_id in rule.coverage_ids:
                return rule
        return None


def variance_with_allowance(devices: int, licenses: int, allowance: int) -> int:
    """Devices up to the allowance count as licensed; the allowance never makes licences unneeded
    by itself: 20 devices with 25 included and 5 licences is over-licensed by 5."""
    return max(devices - allowance, 0) - licenses


def decision_on(
    decision: Decision, devices: int | None, licenses: int | None, as_of: datetime
) -> RowDecision:
    """The decision as a row of a snapshot taken at `as_of` shows it: in effect, or lapsed and why."""
    lapsed_because = None
    if decision.kind in (DecisionKind.WILL_BILL, DecisionKind.WILL_ADJUST):
        if (devices, licenses) != (decision.devices, decision.licenses):
            lapsed_because = (
                f"the figures changed since it was decided ({_figures(decision.devices, decision.licenses)} "
                f"then, {_figures(devices, licenses)} now)"
            )
    elif decision.kind is DecisionKind.MUTED and decision.until is not None and as_of.date() > decision.until:
        lapsed_because = f"muted until {decision.until.isoformat()}, which has passed"
    return RowDecision(
        kind=decision.kind,
        reason=decision.reason,
        decided_by=decision.decided_by,
        decided_at=decision.decided_at,
        effective=decision.effective,
        until=decision.until,
        lapsed=lapsed_because is not None,
        lapsed_because=lapsed_because,
    )


def sets_aside(decision: RowDecision | None) -> bool:
    """Whether a row leaves the cards: dismissed or muted, and in effect."""
    return decision is not None and not decision.lapsed and decision.kind in SET_ASIDE


def _figures(devices: int | None, licenses: int | None) -> str:
    def count(n: int | None, one: str) -> str:
        return f"no {one}s" if n is None else f"{n} {one}{'' if n == 1 else 's'}"

    return f"{count(devices, 'device')}, {count(licenses, 'licence')}"
