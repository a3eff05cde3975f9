"""Debian's Chromium, driven by the playwright package: never a browser that Playwright downloads."""

from __future__ import annotations

from playwright.sync_api import ViewportSize

from infra.browser import CHROMIUM, CHROMIUM_ARGS

__all__ = ["CHROMIUM", "CHROMIUM_ARGS", "LAPTOP", "PHONE", "missing_browser"]
LAPTOP = ViewportSize(width=1280, height=800)
PHONE = ViewportSize(width=390, height=844)


def missing_browser() -> str | None:
    """Why the browser tests cannot run here, with what to do about it; None when they can."""
    if not CHROMIUM.is_file():
        return (
            f"Chromium is missing at {CHROMIUM}: install it with `sudo apt-get install -y chromium` "
            "(Debian/Ubuntu; .ci/run does this in CI), or point TRUEUP_CHROMIUM at a Chromium binary. "
            "Never run `playwright install`."
        )
    return None
