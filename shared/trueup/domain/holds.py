"""When a sync's data is too short to replace the current data: it is held for a person to decide.

Vendors fail in ways that look like success: a device list that ends early, a company list that
answers `totalElements: 0`. Made current, such data would show forty clients gone at the next
snapshot. So a new generation is compared with the current one, list by list, before it replaces it.
Pure: counts in, words out.
"""

from __future__ import annotations

from collections.abc import Mapping

# The lists compared, by the record kind a generation counts, with their names in words.
LISTS: tuple[tuple[str, str, str], ...] = (
    ("company", "company", "companies"),
    ("subscription", "subscription", "subscriptions"),
    ("organization", "organization", "organizations"),
    ("device", "device", "devices"),
)


def shrinkage(
    vendor: str,
    current: Mapping[str, int],
    new: Mapping[str, int],
    *,
    percent: int,
    records: int,
) -> str | None:
    """Why `new` (record counts by kind) may not replace `current`, in words; None when it may.

    A list is too short when it became empty while the current one is not, or when it lost more than
    `percent` % of the current list and at least `records` records (both: a 3-device client losing
    one device is not a vendor fault, nor is 1 % of 100,000; the settings give both, by default 20 %
    and 10). A list the current data does not have is never too short.
    """
    found = []
    for kind, one, many in LISTS:
        was = current.get(kind, 0)
        now = new.get(kind, 0)
        lost = was - now
        if was > 0 and (now == 0 or (lost * 100 > percent * was and lost >= records)):
            found.append(
                f"{vendor} returned {now:,} {one if now == 1 else many}; the current data has {was:,}"
            )
    return "; ".join(found) or None
