"""A row's status: what the reader of a snapshot, an export or a filter acts on.

Apart from the models so that code which only names a status (filters, export file names) loads no
model at all.
"""

from enum import StrEnum


class Status(StrEnum):
    UNDER_LICENSED = "under_licensed"
    UNMAPPED = "unmapped"
    OVER_LICENSED = "over_licensed"
    MATCHED = "matched"
