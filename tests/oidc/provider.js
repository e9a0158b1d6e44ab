// The OpenID provider of the tests: npm's oidc-provider 8 (OpenID Certified; 8: Node 18 and later), on 127.0.0.1, with the test
// users below and the app as its client. tests/oidc_provider.py starts it (`node provider.js`) and stops it.
//
// Environment (all set by the fixture):
//   OIDC_PORT      the port on 127.0.0.1
//   OIDC_ISSUER    the issuer URL (default http://localhost:<port>: another site than the app's 127.0.0.1,
//                  as a school's provider is, so the browser treats the return as a cross-site navigation)
//   OIDC_KID       the signing key's id; a restart with another one is a key rotation
//   OIDC_MODE      normal | foreign-key (publishes another key under its signing key's kid)
//                  | wrong-audience (its ID tokens are made out to another of its clients: aud another-app)
//   OIDC_CLOCK_OFFSET  seconds the provider's clock is off (-600: its tokens are 10 minutes old when issued)
//   OIDC_ID_TOKEN_TTL  seconds an ID token lives (default 3600)
// Prints "ready <issuer>" on stdout once it listens.
import { generateKeyPairSync } from 'node:crypto';
import http from 'node:http';

const offset = Number(process.env.OIDC_CLOCK_OFFSET || 0) * 1000;
if (offset) {
  const realNow = Date.now;
  Date.now = () => realNow() + offset;
}

const { default: Provider } = await import('oidc-provider');

const port = Number(process.env.OIDC_PORT);
const issuer = process.env.OIDC_ISSUER || `http://localhost:${port}`;
const kid = process.env.OIDC_KID || 'key-1';
const mode = process.env.OIDC_MODE || 'normal';

const CLIENT_ID = 'weekly-trends';
const CLIENT_SECRET = 'weekly-trends-test-secret';

// The test users, by the login name typed into the provider's sign-in form.
const USERS = {
  teacher: { email: 'teacher@school.example', email_verified: true, name: 'Tess Teacher' },
  casey: { email: 'Casey.Teacher@School.Example', email_verified: true, name: 'Casey Teacher' },
  unverified: { email: 'unverified@school.example', email_verified: false, name: 'Una Verified' },
  stranger: { email: 'stranger@elsewhere.example', email_verified: true, name: 'Stan Stranger' },
  removed: { email: 'removed@school.example', email_verified: true, name: 'Rem Oved' },
  outsider: { email: 'outsider@other-school.example', email_verified: true, name: 'Otto Outsider' },
};

function privateJwk(keyPair, id) {
  return { ...keyPair.privateKey.export({ format: 'jwk' }), kid: id, alg: 'ES256', use: 'sig' };
}

const signing = generateKeyPairSync('ec', { namedCurve: 'P-256' });
const jwks = { keys: [privateJwk(signing, kid)] };
// foreign-key: the key set it publishes holds another key under the signing key's kid (a rotation gone
// wrong, or a forged token's key): every signature fails against it.
const foreign = generateKeyPairSync('ec', { namedCurve: 'P-256' });
const foreignJwks = {
  keys: [{ ...foreign.publicKey.export({ format: 'jwk' }), kid, alg: 'ES256', use: 'sig' }],
};

function clientRecord(clientId) {
  return {
    client_id: clientId,
    client_secret: CLIENT_SECRET,
    redirect_uris: ['http://127.0.0.1/staff/oidc/callback'],
    post_logout_redirect_uris: ['http://127.0.0.1/staff/login'],
    grant_types: ['authorization_code'],
    response_types: ['code'],
    id_token_signed_response_alg: 'ES256',
  };
}

const configuration = {
  clients: [clientRecord(CLIENT_ID), clientRecord('another-app')],
  jwks,
  // The scope's claims (email, email_verified) in the ID token itself, as Google's and Entra's are.
  conformIdTokenClaims: false,
  cookies: { keys: ['weekly-trends-test-cookie-key'] },
  claims: { openid: ['sub'], email: ['email', 'email_verified'], profile: ['name'] },
  scopes: ['openid', 'email', 'profile'],
  features: { devInteractions: { enabled: true }, rpInitiatedLogout: { enabled: true } },
  pkce: { required: () => true },
  ttl: { IdToken: Number(process.env.OIDC_ID_TOKEN_TTL || 3600) },
  async findAccount(ctx, id) {
    const user = USERS[id];
    if (!user) return undefined;
    return { accountId: id, async claims() { return { sub: id, ...user }; } };
  },
  // The app is a first-party client: no consent screen, every requested scope granted.
  async loadExistingGrant(ctx) {
    const grantId = ctx.oidc.result?.consent?.grantId || ctx.oidc.session.grantIdFor(ctx.oidc.client.clientId);
    if (grantId) return ctx.oidc.provider.Grant.find(grantId);
    const grant = new ctx.oidc.provider.Grant({
      clientId: ctx.oidc.client.clientId,
      accountId: ctx.oidc.session.accountId,
    });
    grant.addOIDCScope('openid email profile');
    await grant.save();
    return grant;
  },
};

const provider = new Provider(issuer, configuration);
if (mode === 'wrong-audience') {
  // Its ID tokens are made out to another of its clients (aud: another-app), whoever asked.
  const { issue } = provider.IdToken.prototype;
  provider.IdToken.prototype.issue = async function issueToAnother(...args) {
    this.client = await provider.Client.find('another-app');
    return issue.apply(this, args);
  };
}
if (mode === 'foreign-key') {
  provider.use(async (ctx, next) => {
    await next();
    if (ctx.path === '/jwks') ctx.body = foreignJwks;
  });
}
// The app's test servers listen on any port of 127.0.0.1 (the Flask test client: http://localhost).
function local(value, path) {
  try {
    const url = new URL(value);
    return url.protocol === 'http:' && ['127.0.0.1', 'localhost'].includes(url.hostname) && url.pathname === path;
  } catch {
    return false;
  }
}
provider.Client.prototype.redirectUriAllowed = function redirectUriAllowed(value) {
  return local(value, '/staff/oidc/callback');
};
provider.Client.prototype.postLogoutRedirectUriAllowed = function postLogoutRedirectUriAllowed(value) {
  return local(value, '/staff/login');
};

// Why a request failed, on stderr (the fixture shows it when the provider exits early).
for (const event of ['grant.error', 'server_error', 'authorization.error']) {
  provider.on(event, (ctx, error) => process.stderr.write(`${event}: ${error.message} ${error.error_detail || ''}\n`));
}

const server = http.createServer(provider.callback());
server.listen(port, '127.0.0.1', () => {
  process.stdout.write(`ready ${issuer}\n`);
});
for (const signal of ['SIGTERM', 'SIGINT']) {
  process.on(signal, () => server.close(() => process.exit(0)));
}
