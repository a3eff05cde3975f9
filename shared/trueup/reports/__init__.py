"""Reports made from snapshots (CSV for billing reviews, client adjustments and audits)."""
