"""Sign-in for the local stack (TRUEUP_AUTH=oidc): a real OpenID provider, and the gateway's token check.

The provider is the `oidc-provider` npm package (infra/local/oidc, installed by `make oidc-provider`
from its lockfile), run with Node. It knows two people and one client-credentials client per role:

    admin@trueup.local  / trueup-admin    Ada Admin, role admin
    viewer@trueup.local / trueup-viewer   Vic Viewer, role viewer

These are local test accounts of a provider that listens on 127.0.0.1 only. The script clients'
secrets and the signing key are made on first use and kept in `<data dir>/sign-in.json` (mode 0600),
so tokens and scripts keep working across restarts; stack.json lists the clients.

`JwtAuthorizer` checks a bearer token the way API Gateway's JWT authorizer does (signature from the
issuer's JWKS, issuer, audience or client_id, expiry and not-before) with PyJWT, and hands the claims
on in API Gateway's shape: every value a string, arrays flattened to "[a b]".
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import subprocess
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import httpx
import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from infra.local.persistence import write_atomically

PROVIDER_DIR = Path(__file__).resolve().parent / "oidc"
STATE_FILE = "sign-in.json"
AUDIENCE = "api://trueup-local"  # a resource indicator: an absolute URI, like Entra ID's api://<app-id>
PAGE_CLIENT_ID = "trueup-page"
SCOPE = "openid profile email"
ROLE_CLAIM = "roles"
ACCESS_TOKEN_SECONDS = 3600
READY_TIMEOUT = 30.0


@dataclass(frozen=True)
class Person:
    subject: str
    email: str
    password: str
    name: str
    roles: tuple[str, ...]


PEOPLE = (
    Person("local-admin", "admin@trueup.local", "trueup-admin", "Ada Admin", ("admin",)),
    Person("local-viewer", "viewer@trueup.local", "trueup-viewer", "Vic Viewer", ("viewer",)),
)


class SignInError(RuntimeError):
    """The local provider cannot start; the message says what to do."""


class TokenRejected(Exception):
    """API Gateway's JWT authorizer would answer 401; the message says why (as its header does)."""


@dataclass
class SignInState:
    """What survives restarts: the signing key and the script clients' secrets."""

    signing_key_pem: str
    key_id: str
    script_secrets: dict[str, str]

    @classmethod
    def load_or_create(cls, data_dir: Path) -> SignInState:
        path = data_dir / STATE_FILE
        if path.exists():
            raw = json.loads(path.read_text(encoding="utf-8"))
            return cls(raw["signing_key_pem"], raw["key_id"], dict(raw["script_secrets"]))
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        pem = key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        ).decode()
        state = cls(
            pem,
            secrets.token_hex(8),
            {role: secrets.token_urlsafe(32) for role in ("admin", "viewer")},
        )
        data_dir.mkdir(parents=True, exist_ok=True)
        document = {
            "signing_key_pem": state.signing_key_pem,
            "key_id": state.key_id,
            "script_secrets": state.script_secrets,
        }
        write_atomically(path, json.dumps(document, indent=2).encode() + b"\n")
        os.chmod(path, 0o600)
        return state

    def private_jwk(self) -> dict[str, Any]:
        key = serialization.load_pem_private_key(self.signing_key_pem.encode(), password=None)
        jwk: dict[str, Any] = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(key))  # type: ignore[arg-type]
        jwk.pop("key_ops", None)  # PyJWT says ["sign"]: the provider also verifies with it (id_token_hint)
        return {**jwk, "kid": self.key_id, "use": "sig", "alg": "RS256"}


def script_client_id(role: str) -> str:
    return f"trueup-{role}-script"


@dataclass
class LocalProvider:
    """The oidc-provider process; `issuer` is known once it listens."""

    data_dir: Path
    page_url: str  # the gateway's URL: the page, and where the provider sends people back
    host: str = "127.0.0.1"
    issuer: str = ""
    state: SignInState | None = None
    _process: subprocess.Popen[str] | None = field(default=None, repr=False)

    def start(self) -> LocalProvider:
        node = shutil.which("node")
        if node is None:
            raise SignInError("TRUEUP_AUTH=oidc needs Node.js 20 or later (`node` is not on PATH)")
        if not (PROVIDER_DIR / "node_modules" / "oidc-provider").is_dir():
            raise SignInError(
                "the local OpenID provider is not installed: run `make oidc-provider` "
                "(npm ci in infra/local/oidc), then start again"
            )
        self.state = SignInState.load_or_create(self.data_dir)
        settings = {
            "host": self.host,
            "port": 0,
            "audience": AUDIENCE,
            "access_token_seconds": ACCESS_TOKEN_SECONDS,
            "page_client_id": PAGE_CLIENT_ID,
            "redirect_uri": self.page_url.rstrip("/") + "/",
            "signing_key": self.state.private_jwk(),
            "people": [
                {
                    "subject": p.subject,
                    "email": p.email,
                    "password": p.password,
                    "name": p.name,
                    "roles": p.roles,
                }
                for p in PEOPLE
            ],
            "scripts": [
                {"client_id": script_client_id(role), "client_secret": secret, "roles": [role]}
                for role, secret in self.state.script_secrets.items()
            ],
        }
        self._process = subprocess.Popen(
            [node, str(PROVIDER_DIR / "provider.mjs")],
            cwd=PROVIDER_DIR,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=None,  # the provider's own warnings go to the stack's log
            text=True,
        )
        assert self._process.stdin is not None and self._process.stdout is not None
        self._process.stdin.write(json.dumps(settings))
        self._process.stdin.close()
        ready = _read_ready_line(self._process, READY_TIMEOUT)
        self.issuer = ready["issuer"]
        return self

    def stop(self) -> None:
        process, self._process = self._process, None
        if process is None:
            return
        process.terminate()
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()

    def describe(self) -> dict[str, Any]:
        """stack.json's `auth` object."""
        assert self.state is not None
        return {
            "issuer": self.issuer,
            "audience": AUDIENCE,
            "page_client_id": PAGE_CLIENT_ID,
            "token_url": f"{self.issuer}/token",
            "clients": {
                role: {"client_id": script_client_id(role), "client_secret": secret}
                for role, secret in self.state.script_secrets.items()
            },
            "people": {p.roles[0]: {"email": p.email, "password": p.password} for p in PEOPLE},
        }


def _read_ready_line(process: subprocess.Popen[str], timeout: float) -> dict[str, Any]:
    """The provider's {"ready": true, ...} line, or SignInError with what it printed instead."""
    found: dict[str, Any] = {}
    done = threading.Event()
    stdout: IO[str] = process.stdout  # type: ignore[assignment]

    def read() -> None:
        for line in stdout:
            try:
                message = json.loads(line)
            except json.JSONDecodeError:
                continue
            if isinstance(message, dict) and message.get("ready"):
                found.update(message)
                done.set()
        done.set()  # and then the pipe is drained until the provider exits, so it never blocks on it

    threading.Thread(target=read, name="oidc-ready", daemon=True).start()
    done.wait(timeout)
    if not found:
        process.kill()
        process.wait(timeout=5)
        raise SignInError(
            f"the local OpenID provider did not start within {timeout:.0f} s (exit {process.returncode}); "
            "its errors are in the log above"
        )
    return found


# ------------------------------------------------------------------------------ the gateway's check
@dataclass
class JwtAuthorizer:
    """API Gateway's JWT authorizer: the token's signature, issuer, audience, expiry and not-before."""

    issuer: str
    audiences: tuple[str, ...]
    clock: Any = time.time
    _keys: jwt.PyJWKClient | None = field(default=None, repr=False)

    def _jwks(self) -> jwt.PyJWKClient:
        if self._keys is None:
            discovery = httpx.get(f"{self.issuer.rstrip('/')}/.well-known/openid-configuration", timeout=10)
            discovery.raise_for_status()
            self._keys = jwt.PyJWKClient(discovery.json()["jwks_uri"], cache_keys=True, lifespan=300)
        return self._keys

    def authorize(self, authorization: str | None) -> dict[str, Any]:
        """The `requestContext.authorizer` API Gateway passes on, or TokenRejected."""
        if not authorization:
            raise TokenRejected("no Authorization header")
        scheme, _, token = authorization.strip().partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise TokenRejected("the Authorization header is not `Bearer <token>`")
        token = token.strip()
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError as exc:
            raise TokenRejected(f"not a JWT: {exc}") from None
        if header.get("alg") != "RS256" or not header.get("kid"):
            raise TokenRejected("the token is not signed with RS256 and a key id")
        try:
            key = self._jwks().get_signing_key(header["kid"])
        except jwt.PyJWKClientError as exc:
            raise TokenRejected(f"no key {header['kid']!r} at the issuer: {exc}") from None
        try:
            claims: dict[str, Any] = jwt.decode(
                token,
                key.key,
                algorithms=["RS256"],
                issuer=self.issuer,
                options={"verify_aud": False, "require": ["exp", "iss"]},
                leeway=0,
            )
        except jwt.ExpiredSignatureError:
            raise TokenRejected("the token has expired") from None
        except jwt.ImmatureSignatureError:
            raise TokenRejected("the token is not valid yet (nbf or iat in the future)") from None
        except jwt.InvalidIssuerError:
            raise TokenRejected("the token's issuer is not the API's") from None
        except jwt.PyJWTError as exc:
            raise TokenRejected(f"invalid token: {exc}") from None
        audience = claims.get("aud")
        audiences = set(audience if isinstance(audience, list) else [audience] if audience else [])
        if "client_id" in claims:
            audiences.add(claims["client_id"])
        if not audiences & set(self.audiences):
            raise TokenRejected("the token is for another audience")
        scopes = claims.get("scope") or claims.get("scp")
        return {
            "jwt": {
                "claims": {name: _claim_string(value) for name, value in claims.items()},
                "scopes": scopes.split() if isinstance(scopes, str) and scopes.strip() else None,
            }
        }


def _claim_string(value: Any) -> str:
    """A claim as API Gateway hands it to a function: a string; arrays flattened to "[a b]"."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return "[" + " ".join(_claim_string(v) for v in value) + "]"
    if isinstance(value, Mapping):
        return json.dumps(value, separators=(",", ":"))
    return str(value)


def get_script_token(token_url: str, client_id: str, client_secret: str) -> str:
    """A client-credentials access token, as a script gets one (README: "Scripts")."""
    answer = httpx.post(
        token_url, data={"grant_type": "client_credentials"}, auth=(client_id, client_secret), timeout=10
    )
    answer.raise_for_status()
    token: str = answer.json()["access_token"]
    return token
