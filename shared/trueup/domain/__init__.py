"""The pure reconciliation domain: models, name mapping, coverages and the engine. No I/O, no clock."""
