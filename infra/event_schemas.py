"""`make event-schemas`: write the JSON Schema of every event trueup publishes to shared/events/.

The schemas are the contract for whoever adds a rule on trueup's bus; tests/unit checks that the
files are what the event models say, and tests/integration checks every event the tests publish
against them.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from trueup.events import ALL_EVENTS, schema_file_name, schema_of

SCHEMAS = Path(__file__).resolve().parents[1] / "shared" / "events"


def rendered() -> dict[str, str]:
    """File name -> its content, for every event."""
    return {schema_file_name(m): json.dumps(schema_of(m), indent=2) + "\n" for m in ALL_EVENTS}


def main() -> int:
    SCHEMAS.mkdir(exist_ok=True)
    wanted = rendered()
    for stale in set(p.name for p in SCHEMAS.glob("*.json")) - set(wanted):
        (SCHEMAS / stale).unlink()
    for name, text in wanted.items():
        (SCHEMAS / name).write_text(text)
    print(f"wrote {len(wanted)} event schemas to {SCHEMAS}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
