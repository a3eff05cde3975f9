"""Signing in to the Reconciliation page in real Chromium (TRUEUP_AUTH=oidc): the page sends the person
to the local OpenID provider (the oidc-provider package) and back with the authorization code and
PKCE, and what each role may do is what the page offers and the API allows.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from tests.browser.stack import LocalStack
from tests.stack_process import StackProcess, running_stack

VIEWER = ("viewer@trueup.local", "trueup-viewer")
ADMIN = ("admin@trueup.local", "trueup-admin")


@pytest.fixture(scope="module")
def signed_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[StackProcess]:
    with running_stack(tmp_path_factory.mktemp("sign-in"), quiet=True, auth="oidc") as running:
        yield running


def script_headers(stack: StackProcess, role: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {stack.script_token(role)}"}


def sign_in(page: Page, stack: StackProcess, email: str, password: str) -> None:
    """Open the page, land on the provider's sign-in form, and sign in there."""
    page.goto(stack.url + "/")
    issuer = stack.stack_file()["auth"]["issuer"]
    expect(page).to_have_url(re.compile(re.escape(issuer) + "/interaction/"))
    page.get_by_label("E-mail").fill(email)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in").click()
    expect(page).to_have_url(stack.url + "/")


def test_the_viewer_signs_in_sees_the_table_cannot_take_a_snapshot_and_signs_out(
    page: Page, signed_stack: StackProcess
) -> None:
    status, taken = signed_stack.api("POST", "/snapshots", headers=script_headers(signed_stack, "admin"))
    assert status == 201
    status, snapshot = signed_stack.api(
        "GET", f"/snapshots/{taken['id']}", headers=script_headers(signed_stack, "admin")
    )
    assert status == 200
    page.goto(signed_stack.url + "/")
    # A wrong password is refused, on the provider's own page.
    page.get_by_label("E-mail").fill(VIEWER[0])
    page.get_by_label("Password").fill("not-the-password")
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("alert")).to_have_text("Wrong e-mail or password.")
    page.get_by_label("Password").fill(VIEWER[1])
    page.get_by_role("button", name="Sign in").click()
    expect(page).to_have_url(signed_stack.url + "/")

    first = snapshot["coverages"][0]["rows"][0]["client"]
    expect(page.locator("#rows tr.row .client-name").first).to_have_text(first)
    expect(page.locator("#who-name")).to_have_text("Vic Viewer")
    expect(page.locator("#who-role")).to_have_text("viewer")
    take = page.locator("#take-snapshot")
    expect(take).to_be_disabled()
    expect(take).to_have_attribute("title", re.compile("Needs the admin role"))
    expect(page.locator("#sync-now")).to_be_disabled()
    expect(page.locator("#role-note")).to_contain_text("You are signed in as a viewer")
    # The page is not the only guard: the API refuses the viewer's own token too.
    refused = page.evaluate(
        """() => fetch('snapshots', {method: 'POST', headers: {Authorization: 'Bearer ' +
             JSON.parse(sessionStorage.getItem('trueup.session')).access_token}})
             .then(async r => [r.status, (await r.json()).message])"""
    )
    assert refused[0] == 403 and "needs the admin role" in refused[1]

    page.get_by_role("button", name="Sign out").click()
    expect(page.locator("#signed-out-text")).to_have_text("You are signed out.")
    assert page.evaluate("() => sessionStorage.getItem('trueup.session')") is None
    expect(page.get_by_role("button", name="Sign in")).to_be_visible()


def test_the_admin_signs_in_takes_a_snapshot_downloads_the_report_and_is_recorded_as_its_taker(
    page: Page, signed_stack: StackProcess, tmp_path: Path
) -> None:
    sign_in(page, signed_stack, *ADMIN)
    expect(page.locator("#who-name")).to_have_text("Ada Admin")
    expect(page.locator("#role-note")).to_be_hidden()
    take = page.locator("#take-snapshot")
    expect(take).to_be_enabled()
    take.click()
    expect(page.locator("#notice")).to_contain_text("Snapshot taken")
    with page.expect_download() as download:
        page.locator("#export").click()
    saved = tmp_path / download.value.suggested_filename
    download.value.save_as(saved)
    assert saved.read_text(encoding="utf-8-sig").startswith("Client,Devices,Licenses,Variance,Status")

    status, latest = signed_stack.api(
        "GET", "/snapshots/latest", headers=script_headers(signed_stack, "viewer")
    )
    assert status == 200
    assert latest["taken_by"] == {"subject": "local-admin", "name": "Ada Admin"}


def test_an_unknown_person_is_refused_by_the_provider(page: Page, signed_stack: StackProcess) -> None:
    page.goto(signed_stack.url + "/")
    page.get_by_label("E-mail").fill("stranger@example.com")
    page.get_by_label("Password").fill("anything")
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("alert")).to_have_text("Wrong e-mail or password.")
    assert page.url.startswith(signed_stack.stack_file()["auth"]["issuer"])


def test_with_sign_in_off_the_page_says_so(page: Page, stack: LocalStack) -> None:
    page.goto(stack.url + "/")
    expect(page.locator("#who-name")).to_have_text("Sign-in off (local)")
    expect(page.locator("#sign-out")).to_be_hidden()
    expect(page.locator("#take-snapshot")).to_be_enabled()


def test_each_change_is_in_the_audit_view_with_the_signed_in_persons_name(
    page: Page, signed_stack: StackProcess
) -> None:
    sign_in(page, signed_stack, *ADMIN)
    page.get_by_role("navigation", name="Views").get_by_role("link", name="Unmapped clients").click()
    entry = page.locator("#unmapped-rmm li", has_text="Internal IT - Lab")
    entry.get_by_role("button", name="Ignore Internal IT - Lab: not billable").click()
    entry.get_by_label("Why Internal IT - Lab is not billable").fill("our own lab")
    entry.get_by_role("button", name="Ignore", exact=True).click()
    expect(page.locator("#ignored li", has_text="Internal IT - Lab")).to_contain_text("by Ada Admin")
    page.locator("#ignored li", has_text="Internal IT - Lab").get_by_role(
        "button", name="Restore Internal IT - Lab"
    ).click()
    expect(page.locator("#unmapped-rmm li", has_text="Internal IT - Lab")).to_have_count(1)

    page.get_by_role("navigation", name="Views").get_by_role("link", name="Audit log").click()
    expect(page.get_by_role("heading", name="Audit log")).to_be_visible()
    rows = page.locator("#audit-rows tr")
    expect(rows.nth(0)).to_contain_text("Ada Admin")
    expect(rows.nth(0)).to_contain_text("Internal IT - Lab restored: billable again")
    expect(rows.nth(1)).to_contain_text("Internal IT - Lab ignored: not billable")
    expect(rows.nth(1).locator("td").nth(3)).to_have_text("our own lab")
    page.get_by_label("Kind").select_option("mapping")
    expect(page.locator("#audit-empty")).to_have_text("No changes of this kind recorded yet.")
    page.get_by_label("Kind").select_option("organization")
    expect(rows).to_have_count(2)
