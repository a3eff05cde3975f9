// The local stack's OpenID provider (TRUEUP_AUTH=oidc): the oidc-provider package, configured by
// infra/local/sign_in.py with JSON on standard input (nothing of it is written to disk by this script).
//
// It knows the people of that file (e-mail, password, name, roles) and refuses anyone else or a wrong
// password; the page signs them in with the authorization code flow and PKCE. Scripts use the
// client-credentials grant, one client per role. Access tokens are JWTs (RS256, the key of the file)
// for the API's audience, carrying the caller's trueup roles in a `roles` claim as Entra ID does.
//
// When it listens it prints one line of JSON, {"ready": true, "issuer": ...}, which is what the
// local stack waits for.

import { readFileSync } from 'node:fs';
import http from 'node:http';
import { randomBytes } from 'node:crypto';

import Provider from 'oidc-provider';

const settings = JSON.parse(readFileSync(0, 'utf8'));
const people = new Map(settings.people.map((p) => [p.subject, p]));
const peopleByEmail = new Map(settings.people.map((p) => [p.email.toLowerCase(), p]));
const pageOrigin = new URL(settings.redirect_uri).origin;

const escape = (text) => String(text).replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

const configuration = {
  clients: [
    {
      client_id: settings.page_client_id,
      token_endpoint_auth_method: 'none', // a public client: PKCE instead of a secret
      grant_types: ['authorization_code'],
      response_types: ['code'],
      redirect_uris: [settings.redirect_uri],
      post_logout_redirect_uris: [settings.redirect_uri],
    },
    ...settings.scripts.map((script) => ({
      client_id: script.client_id,
      client_secret: script.client_secret,
      grant_types: ['client_credentials'],
      response_types: [],
      redirect_uris: [],
      trueup_roles: script.roles,
    })),
  ],
  extraClientMetadata: { properties: ['trueup_roles'] },
  jwks: { keys: [settings.signing_key] },
  cookies: { keys: [randomBytes(32).toString('base64url')] },
  claims: { openid: ['sub'], profile: ['name'], email: ['email'] },
  async findAccount(ctx, subject) {
    const person = people.get(subject);
    if (!person) return undefined;
    return {
      accountId: subject,
      async claims() {
        return { sub: subject, name: person.name, email: person.email };
      },
    };
  },
  // The API's roles, in every access token: a person's, or a script client's.
  async extraTokenClaims(ctx, token) {
    if (token.kind !== 'AccessToken' && token.kind !== 'ClientCredentials') return undefined;
    if (token.accountId) {
      const person = people.get(token.accountId);
      return person ? { roles: person.roles, name: person.name, email: person.email } : undefined;
    }
    const client = await ctx.oidc.provider.Client.find(token.clientId);
    return client?.trueup_roles ? { roles: client.trueup_roles } : undefined;
  },
  clientBasedCORS(ctx, origin) {
    return origin === pageOrigin;
  },
  pkce: { required: () => true },
  interactions: { url: (ctx, interaction) => `/interaction/${interaction.uid}` },
  features: {
    devInteractions: { enabled: false }, // its login accepts any password: ours below does not
    clientCredentials: { enabled: true },
    resourceIndicators: {
      enabled: true,
      // Every token is for the API, asked for or not (as Entra ID's tokens for an app's scope are).
      defaultResource: () => settings.audience,
      useGrantedResource: () => true,
      getResourceServerInfo: () => ({
        scope: 'api',
        audience: settings.audience,
        accessTokenTTL: settings.access_token_seconds,
        accessTokenFormat: 'jwt',
        jwt: { sign: { alg: 'RS256' } },
      }),
    },
    rpInitiatedLogout: {
      enabled: true,
      // Signing out of the page signs out here at once; no second question.
      async logoutSource(ctx, form) {
        ctx.body = `<!DOCTYPE html><html><head><meta charset="utf-8"><title>Signing out</title></head>
<body>${form}<noscript><button type="submit" form="op.logoutForm" name="logout" value="yes">Sign out</button></noscript>
<script>
var f = document.getElementById('op.logoutForm');
var i = document.createElement('input'); i.type = 'hidden'; i.name = 'logout'; i.value = 'yes';
f.appendChild(i); f.submit();
</script></body></html>`;
      },
    },
  },
};

let provider; // made once the port, and so the issuer, is known

function loginPage(uid, problem, email) {
  return `<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>Sign in - trueup (local)</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>
body{font-family:system-ui,sans-serif;background:#f4f5f7;margin:0;display:grid;place-items:center;min-height:100vh}
form{background:#fff;padding:2rem;border-radius:8px;box-shadow:0 1px 3px rgba(0,0,0,.15);width:20rem}
h1{font-size:1.2rem;margin:0 0 .25rem}p{color:#555;font-size:.9rem;margin:.25rem 0 1rem}
label{display:block;margin:.75rem 0 .25rem;font-size:.9rem}input{width:100%;box-sizing:border-box;padding:.5rem}
button{margin-top:1.25rem;width:100%;padding:.6rem;background:#1f5fbf;color:#fff;border:0;border-radius:4px;font-size:1rem}
.problem{color:#a11;font-weight:600}
</style></head>
<body><form method="post" action="/interaction/${escape(uid)}/login" autocomplete="off">
<h1>Sign in to trueup</h1><p>The local stack's own OpenID provider.</p>
${problem ? `<p class="problem" role="alert">${escape(problem)}</p>` : ''}
<label for="email">E-mail</label><input id="email" name="email" type="email" required autofocus value="${escape(email || '')}">
<label for="password">Password</label><input id="password" name="password" type="password" required>
<button type="submit">Sign in</button>
</form></body></html>`;
}

async function readForm(req) {
  const chunks = [];
  for await (const chunk of req) chunks.push(chunk);
  return new URLSearchParams(Buffer.concat(chunks).toString('utf8'));
}

function send(res, status, html) {
  res.writeHead(status, { 'Content-Type': 'text/html; charset=utf-8', 'Cache-Control': 'no-store' });
  res.end(html);
}

async function interaction(req, res, path) {
  const details = await provider.interactionDetails(req, res);
  const { uid, prompt, params, session } = details;
  if (path.endsWith('/login') && req.method === 'POST') {
    const form = await readForm(req);
    const email = (form.get('email') || '').trim();
    const person = peopleByEmail.get(email.toLowerCase());
    if (!person || person.password !== form.get('password')) {
      send(res, 401, loginPage(uid, 'Wrong e-mail or password.', email));
      return;
    }
    await provider.interactionFinished(req, res, { login: { accountId: person.subject } }, { mergeWithLastSubmission: false });
    return;
  }
  if (prompt.name === 'login') {
    send(res, 200, loginPage(uid));
    return;
  }
  // The page is trueup's own client: what it asks for is granted without a consent screen.
  const grant = details.grantId
    ? await provider.Grant.find(details.grantId)
    : new provider.Grant({ accountId: session.accountId, clientId: params.client_id });
  if (prompt.details.missingOIDCScope) grant.addOIDCScope(prompt.details.missingOIDCScope.join(' '));
  if (prompt.details.missingOIDCClaims) grant.addOIDCClaims(prompt.details.missingOIDCClaims);
  for (const [indicator, scopes] of Object.entries(prompt.details.missingResourceScopes || {})) {
    grant.addResourceScope(indicator, scopes.join(' '));
  }
  const grantId = await grant.save();
  await provider.interactionFinished(req, res, { consent: { grantId } }, { mergeWithLastSubmission: true });
}

let callback;
const server = http.createServer((req, res) => {
  const path = new URL(req.url, 'http://localhost').pathname;
  if (path.startsWith('/interaction/')) {
    interaction(req, res, path).catch((error) => {
      send(res, 400, `<!DOCTYPE html><title>Sign-in failed</title><p>${escape(error.message)}</p>`);
    });
    return;
  }
  callback(req, res);
});
server.on('connection', (socket) => socket.setNoDelay(true));
server.listen(settings.port, settings.host, () => {
  const { port } = server.address();
  const issuer = `http://${settings.host}:${port}`;
  provider = new Provider(issuer, configuration);
  callback = provider.callback();
  process.stdout.write(`${JSON.stringify({ ready: true, issuer })}\n`);
});

for (const signal of ['SIGTERM', 'SIGINT']) {
  process.on(signal, () => server.close(() => process.exit(0)));
}
