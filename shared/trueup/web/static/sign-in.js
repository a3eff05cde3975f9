// Sign-in for the Reconciliation page: OpenID Connect, authorization code flow with PKCE (RFC 7636),
// against whatever issuer GET auth/config names (Microsoft Entra ID, Amazon Cognito, the local
// provider): only the standard discovery document, authorize and token endpoints are used.
//
// Tokens live in sessionStorage (this tab only, gone when it closes), never in cookies or
// localStorage. When the access token expires, or the API answers 401, the page signs in again.

const SESSION = "trueup.session"; // {access_token, id_token, expires_at}
const PENDING = "trueup.sign-in"; // {state, nonce, verifier, return_to, at}: between leaving and returning
const SIGNED_OUT = "trueup.signed-out";
const EARLY_SECONDS = 30; // sign in again this long before the token expires

let config = null;
let discovery = null;

function base64url(bytes) {
  let text = "";
  for (const byte of bytes) text += String.fromCharCode(byte);
  return btoa(text).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}

function randomString(size = 32) {
  return base64url(crypto.getRandomValues(new Uint8Array(size)));
}

async function challengeOf(verifier) {
  const digest = await crypto.subtle.digest("SHA-256", new TextEncoder().encode(verifier));
  return base64url(new Uint8Array(digest));
}

function read(key) {
  try {
    return JSON.parse(sessionStorage.getItem(key) || "null");
  } catch {
    return null;
  }
}

function claimsOf(jwt) {
  try {
    const part = jwt.split(".")[1].replace(/-/g, "+").replace(/_/g, "/");
    const bytes = Uint8Array.from(atob(part.padEnd(Math.ceil(part.length / 4) * 4, "=")), (c) => c.charCodeAt(0));
    return JSON.parse(new TextDecoder().decode(bytes));
  } catch {
    return {};
  }
}

export class SignInError extends Error {}

async function json(url, options, what) {
  let response;
  try {
    response = await fetch(url, options);
  } catch {
    throw new SignInError(`the sign-in service did not answer (${what})`);
  }
  const data = await response.json().catch(() => null);
  if (!response.ok) {
    const reason = data && (data.error_description || data.error || data.message);
    throw new SignInError(`${what} failed: ${reason || response.status}`);
  }
  return data;
}

async function loadDiscovery() {
  if (!discovery) {
    const url = `${config.issuer.replace(/\/$/, "")}/.well-known/openid-configuration`;
    discovery = await json(url, { cache: "no-store" }, "reading the sign-in service's configuration");
  }
  return discovery;
}

function currentSession() {
  const session = read(SESSION);
  if (!session || !session.access_token) return null;
  if (Date.now() / 1000 > session.expires_at - EARLY_SECONDS) return null;
  return session;
}

// Leaves the page for the provider's sign-in; the promise never settles (the page unloads).
async function redirectToSignIn() {
  const endpoints = await loadDiscovery();
  const pending = {
    state: randomString(),
    nonce: randomString(),
    verifier: randomString(48),
    return_to: location.pathname + location.search + location.hash,
    at: Date.now(),
  };
  sessionStorage.setItem(PENDING, JSON.stringify(pending));
  const query = new URLSearchParams({
    response_type: "code",
    client_id: config.client_id,
    redirect_uri: config.redirect_uri,
    scope: config.scope,
    state: pending.state,
    nonce: pending.nonce,
    code_challenge: await challengeOf(pending.verifier),
    code_challenge_method: "S256",
  });
  location.assign(`${endpoints.authorization_endpoint}?${query}`);
  return new Promise(() => {});
}

// The provider sent the person back with ?code=...&state=...: trade the code for tokens.
async function finishSignIn(params) {
  const pending = read(PENDING);
  sessionStorage.removeItem(PENDING);
  if (params.get("error")) {
    throw new SignInError(`sign-in was refused: ${params.get("error_description") || params.get("error")}`);
  }
  if (!pending || pending.state !== params.get("state")) {
    throw new SignInError("this sign-in answer does not belong to this tab; sign in again");
  }
  const endpoints = await loadDiscovery();
  const tokens = await json(
    endpoints.token_endpoint,
    {
      method: "POST",
      headers: { "Content-Type": "application/x-www-form-urlencoded" },
      body: new URLSearchParams({
        grant_type: "authorization_code",
        code: params.get("code"),
        redirect_uri: config.redirect_uri,
        client_id: config.client_id,
        code_verifier: pending.verifier,
      }),
    },
    "signing in",
  );
  if (tokens.id_token && claimsOf(tokens.id_token).nonce !== pending.nonce) {
    throw new SignInError("the sign-in answer was not for this request (nonce); sign in again");
  }
  const session = {
    access_token: tokens.access_token,
    id_token: tokens.id_token || null,
    expires_at: Date.now() / 1000 + Number(tokens.expires_in || 300),
  };
  sessionStorage.setItem(SESSION, JSON.stringify(session));
  history.replaceState(null, "", pending.return_to || config.redirect_uri);
  return session;
}

// What the page needs before its first call: {mode: "off"} or {mode: "oidc", session}. It may instead
// leave for the provider (first visit, expired token), or resolve {mode: "signed-out"}.
export async function signIn() {
  const response = await fetch("auth/config", { cache: "no-store", headers: { Accept: "application/json" } }).catch(() => null);
  if (!response || !response.ok) throw new SignInError("trueup did not say how to sign in (GET auth/config failed)");
  config = await response.json();
  if (config.sign_in !== "oidc") return { mode: "off" };
  const params = new URLSearchParams(location.search);
  if (params.has("state") && (params.has("code") || params.has("error"))) {
    return { mode: "oidc", session: await finishSignIn(params) };
  }
  const session = currentSession();
  if (session) return { mode: "oidc", session };
  if (sessionStorage.getItem(SIGNED_OUT)) return { mode: "signed-out" };
  return redirectToSignIn();
}

export function authorization() {
  const session = currentSession();
  return session ? { Authorization: `Bearer ${session.access_token}` } : {};
}

// The token expired or the API refused it (401): sign in again, coming back to the same place.
export function signInAgain() {
  sessionStorage.removeItem(SESSION);
  sessionStorage.removeItem(SIGNED_OUT);
  return redirectToSignIn();
}

export async function signOut() {
  const session = read(SESSION);
  sessionStorage.removeItem(SESSION);
  sessionStorage.setItem(SIGNED_OUT, "1");
  const endpoints = await loadDiscovery().catch(() => ({}));
  if (endpoints.end_session_endpoint) {
    const query = new URLSearchParams({ client_id: config.client_id, post_logout_redirect_uri: config.redirect_uri });
    if (session && session.id_token) query.set("id_token_hint", session.id_token);
    location.assign(`${endpoints.end_session_endpoint}?${query}`);
    return;
  }
  location.assign(config.redirect_uri); // the provider has no sign-out endpoint: this tab forgets
}
