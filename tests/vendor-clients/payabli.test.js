// @payabli/sdk-node (client.user.authResetUser) against resetd's Payabli dialect. Started by
// crates/resetd/tests/api/dialects/payabli.rs, which creates `sdk` and an allow-listed API key.
'use strict';
const { test } = require('node:test');
const assert = require('node:assert/strict');
const { PayabliClient, Payabli } = require('@payabli/sdk-node');
const { BASE, resetMails, waitResetMail, linkParam, native, authenticate } = require('./helpers');

const OLD = process.env.RESETD_OLD_PASSWORD;
const NEW = 'amber kettle drifts at noon 5';
const client = (apiKey) => new PayabliClient({ apiKey, baseUrl: `${BASE}/api` });
const noRetry = { maxRetries: 0 };

test('authResetUser answers Success for known and unknown addresses alike', async () => {
  const api = client(process.env.PAYABLI_KEY);
  const known = await api.user.authResetUser({ email: 'sdk@example.com' }, noRetry);
  const unknown = await api.user.authResetUser({ email: 'nobody@example.com' }, noRetry);
  assert.deepEqual(known, { responseText: 'Success', isSuccess: true });
  assert.deepEqual(unknown, known);
  await waitResetMail('sdk@example.com', 1);
});

test('one token asks more often than the per-IP burst allows, without a 429', async () => {
  // The default per-IP burst of reset requests is 10; Payabli's back end asks for all its users
  // from one address, so its token is limited per key (burst 100) instead.
  const api = client(process.env.PAYABLI_KEY);
  for (let i = 0; i < 15; i++) {
    const r = await api.user.authResetUser({ email: `burst${i}@example.com` }, noRetry);
    assert.deepEqual(r, { responseText: 'Success', isSuccess: true });
  }
});

test('entryType sent as a numeric string reaches the entry point, as Payabli\'s binder reads it', async () => {
  // The SDK types entryType as a number but sends whatever it is given: a front end that keeps
  // ids as strings sends "2".
  const api = client(process.env.PAYABLI_ACME_KEY);
  const body = { email: 'ann@acme.example.com', entry: 'pp-acme', entryType: '2' };
  assert.deepEqual(await api.user.authResetUser(body, noRetry), { responseText: 'Success', isSuccess: true });
  await waitResetMail('ann@acme.example.com', 1);
  await assert.rejects(api.user.authResetUser({ ...body, entryType: '2.0' }, noRetry), (e) => {
    assert.ok(e instanceof Payabli.BadRequestError, e.constructor.name);
    assert.equal(e.body.responseText, 'Bad request/ invalid data');
    assert.match(e.body.responseData.explanation, /^entryType must be an integer/);
    return true;
  });
});

test('a token that is not allow-listed is UnauthorizedError', async () => {
  for (const key of [process.env.PAYABLI_OTHER_KEY, 'not-a-key']) {
    await assert.rejects(client(key).user.authResetUser({ email: 'sdk@example.com' }, noRetry), (e) => {
      assert.ok(e instanceof Payabli.UnauthorizedError, e.constructor.name);
      assert.equal(e.statusCode, 401);
      assert.equal(e.body.isSuccess, false);
      assert.equal(e.body.responseText, 'Unauthorized request.');
      return true;
    });
  }
});

test('a request without an email is BadRequestError', async () => {
  await assert.rejects(client(process.env.PAYABLI_KEY).user.authResetUser({}, noRetry), (e) => {
    assert.ok(e instanceof Payabli.BadRequestError, e.constructor.name);
    assert.equal(e.statusCode, 400);
    assert.equal(e.body.responseCode, 400);
    assert.equal(e.body.responseText, 'Bad request/ invalid data');
    return true;
  });
});

test('the emailed token completes the reset and the new password logs in', async () => {
  const mail = await waitResetMail('sdk@example.com', 1);
  const token = linkParam(mail, '?token=');
  const done = await native('POST', `/v1/default/recovery/${token}`, { password: NEW });
  assert.equal(done.status, 204);
  assert.equal(await authenticate('default', 'sdk', NEW), 200);
  assert.equal(await authenticate('default', 'sdk', OLD), 401);
  assert.equal(resetMails('nobody@example.com').length, 0);
});
