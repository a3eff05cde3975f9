"""Sign-in over HTTP (TRUEUP_AUTH=oidc): the local gateway checks tokens as API Gateway's JWT authorizer
does, against the local OpenID provider (the oidc-provider package), and the functions check roles.

Good tokens come from the provider itself (client credentials, as a script gets them); the bad ones
are made here: expired, for another audience, or signed with a key the issuer never published.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from tests.stack_process import StackProcess, running_stack


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[StackProcess]:
    with running_stack(tmp_path_factory.mktemp("signed-in"), auth="oidc") as running:
        yield running


def forged(stack: StackProcess, *, key: Any = None, kid: str | None = None, **claims: Any) -> str:
    """A token like the provider's, changed by `claims`; signed with its key unless `key` is given."""
    state = json.loads((stack.data_dir / "sign-in.json").read_text())
    auth = stack.stack_file()["auth"]
    now = int(time.time())
    payload = {
        "iss": auth["issuer"],
        "aud": auth["audience"],
        "sub": "someone",
        "client_id": "trueup-admin-script",
        "roles": ["admin"],
        "iat": now,
        "exp": now + 600,
        **claims,
    }
    signing_key = key or state["signing_key_pem"]
    return jwt.encode(payload, signing_key, algorithm="RS256", headers={"kid": kid or state["key_id"]})


def call(stack: StackProcess, method: str, path: str, token: str | None) -> tuple[int, Any]:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return stack.api(method, path, headers=headers)


def test_stack_json_describes_the_provider_and_a_client_per_role(stack: StackProcess) -> None:
    auth = stack.stack_file()["auth"]
    assert auth["issuer"].startswith("http://127.0.0.1:")
    assert set(auth["clients"]) == {"admin", "viewer"}
    assert all(c["client_id"] and c["client_secret"] for c in auth["clients"].values())
    discovery = httpx.get(auth["issuer"] + "/.well-known/openid-configuration", timeout=30).json()
    assert discovery["issuer"] == auth["issuer"]
    assert "S256" in discovery["code_challenge_methods_supported"]


def test_the_pages_shell_files_and_sign_in_config_need_no_token(stack: StackProcess) -> None:
    page = httpx.get(stack.url + "/", timeout=30)
    assert page.status_code == 200 and "text/html" in page.headers["content-type"]
    status, config = call(stack, "GET", "/auth/config", None)
    auth = stack.stack_file()["auth"]
    assert status == 200
    assert config == {
        "sign_in": "oidc",
        "issuer": auth["issuer"],
        "client_id": "trueup-page",
        "scope": "openid profile email",
        "redirect_uri": stack.url + "/",
    }


@pytest.mark.parametrize(
    "case",
    ["no token", "garbage", "expired", "not yet valid", "another audience", "another issuer", "another key"],
)
def test_a_bad_token_gets_401_on_every_route_that_needs_one(stack: StackProcess, case: str) -> None:
    now = int(time.time())
    other_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    makers: dict[str, Callable[[], str | None]] = {
        "no token": lambda: None,
        "garbage": lambda: "not-a-jwt",
        "expired": lambda: forged(stack, iat=now - 7200, exp=now - 3600),
        "not yet valid": lambda: forged(stack, nbf=now + 3600),
        "another audience": lambda: forged(stack, aud="api://someone-else", client_id="someone-else"),
        "another issuer": lambda: forged(stack, iss="http://127.0.0.1:1"),
        "another key": lambda: forged(stack, key=other_key),
    }
    token = makers[case]()
    for method, path in (("GET", "/snapshots"), ("POST", "/snapshots"), ("GET", "/me"), ("GET", "/mappings")):
        status, answer = call(stack, method, path, token)
        assert (status, answer) == (401, {"message": "Unauthorized"}), (case, method, path)


def test_the_roles_decide_what_a_good_token_may_do(stack: StackProcess) -> None:
    viewer, admin = stack.script_token("viewer"), stack.script_token("admin")
    status, answer = call(stack, "POST", "/snapshots", viewer)
    assert status == 403
    assert "Taking a snapshot needs the admin role" in answer["message"]
    assert call(stack, "GET", "/snapshots", viewer)[0] == 200
    status, snapshot = call(stack, "POST", "/snapshots", admin)
    assert status == 201
    assert snapshot["taken_by"] == {"subject": "trueup-admin-script", "name": "trueup-admin-script"}
    status, me = call(stack, "GET", "/me", viewer)
    assert (status, me["roles"], me["sign_in"]) == (200, ["viewer"], "oidc")
    # A good token (the provider's key) whose caller holds no trueup role: signed in, allowed nothing.
    nobody = forged(stack, roles=[], client_id="trueup-viewer-script", sub="trueup-viewer-script")
    status, answer = call(stack, "GET", "/snapshots", nobody)
    assert status == 403 and "needs the viewer or admin role" in answer["message"]
