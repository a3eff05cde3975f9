"""Comparing two snapshots' figures: what each row counts, without what changed since the one before
(which differs between two snapshots of the same data by design: the second's rows are "same")."""

from __future__ import annotations

from typing import Any


def figures(coverages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [
        {
            **{k: v for k, v in coverage.items() if k not in ("summary", "rows")},
            "summary": {k: v for k, v in coverage["summary"].items() if k != "changes"},
            **(
                {
                    "rows": [
                        {k: v for k, v in r.items() if k not in ("previous", "change")}
                        for r in coverage["rows"]
                    ]
                }
                if "rows" in coverage
                else {}
            ),
        }
        for coverage in coverages
    ]
