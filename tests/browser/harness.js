// Harness for the browser tests: runs the real `resetd` binary on a random loopback port with its
// own data directory, reads the mail it writes (the demo .eml files), and launches Debian's
// Chromium through Playwright. Mirrors crates/resetd/tests/api/helpers/mod.rs.

import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
export const REPO = resolve(here, '..', '..');
export const BIN = process.env.RESETD_BIN || join(REPO, 'target', 'debug', 'resetd');
export const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';
export const SCREENSHOTS = join(REPO, 'test-artifacts', 'screenshots');

/** Cheap Argon2 and no per-IP limits (every request comes from 127.0.0.1). */
export const TEST_CONFIG = `[argon2]
m_cost = 1024
t_cost = 1
p_cost = 1
[http]
recovery_per_minute = 0
auth_per_minute = 0
password_check_per_minute = 0
[mail]
product_name = "Example Cloud"
support_contact = "help@example.com"
`;

/** Why the browser tests cannot run here, or null. On CI a missing browser is a failure. */
export function missingBrowser() {
  if (existsSync(CHROMIUM)) return null;
  const why = `Chromium not found at ${CHROMIUM} (scripts/test.sh installs Debian's chromium)`;
  if (process.env.CI === 'true') throw new Error(`${why}; CI=true, so this is a failure, not a skip`);
  console.log(`SKIPPING the browser tests: ${why}`);
  return why;
}

/** Launches headless Chromium from Debian; Playwright gives it a fresh temporary profile. */
export async function launchBrowser() {
  const { chromium } = await import('playwright-core');
  return chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    chromiumSandbox: false,
    args: [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
      '--no-first-run',
    ],
  });
}

/** A running resetd. */
export class Resetd {
  static async start(config = TEST_CONFIG) {
    if (!existsSync(BIN)) throw new Error(`no resetd binary at ${BIN}; build it with cargo build -p resetd`);
    const dir = mkdtempSync(join(tmpdir(), 'resetd-browser-'));
    const cfg = join(dir, 'resetd.toml');
    writeFileSync(cfg, config);
    const child = spawn(BIN, ['--config', cfg, '--data-dir', dir, 'serve', '--listen', '127.0.0.1:0'], {
      // A free management port: servers started side by side cannot share the default one.
      env: { ...process.env, RESETD_LOG: 'info', RESETD_MANAGEMENT_LISTEN: '127.0.0.1:0' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const s = new Resetd(dir, cfg, child);
    child.stderr.on('data', (d) => { s.logs += d.toString(); });
    const lines = createInterface({ input: child.stdout });
    await new Promise((ok, fail) => {
      const timer = setTimeout(() => fail(new Error(`resetd did not start: ${s.logs}`)), 20000);
      child.on('exit', (code) => fail(new Error(`resetd exited (${code}): ${s.logs}`)));
      lines.on('line', (line) => {
        const key = line.split('(shown only once): ')[1];
        if (key) s.key = key.trim();
        const m = line.match(/^resetd listening on (\S+)/);
        if (m) { s.base = m[1]; clearTimeout(timer); ok(); }
      });
    });
    return s;
  }

  constructor(dir, cfg, child) {
    this.dir = dir;
    this.cfg = cfg;
    this.child = child;
    this.logs = '';
    this.key = '';
    this.base = '';
  }

  stop() {
    this.child.kill('SIGKILL');
    rmSync(this.dir, { recursive: true, force: true });
  }

  /** Runs an admin command of the binary on the same data directory and returns its stdout. */
  cli(args) {
    const r = spawnSync(BIN, ['--config', this.cfg, '--data-dir', this.dir, ...args], { encoding: 'utf8' });
    if (r.status !== 0) throw new Error(`resetd ${args.join(' ')} failed: ${r.stderr}`);
    return r.stdout;
  }

  async api(method, path, body, key) {
    const headers = { 'content-type': 'application/json' };
    if (key) headers.authorization = `Bearer ${key}`;
    const res = await fetch(this.base + path, { method, headers, body: body && JSON.stringify(body) });
    const text = await res.text();
    return { status: res.status, body: text ? JSON.parse(text) : null };
  }

  async addPerson(login, email, { tenant = 'default', key = this.key, ...extra } = {}) {
    const r = await this.api('POST', `/v1/${tenant}/people`, { login, email, ...extra }, key);
    if (r.status !== 201) throw new Error(`adding ${login}: ${r.status} ${JSON.stringify(r.body)}`);
    return r.body;
  }

  async requestReset(login, tenant = 'default') {
    const r = await this.api('POST', `/v1/${tenant}/recovery`, { login });
    if (r.status !== 202) throw new Error(`reset request: ${r.status}`);
  }

  authenticate(login, password, tenant = 'default') {
    return this.api('POST', `/v1/${tenant}/authenticate`, { login, password });
  }

  /** Every .eml written so far: [{file, text}]. */
  mails() {
    const d = join(this.dir, 'mail');
    if (!existsSync(d)) return [];
    return readdirSync(d).filter((f) => f.endsWith('.eml')).sort()
      .map((file) => ({ file, text: readFileSync(join(d, file), 'utf8') }));
  }

  /** Waits for the n-th mail of `kind` to `recipient` and returns it parsed. */
  async mail(kind, recipient, n = 1) {
    const deadline = Date.now() + 15000;
    for (;;) {
      const found = this.mails().filter((m) => m.file.includes(kind) && m.text.includes(`To: ${recipient}`));
      if (found.length >= n) return parseMail(found[n - 1].text);
      if (Date.now() > deadline) throw new Error(`no ${kind} mail for ${recipient}: ${this.mails().map((m) => m.file)}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  }
}

function decodeQuotedPrintable(s) {
  const bytes = [];
  const soft = s.replace(/=\r?\n/g, '');
  for (let i = 0; i < soft.length; i++) {
    if (soft[i] === '=' && /^[0-9A-F]{2}$/i.test(soft.slice(i + 1, i + 3))) {
      bytes.push(parseInt(soft.slice(i + 1, i + 3), 16));
      i += 2;
    } else {
      bytes.push(...Buffer.from(soft[i], 'utf8'));
    }
  }
  return Buffer.from(bytes).toString('utf8');
}

/** The text and HTML parts of a demo .eml, and the reset link from its text part. */
export function parseMail(raw) {
  const parts = {};
  const boundary = (raw.match(/boundary="?([^";\r\n]+)"?/) || [])[1];
  const chunks = boundary ? raw.split(`--${boundary}`) : [raw];
  for (const chunk of chunks) {
    const split = chunk.search(/\r?\n\r?\n/);
    if (split < 0) continue;
    const head = chunk.slice(0, split);
    let body = chunk.slice(split).replace(/^\r?\n\r?\n/, '');
    if (/content-transfer-encoding:\s*quoted-printable/i.test(head)) body = decodeQuotedPrintable(body);
    else if (/content-transfer-encoding:\s*base64/i.test(head)) body = Buffer.from(body.replace(/\s+/g, ''), 'base64').toString('utf8');
    if (/content-type:\s*text\/plain/i.test(head)) parts.text = body;
    if (/content-type:\s*text\/html/i.test(head)) parts.html = body;
  }
  const link = parts.text && (parts.text.match(/https?:\/\/\S+token=[A-Za-z0-9_-]+/) || [])[0];
  return { raw, text: parts.text, html: parts.html, link };
}

/**
 * A web mail stand-in on another site (`localhost`, while resetd is at `127.0.0.1`): it shows the
 * email's HTML part, so the test clicks the link the way a person does, from another site.
 */
export async function startInbox() {
  let html = '<p>empty</p>';
  const server = createServer((req, res) => {
    res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' });
    res.end(html);
  });
  await new Promise((ok) => server.listen(0, '127.0.0.1', ok));
  return {
    url: `http://localhost:${server.address().port}/inbox`,
    show(mailHtml) { html = mailHtml; },
    close() { server.close(); },
  };
}

/** Saves a full-page screenshot as test-artifacts/screenshots/NAME.png. */
export async function screenshot(page, name) {
  mkdirSync(SCREENSHOTS, { recursive: true });
  await page.screenshot({ path: join(SCREENSHOTS, `${name}.png`), fullPage: true });
}

/** Viewports the page must work at. */
export const PHONE_320 = { width: 320, height: 640 };
export const PHONE_375 = { width: 375, height: 740 };
export const DESKTOP = { width: 1280, height: 800 };
