// Shared by the vendor-client tests: the server a Rust test started (RESETD_URL), its demo
// mail directory (RESETD_MAIL_DIR), and the native API for what the vendor APIs do not cover.
'use strict';
const fs = require('node:fs');
const path = require('node:path');

const BASE = process.env.RESETD_URL;
const MAIL_DIR = process.env.RESETD_MAIL_DIR;
if (!BASE || !MAIL_DIR) {
  throw new Error("run through the Rust tests (cargo nextest run -p resetd -E 'test(/^dialects::(alfresco|payabli)::/)'): RESETD_URL and RESETD_MAIL_DIR must be set");
}

/** A mail with quoted-printable soft breaks and =3D undone. */
function flat(text) {
  return text.replace(/=\r?\n/g, '').replace(/=3D/g, '=');
}

/** The reset-link mails to `recipient` so far, oldest first. */
function resetMails(recipient) {
  if (!fs.existsSync(MAIL_DIR)) return [];
  return fs.readdirSync(MAIL_DIR)
    .filter((n) => n.endsWith('.eml') && n.includes('reset_link'))
    .sort((a, b) => parseInt(a, 10) - parseInt(b, 10))
    .map((n) => flat(fs.readFileSync(path.join(MAIL_DIR, n), 'utf8')))
    .filter((m) => m.includes(`To: ${recipient}`));
}

/** Waits until there are `n` reset mails to `recipient` and returns the n-th. */
async function waitResetMail(recipient, n) {
  const deadline = Date.now() + 15000;
  for (;;) {
    const mails = resetMails(recipient);
    if (mails.length >= n) return mails[n - 1];
    if (Date.now() > deadline) throw new Error(`no reset mail #${n} for ${recipient}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** The value after `marker` (e.g. '?key=') in the mail's first link. */
function linkParam(mail, marker) {
  const at = mail.indexOf(marker);
  if (at < 0) throw new Error(`no ${marker} in the mail`);
  return /^[A-Za-z0-9_$-]+/.exec(mail.slice(at + marker.length))[0];
}

/** A native API call: returns {status, body}. */
async function native(method, p, body) {
  const res = await fetch(BASE + p, {
    method,
    headers: { 'content-type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.text();
  return { status: res.status, body: text ? JSON.parse(text) : null };
}

/** Logs in through the native API; returns the status. */
async function authenticate(tenant, login, password) {
  return (await native('POST', `/v1/${tenant}/authenticate`, { login, password })).status;
}

module.exports = { BASE, MAIL_DIR, resetMails, waitResetMail, linkParam, native, authenticate };
