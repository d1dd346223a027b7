// A stand-in for unleash-server in front of Unleash 8.2.0's own built UI (the `unleash-server`
// npm package's frontend/build): it serves the static files and index.html as unleash-server does
// (rewriteHTML with an empty baseUriPath), forwards `/auth/reset/*` to resetd's Unleash dialect,
// and stubs the few other API calls the forgotten-password and reset pages make. Every other API
// call answers 404 and is recorded, so a test sees when the UI starts depending on more.

import { existsSync, readFileSync, statSync } from 'node:fs';
import { createServer } from 'node:http';
import { dirname, extname, join, normalize, sep } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));

/** Where the built Unleash UI lives, or throws saying why it is missing. */
export function unleashBuildDir() {
  // The package's `exports` hide package.json from require.resolve: look in node_modules.
  const pkg = join(here, 'node_modules', 'unleash-server', 'package.json');
  if (!existsSync(pkg)) throw new Error('unleash-server is not installed in tests/browser (npm ci there)');
  const version = JSON.parse(readFileSync(pkg, 'utf8')).version;
  if (version !== '8.2.0') throw new Error(`unleash-server ${version} installed; the test is for 8.2.0`);
  const dir = join(dirname(pkg), 'frontend', 'build');
  if (!existsSync(join(dir, 'index.html'))) throw new Error(`no built Unleash UI at ${dir}`);
  return dir;
}

const TYPES = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.json': 'application/json; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.gif': 'image/gif',
  '.jpg': 'image/jpeg',
  '.ico': 'image/x-icon',
  '.woff': 'font/woff',
  '.woff2': 'font/woff2',
  '.ttf': 'font/ttf',
  '.webp': 'image/webp',
  '.map': 'application/json',
  '.txt': 'text/plain; charset=utf-8',
};

/** unleash-server's rewriteHTML with baseUriPath "", no CDN, no UI flags and no token. */
function rewriteIndex(html) {
  return html
    .replace(/::baseUriPath::/gi, '')
    .replace(/::cdnPrefix::/gi, '')
    .replace(/::faviconPrefix::/gi, '')
    .replace(/::uiFlags::/gi, '{}')
    .replace(/::unleashToken::/gi, '');
}

/** The smallest ui-config the pages render with: open source, password login, no flags. */
const UI_CONFIG = {
  slogan: 'Get a grip on your feature toggles.',
  name: 'Unleash',
  version: '8.2.0',
  environment: 'Open Source',
  unleashUrl: '',
  baseUriPath: '',
  authenticationType: 'open-source',
  flags: {},
  links: [],
  disablePasswordAuth: false,
  versionInfo: { current: { oss: '8.2.0', enterprise: '' }, latest: {}, isLatest: true, instanceId: 'resetd-test' },
  resourceLimits: {},
  prometheusAPIAvailable: false,
  maintenanceMode: false,
  emailEnabled: true,
};

/** What an anonymous GET /api/admin/user gets from Unleash: 401 and how to log in. */
const AUTH_REQUIRED = {
  type: 'password',
  path: '/auth/simple/login',
  message: 'You must sign in in order to use Unleash',
  defaultHidden: false,
  options: [],
};

function json(res, status, body) {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', 'content-length': Buffer.byteLength(text) });
  res.end(text);
}

/**
 * Starts the proxy on a free loopback port. `upstream` (resetd's base URL) can be set later with
 * `setUpstream`, since resetd's link template needs the proxy's URL first.
 */
export async function startUnleashProxy(buildDir = unleashBuildDir()) {
  const index = rewriteIndex(readFileSync(join(buildDir, 'index.html'), 'utf8'));
  let upstream = '';
  const unknown = [];
  const forwarded = [];

  async function forward(req, res) {
    const chunks = [];
    for await (const c of req) chunks.push(c);
    const headers = {};
    for (const h of ['content-type', 'accept', 'accept-language', 'user-agent']) {
      if (req.headers[h]) headers[h] = req.headers[h];
    }
    const method = req.method || 'GET';
    const r = await fetch(upstream + req.url, {
      method,
      headers,
      body: method === 'GET' || method === 'HEAD' ? undefined : Buffer.concat(chunks),
      redirect: 'manual',
    });
    const body = Buffer.from(await r.arrayBuffer());
    forwarded.push({ method, path: req.url.split('?')[0], status: r.status });
    const out = {};
    for (const h of ['content-type', 'retry-after']) {
      const v = r.headers.get(h);
      if (v) out[h] = v;
    }
    out['content-length'] = body.length;
    res.writeHead(r.status, out);
    res.end(body);
  }

  function serveFile(path, res) {
    const file = normalize(join(buildDir, decodeURIComponent(path)));
    if (!file.startsWith(buildDir + sep) || !existsSync(file) || !statSync(file).isFile()) return false;
    const body = readFileSync(file);
    res.writeHead(200, { 'content-type': TYPES[extname(file)] || 'application/octet-stream', 'content-length': body.length });
    res.end(body);
    return true;
  }

  const server = createServer((req, res) => {
    const path = (req.url || '/').split('?')[0];
    const done = (p) => p.catch((e) => { if (!res.headersSent) json(res, 502, { error: String(e) }); else res.destroy(); });
    if (path.startsWith('/auth/reset/')) {
      if (!upstream) return json(res, 503, { error: 'no upstream yet' });
      return done(forward(req, res));
    }
    if (path === '/api/admin/ui-config') return json(res, 200, UI_CONFIG);
    // Unleash asks anonymous callers of its admin API to log in.
    if (path === '/api/admin/user' || path === '/api/admin/projects') return json(res, 401, AUTH_REQUIRED);
    if (path === '/api/admin/splash' || path.startsWith('/api/admin/splash/')) return json(res, 200, {});
    if (path.startsWith('/api/') || path.startsWith('/auth/') || path.startsWith('/logout')) {
      unknown.push(`${req.method} ${path}`);
      return json(res, 404, { name: 'NotFoundError', message: 'stubbed out by the resetd test proxy' });
    }
    if (path !== '/' && serveFile(path, res)) return undefined;
    if (path.startsWith('/static/')) {
      res.writeHead(404);
      return res.end();
    }
    // The UI's own routes (/forgotten-password, /reset-password, /login…): index.html, as
    // unleash-server answers every other path.
    res.writeHead(200, { 'content-type': 'text/html; charset=utf-8', 'content-length': Buffer.byteLength(index) });
    return res.end(index);
  });
  await new Promise((ok) => server.listen(0, '127.0.0.1', ok));
  return {
    url: `http://127.0.0.1:${server.address().port}`,
    unknown,
    forwarded,
    setUpstream(base) { upstream = base.replace(/\/$/, ''); },
    close() {
      server.closeAllConnections();
      return new Promise((ok) => server.close(() => ok()));
    },
  };
}
