"""Monthly cycles in the table: started once per id, advanced one recorded step at a time.

The sequencing is trueup.domain.cycles; here each step is applied to the stored cycle with a
conditional write, so that when two functions record their step at the same moment (the two syncs
finishing together) both are kept and exactly one of them starts what comes next.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Literal

from trueup.domain.cycles import Cycle, Next, new_cycle
from trueup.errors import NotFound, TrueupError
from trueup.services.sync_runs import SOURCES, iso
from trueup.store.table import TrueupTable

Step = Callable[[Cycle], tuple[Cycle, Next]]


def start_cycle(
    cycle_id: str, trigger: Literal["schedule", "api"], now: datetime, sources: Sequence[str] = SOURCES
) -> tuple[Cycle, bool]:
    """The cycle of this id, recorded now unless it exists: (it, whether this call created it)."""
    table = TrueupTable()
    cycle = new_cycle(cycle_id, trigger, list(sources), iso(now))
    if table.create_cycle(cycle):
        return cycle, True
    existing = table.get_cycle(cycle_id)
    if existing is None:  # created and gone between two reads: nothing removes cycles
        raise TrueupError(f"cycle {cycle_id} could not be read back")
    return existing, False


def advance(cycle_id: str, step: Step) -> tuple[Cycle, Next]:
    """Apply one step to the stored cycle (retried on a concurrent change): the cycle after it, and
    what to start next (NOTHING when the step was already recorded)."""
    table = TrueupTable()
    for _ in range(20):
        current = table.get_cycle(cycle_id)
        if current is None:
            raise NotFound(f"no cycle {cycle_id!r}")
        updated, next_step = step(current)
        if updated == current:
            return current, Next.NOTHING
        if table.replace_cycle(updated, current):
            return updated, next_step
    raise TrueupError(f"could not record a step of cycle {cycle_id}: too many concurrent changes")
