"""Demo upstreams: fake Pax8 and NinjaOne servers speaking the real wire formats, and their data."""
