"""Vendor adapters: one module per upstream (Pax8, each RMM), plus the RMM adapter registry."""
