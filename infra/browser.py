"""Debian's Chromium, as every headless run of the page uses it (browser tests, screenshot, benchmark).

Never a browser that Playwright downloads: the package drives the one the machine has.
"""

from __future__ import annotations

import os
from pathlib import Path

CHROMIUM = Path(os.environ.get("TRUEUP_CHROMIUM", "/usr/bin/chromium"))
CHROMIUM_ARGS = [
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
