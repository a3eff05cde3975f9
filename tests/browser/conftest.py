"""Fixtures of the browser tests: one Chromium per session, a fresh local stack and page per test."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, Page, expect, sync_playwright

from tests.browser.browser import CHROMIUM, CHROMIUM_ARGS, LAPTOP, missing_browser
from tests.browser.stack import LocalStack


@pytest.fixture(scope="session")
def browser() -> Iterator[Browser]:
    problem = missing_browser()
    if problem:
        # A failure, never a skip: CI installs Chromium, so a missing one is a broken machine.
        pytest.fail(f"the browser tests cannot run: {problem}", pytrace=False)
    # The first request to each of the stack's functions starts its worker process: allow for that.
    expect.set_options(timeout=15_000)
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            yield chromium
        finally:
            chromium.close()


@pytest.fixture
def stack(tmp_path: Path) -> Iterator[LocalStack]:
    """A fresh stack in demo mode: synced, no snapshot yet."""
    running = LocalStack(tmp_path / "data", tmp_path / "stack.log")
    running.start()
    try:
        yield running
    finally:
        running.stop()


@pytest.fixture(scope="module")
def demo_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalStack]:
    """One demo stack per module for the tests that only read its one snapshot: they sync nothing, take
    no snapshot and change no mapping or setting (a test that does takes its own `stack`)."""
    root = tmp_path_factory.mktemp("demo-stack")
    running = LocalStack(root / "data", root / "stack.log")
    running.start()
    try:
        yield running
    finally:
        running.stop()


@pytest.fixture(scope="module")
def demo_snapshot(demo_stack: LocalStack) -> dict[str, Any]:
    """The shared stack's one snapshot, taken through the API."""
    taken: dict[str, Any] = demo_stack.snapshot(demo_stack.ok("POST", "/snapshots")["id"])
    return taken


@pytest.fixture
def snapshot(stack: LocalStack) -> dict[str, Any]:
    """The first snapshot of a fresh stack, taken through the API."""
    taken: dict[str, Any] = stack.snapshot(stack.ok("POST", "/snapshots")["id"])
    return taken


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    """A laptop-sized page in a fresh context; an uncaught script error fails the test."""
    context = browser.new_context(viewport=LAPTOP, accept_downloads=True, locale="en-US")
    opened = context.new_page()
    page_errors: list[str] = []
    opened.on("pageerror", lambda error: page_errors.append(str(error)))
    try:
        yield opened
    finally:
        context.close()
    assert not page_errors, f"the page raised script errors: {page_errors}"
