"""Who is calling, from what API Gateway's JWT authorizer passes: roles from a claim or a scope."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from trueup.api.identity import LOCAL_USER, Caller, Forbidden, Unauthorized, caller_of, claim_values
from trueup.config import config

BASE_ENV = {"TRUEUP_TABLE": "t", "TRUEUP_BUCKET": "b", "TRUEUP_EVENT_BUS": "e"}


@pytest.fixture(autouse=True)
def environment(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    for name in ("TRUEUP_SIGN_IN", "TRUEUP_ROLE_CLAIM", "TRUEUP_ROLE_SCOPE_PREFIX"):
        monkeypatch.delenv(name, raising=False)
    for name, value in BASE_ENV.items():
        monkeypatch.setenv(name, value)
    config.cache_clear()
    yield
    config.cache_clear()


def event(claims: dict[str, Any] | None, scopes: list[str] | None = None) -> dict[str, Any]:
    context: dict[str, Any] = {"http": {"method": "GET"}}
    if claims is not None:
        context["authorizer"] = {"jwt": {"claims": claims, "scopes": scopes}}
    return {"requestContext": context}


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("[admin viewer]", ["admin", "viewer"]),  # how API Gateway flattens an array claim
        ("[admin]", ["admin"]),
        ("[]", []),
        ("admin", ["admin"]),
        (["viewer"], ["viewer"]),
        ("trueup/admin trueup/viewer", ["trueup/admin", "trueup/viewer"]),
        (None, []),
    ],
)
def test_claim_values_read_what_api_gateway_passes(value: Any, expected: list[str]) -> None:
    assert claim_values(value) == expected


def test_an_entra_person_with_app_roles() -> None:
    caller = caller_of(event({"sub": "abc", "name": "Ada", "roles": "[admin viewer]", "aud": "app"}))
    assert caller == Caller("abc", "Ada", frozenset({"admin", "viewer"}))


def test_an_entra_script_has_no_scope_and_its_role_in_roles() -> None:
    caller = caller_of(event({"sub": "sp-1", "azp": "script-app", "roles": "[viewer]"}))
    assert (caller.subject, caller.name, caller.roles) == ("sp-1", "script-app", frozenset({"viewer"}))


def test_cognito_people_by_group_and_scripts_by_scope(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRUEUP_ROLE_CLAIM", "cognito:groups")
    monkeypatch.setenv("TRUEUP_ROLE_SCOPE_PREFIX", "trueup/")
    config.cache_clear()
    person = caller_of(event({"sub": "u1", "email": "a@msp.example", "cognito:groups": "[viewer]"}))
    assert (person.name, person.roles) == ("a@msp.example", frozenset({"viewer"}))
    script = caller_of(
        event({"sub": "c1", "client_id": "c1", "scope": "trueup/admin"}, scopes=["trueup/admin"])
    )
    assert script.roles == frozenset({"admin"})
    # A scope of another resource server, or an unknown role, gives nothing.
    other = caller_of(event({"sub": "c2", "scope": "other/admin trueup/owner"}))
    assert other.roles == frozenset()


def test_unknown_roles_are_ignored_and_a_role_needs_its_name_exactly() -> None:
    caller = caller_of(event({"sub": "x", "roles": "[Admin superuser]"}))
    assert caller.roles == frozenset()
    with pytest.raises(Forbidden, match="Reading trueup needs the viewer or admin role, and x has neither"):
        caller.require("viewer", "Reading trueup")


def test_a_viewer_is_refused_admin_actions_with_the_role_named() -> None:
    caller = caller_of(event({"sub": "v", "email": "v@msp.example", "roles": "[viewer]"}))
    caller.require("viewer", "Reading trueup")
    with pytest.raises(
        Forbidden, match=r"Taking a snapshot needs the admin role; .* v@msp.example \(viewer\)"
    ):
        caller.require("admin", "Taking a snapshot")


def test_no_claims_is_unauthorized_unless_sign_in_is_off(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(Unauthorized):
        caller_of(event(None))
    with pytest.raises(Unauthorized):
        caller_of(event({"roles": "[admin]"}))  # no subject: not a token API Gateway would pass
    monkeypatch.setenv("TRUEUP_SIGN_IN", "off")
    config.cache_clear()
    assert caller_of(event(None)) is LOCAL_USER
    assert LOCAL_USER.roles == frozenset({"admin", "viewer"})
