// The hosted reset page in real headless Chromium (Debian's), driven by Playwright: the whole
// flow from the emailed link to logging in, policy violations, expired and reused links, the page
// without JavaScript, German, and screenshots at phone and desktop widths for people to look at
// (test-artifacts/screenshots/).

import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';

import {
  DESKTOP, PHONE_320, PHONE_375, Resetd, launchBrowser, missingBrowser, screenshot, startInbox,
} from './harness.js';

const STRONG = 'purple elephants juggle quietly';
const skip = missingBrowser();

describe('hosted reset page in Chromium', { skip: skip || false }, () => {
  let s;
  let browser;
  let inbox;
  const contexts = [];

  before(async () => {
    s = await Resetd.start();
    browser = await launchBrowser();
    inbox = await startInbox();
  });

  after(async () => {
    for (const c of contexts) await c.close().catch(() => {});
    if (browser) await browser.close();
    if (inbox) inbox.close();
    if (s) s.stop();
  });

  /** A fresh browser profile at `viewport`; console errors (CSP violations among them) collected. */
  async function open(viewport, options = {}) {
    const phone = viewport.width < 600;
    const context = await browser.newContext({
      viewport,
      isMobile: phone,
      hasTouch: phone,
      locale: 'en-US',
      ...options,
    });
    contexts.push(context);
    const page = await context.newPage();
    const errors = [];
    // Chromium logs every 4xx answer as an error; the pages answer 400/410/422 on purpose.
    const expected = /^Failed to load resource: the server responded with a status of (400|410|422)\b/;
    page.on('console', (m) => { if (m.type() === 'error' && !expected.test(m.text())) errors.push(m.text()); });
    page.on('pageerror', (e) => errors.push(String(e)));
    return { context, page, errors };
  }

  /** A new person and the reset link emailed to them. */
  async function personWithLink(login, extra = {}) {
    const email = `${login}@example.com`;
    await s.addPerson(login, email, extra);
    await s.requestReset(login);
    const mail = await s.mail('reset_link', email);
    assert.ok(mail.link, `a link in the mail: ${mail.text}`);
    return { login, email, link: mail.link, mail };
  }

  /** Submits the page's form and returns the HTTP status of the answer (303 when it redirects). */
  async function submit(page, buttonName) {
    const [response] = await Promise.all([
      // The form's own POST, not the strength meter's check, which may still be in flight.
      page.waitForResponse((r) => r.request().method() === 'POST' && !r.url().includes('/password/check')),
      page.getByRole('button', { name: buttonName }).click(),
    ]);
    await page.waitForLoadState('load');
    return response.status();
  }

  const activeId = (page) => page.evaluate(() => document.activeElement && document.activeElement.id);

  async function assertFits(page, viewport) {
    const width = await page.evaluate(() => document.documentElement.scrollWidth);
    assert.ok(width <= viewport.width, `no sideways scrolling at ${viewport.width}px (content is ${width}px)`);
  }

  it('runs the full flow from the forgot page and the emailed link to logging in', async () => {
    await s.addPerson('ada', 'ada@example.com', { display_name: 'Ada Lovelace' });
    const { context, page, errors } = await open(DESKTOP);

    await page.goto(`${s.base}/forgot/default`);
    assert.equal(await activeId(page), 'login', 'the only field has focus');
    await page.getByLabel('Login or email address').fill('ada@example.com');
    assert.equal(await submit(page, 'Send reset link'), 303);
    assert.equal(page.url(), `${s.base}/forgot/default/sent`);
    await page.getByRole('heading', { name: 'Check your email' }).waitFor();
    await screenshot(page, 'forgot-sent-desktop-1280');

    // The link from the demo .eml, clicked in the mail's own HTML on another site.
    const mail = await s.mail('reset_link', 'ada@example.com');
    assert.ok(mail.link.startsWith(`${s.base}/reset/default?token=`), mail.link);
    inbox.show(mail.html);
    await page.goto(inbox.url);
    await Promise.all([
      page.waitForURL(`${s.base}/reset/default`),
      page.getByRole('link', { name: 'Choose a new password' }).click(),
    ]);
    assert.ok(!page.url().includes('token'), 'the token left the address bar');
    await page.getByRole('heading', { name: 'Choose a new password' }).waitFor();
    assert.ok((await page.textContent('main')).includes('for the account “ada”'));
    // History holds the page without the token: back is the mail, forward is the clean page.
    await page.goBack();
    assert.equal(page.url(), inbox.url);
    await page.goForward();
    assert.equal(page.url(), `${s.base}/reset/default`);
    await page.getByLabel('New password', { exact: true }).waitFor();

    // Focus order: new password (focused on load), repeat, save.
    assert.equal(await activeId(page), 'password');
    await page.keyboard.press('Tab');
    assert.equal(await activeId(page), 'confirm');
    await page.keyboard.press('Tab');
    assert.equal(await page.evaluate(() => document.activeElement.textContent), 'Save new password');
    await screenshot(page, 'reset-form-desktop-1280');

    await page.getByLabel('New password', { exact: true }).fill(STRONG);
    // The live hint (progressive enhancement) rates it.
    await page.locator('#strength:not([hidden])').waitFor();
    assert.match(await page.textContent('#strength'), /Strength: (strong|very strong)/);
    await page.getByLabel('Repeat the new password').fill(STRONG);
    await screenshot(page, 'reset-form-filled-desktop-1280');
    assert.equal(await submit(page, 'Save new password'), 303);
    assert.equal(page.url(), `${s.base}/reset/default/done`);
    await page.getByRole('heading', { name: 'Your password has been changed' }).waitFor();
    await screenshot(page, 'success-desktop-1280');

    const cookies = await context.cookies();
    assert.ok(!cookies.some((c) => c.name === 'resetd_reset'), 'the token cookie is gone');
    const login = await s.authenticate('ada', STRONG);
    assert.equal(login.status, 200, JSON.stringify(login.body));
    await s.mail('password_changed', 'ada@example.com');
    assert.deepEqual(errors, [], 'no console errors (CSP violations included)');
  });

  for (const [name, viewport] of [['phone-320', PHONE_320], ['phone-375', PHONE_375], ['desktop-1280', DESKTOP]]) {
    it(`shows every violation next to the field at ${name}`, async () => {
      const who = await personWithLink(`weak-${name}`);
      const { page, errors } = await open(viewport);
      await page.goto(who.link);
      assert.equal(page.url(), `${s.base}/reset/default`);
      await assertFits(page, viewport);
      assert.equal(await page.locator('input:visible').count(), 2, 'only the two password fields show');
      await screenshot(page, `reset-form-${name}`);

      await page.getByLabel('New password', { exact: true }).fill('abc12');
      await page.locator('#strength:not([hidden])').waitFor();
      await page.getByLabel('Repeat the new password').fill('abc13');
      assert.equal(await submit(page, 'Save new password'), 422);

      // The summary is announced (role=alert) and takes focus; each problem sits by its field.
      const summary = page.getByRole('alert');
      await summary.waitFor();
      assert.equal(await activeId(page), 'error-summary');
      const summaryText = await summary.textContent();
      for (const text of ['Use at least 8 characters.', 'This password is too common', 'The two passwords do not match']) {
        assert.ok(summaryText.includes(text), `${text} in ${summaryText}`);
      }
      const password = page.getByLabel('New password', { exact: true });
      assert.equal(await password.getAttribute('aria-invalid'), 'true');
      assert.match(await password.getAttribute('aria-describedby'), /password-error/);
      const passwordErrors = await page.textContent('#password-error');
      assert.ok(passwordErrors.includes('Use at least 8 characters.'));
      assert.ok(passwordErrors.includes('This password is too common'));
      assert.ok((await page.textContent('#confirm-error')).includes('do not match'));
      assert.equal(await password.inputValue(), '', 'passwords are never sent back to the page');
      await assertFits(page, viewport);
      await screenshot(page, `violations-${name}`);

      // The summary's links lead to the field.
      await page.getByRole('link', { name: 'The two passwords do not match' }).click();
      assert.ok(page.url().endsWith('#confirm'));

      await password.fill(STRONG);
      await page.getByLabel('Repeat the new password').fill(STRONG);
      assert.equal(await submit(page, 'Save new password'), 303);
      await page.getByRole('heading', { name: 'Your password has been changed' }).waitFor();
      await assertFits(page, viewport);
      await screenshot(page, `success-${name}`);
      assert.equal((await s.authenticate(who.login, STRONG)).status, 200);
      assert.deepEqual(errors, []);
    });
  }

  it('works with JavaScript off', async () => {
    const who = await personWithLink('nojs');
    const { page } = await open(PHONE_375, { javaScriptEnabled: false });
    await page.goto(who.link);
    assert.equal(page.url(), `${s.base}/reset/default`);
    // The browser applies autofocus after load; on a busy machine that can lag the load event.
    let focused = '';
    for (let i = 0; i < 40 && focused !== 'password'; i++) {
      focused = await activeId(page);
      if (focused !== 'password') await new Promise((r) => setTimeout(r, 50));
    }
    assert.equal(focused, 'password', 'autofocus needs no script');
    await page.getByLabel('New password', { exact: true }).fill('nojs');
    await page.getByLabel('Repeat the new password').fill('nojs');
    assert.equal(await submit(page, 'Save new password'), 422);
    assert.ok(await page.locator('#strength').isHidden(), 'no live hint without script');
    assert.ok((await page.textContent('#password-error')).includes('Do not use your login'));
    await screenshot(page, 'violations-nojs-phone-375');
    await page.getByLabel('New password', { exact: true }).fill(STRONG);
    await page.getByLabel('Repeat the new password').fill(STRONG);
    assert.equal(await submit(page, 'Save new password'), 303);
    await page.getByRole('heading', { name: 'Your password has been changed' }).waitFor();
    assert.equal((await s.authenticate('nojs', STRONG)).status, 200);
  });

  it('shows an expired link its message and a way to a new one', async () => {
    s.cli(['tenant', 'add', 'brief', '--token-ttl', '1']);
    const key = s.cli(['apikey', 'create', '--tenant', 'brief']).trim();
    await s.addPerson('late', 'late@example.com', { tenant: 'brief', key });
    await s.requestReset('late', 'brief');
    const mail = await s.mail('reset_link', 'late@example.com');
    await new Promise((r) => setTimeout(r, 1500));
    for (const [name, viewport] of [['phone-320', PHONE_320], ['desktop-1280', DESKTOP]]) {
      const { page, errors } = await open(viewport);
      const response = await page.goto(mail.link);
      assert.equal(response.status(), 410);
      assert.equal(page.url(), `${s.base}/reset/brief`);
      await page.getByRole('heading', { name: 'This link can no longer be used' }).waitFor();
      assert.ok((await page.textContent('main')).includes('has expired or has already been used'));
      await assertFits(page, viewport);
      await screenshot(page, `expired-${name}`);
      await page.getByRole('link', { name: 'Request a new link' }).click();
      await page.waitForURL(`${s.base}/forgot/brief`);
      await page.getByRole('heading', { name: 'Forgot your password?' }).waitFor();
      if (name === 'phone-320') await screenshot(page, 'forgot-phone-320');
      assert.deepEqual(errors, []);
    }
  });

  it('shows a used link its message', async () => {
    const who = await personWithLink('twice');
    const first = await open(DESKTOP);
    await first.page.goto(who.link);
    await first.page.getByLabel('New password', { exact: true }).fill(STRONG);
    await first.page.getByLabel('Repeat the new password').fill(STRONG);
    assert.equal(await submit(first.page, 'Save new password'), 303);

    const again = await open(DESKTOP);
    const response = await again.page.goto(who.link);
    assert.equal(response.status(), 410);
    await again.page.getByRole('heading', { name: 'This link can no longer be used' }).waitFor();
    await screenshot(again.page, 'used-desktop-1280');
    // The browser that finished no longer holds the token: back on the page, it is told how to
    // get a working link.
    const back = await first.page.goto(`${s.base}/reset/default`);
    assert.equal(back.status(), 400);
    await first.page.getByRole('heading', { name: 'Open the link from your email' }).waitFor();
  });

  it('speaks German to a German browser', async () => {
    const who = await personWithLink('deutsch');
    const { page, errors } = await open(PHONE_375, { locale: 'de-DE' });
    await page.goto(who.link);
    assert.equal(await page.getAttribute('html', 'lang'), 'de');
    await page.getByRole('heading', { name: 'Neues Passwort wählen' }).waitFor();
    await page.getByLabel('Neues Passwort', { exact: true }).fill('abc');
    await page.getByLabel('Neues Passwort wiederholen').fill('abc');
    assert.equal(await submit(page, 'Neues Passwort speichern'), 422);
    assert.ok((await page.textContent('#password-error')).includes('Verwenden Sie mindestens 8 Zeichen.'));
    await screenshot(page, 'violations-de-phone-375');
    assert.deepEqual(errors, []);
  });

  it('cannot be framed by another site', async () => {
    const { page } = await open(DESKTOP);
    inbox.show(`<!DOCTYPE html><p>framing attempt</p><iframe src="${s.base}/forgot/default"></iframe>`);
    await page.goto(inbox.url, { waitUntil: 'load' });
    const frame = page.frames().find((f) => f !== page.mainFrame());
    const form = frame ? await frame.$('form').catch(() => null) : null;
    assert.equal(form, null, 'the page did not render inside a frame');
  });
});
