"""`make screenshot`: the Reconciliation page at laptop width on the demo data, as a PNG for the README.

Starts a fresh local stack in demo mode (in a temporary data directory), takes a snapshot, and
photographs the page in the system's Chromium (the one the browser tests use).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

from playwright.sync_api import ViewportSize, expect, sync_playwright

from tests.browser.browser import CHROMIUM, CHROMIUM_ARGS, missing_browser
from tests.browser.stack import REPO_ROOT, LocalStack, StackError

DEFAULT_OUT = REPO_ROOT / "docs" / "reconciliation.png"


def photograph(out: Path, viewport: ViewportSize) -> None:
    with tempfile.TemporaryDirectory(prefix="trueup-screenshot-") as tmp:
        stack = LocalStack(Path(tmp) / "data", Path(tmp) / "stack.log")
        stack.start()
        try:
            stack.ok("POST", "/snapshots")
            with sync_playwright() as playwright:
                browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
                try:
                    page = browser.new_page(viewport=viewport, locale="en-US")
                    page.goto(stack.url + "/")
                    expect(page.locator("#rows tr.row").first).to_be_visible(timeout=30_000)
                    expect(page.locator('#sync-status [data-source="ninjaone"]')).to_be_visible()
                    expect(page.locator("#unmapped-pill")).to_be_visible()
                    out.parent.mkdir(parents=True, exist_ok=True)
                    page.screenshot(path=str(out))
                finally:
                    browser.close()
        finally:
            stack.stop()


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.browser.screenshot", description=__doc__)
    parser.add_argument("out", nargs="?", type=Path, default=DEFAULT_OUT, help=f"default: {DEFAULT_OUT}")
    parser.add_argument("--width", type=int, default=1280)
    parser.add_argument("--height", type=int, default=1000)
    args = parser.parse_args(argv)
    problem = missing_browser()
    if problem:
        print(f"screenshot: {problem}", file=sys.stderr)
        return 2
    try:
        photograph(args.out, ViewportSize(width=args.width, height=args.height))
    except StackError as exc:
        print(f"screenshot: the local stack failed: {exc}", file=sys.stderr)
        return 1
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
