// @alfresco/js-api (PeopleApi.requestPasswordReset / resetPassword) against resetd's Alfresco
// dialect. Started by crates/resetd/tests/api/dialects/alfresco.rs, which creates `jsuser` and
// `js.upper`.
'use strict';
const { test } = require('node:test');
const assert = require('node:assert/strict');
const { AlfrescoApi, PeopleApi } = require('@alfresco/js-api');
const { BASE, resetMails, waitResetMail, linkParam, authenticate } = require('./helpers');

const OLD = process.env.RESETD_OLD_PASSWORD;
const NEW = 'a brand new js passphrase 9';
const people = new PeopleApi(new AlfrescoApi({ hostEcm: BASE, provider: 'ECM' }));

/** The Alfresco error body of a rejected call. */
function alfrescoError(rejection) {
  assert.ok(rejection.status, `expected an HTTP error, got ${JSON.stringify(rejection)}`);
  return JSON.parse(rejection.message).error;
}

test('requestPasswordReset resolves alike for known and unknown people', async () => {
  assert.deepEqual(await people.requestPasswordReset('nobody-here', { client: 'share' }), {});
  assert.deepEqual(await people.requestPasswordReset('jsuser', { client: 'share' }), {});
  const mail = await waitResetMail('jsuser@example.com', 1);
  assert.match(mail, /https:\/\/share\.example\.com\/share\/page\/reset-password\?key=[A-Za-z0-9_-]{43}&id=activiti\$\d+/);
});

test('an unregistered client is refused with Alfresco\'s 404', async () => {
  await assert.rejects(people.requestPasswordReset('jsuser', { client: 'myapp' }), (e) => {
    assert.equal(e.status, 404);
    const err = alfrescoError(e);
    assert.equal(err.errorKey, 'framework.exception.ApiDefault');
    assert.equal(err.statusCode, 404);
    assert.match(err.briefSummary, /^\d{8} Client was not found \[myapp\]$/);
    return true;
  });
});

test('a missing client is refused with Alfresco\'s 400', async () => {
  await assert.rejects(people.requestPasswordReset('jsuser', {}), (e) => {
    assert.equal(e.status, 400);
    assert.equal(alfrescoError(e).errorKey, "Field 'client' is null, but is required.");
    return true;
  });
});

test('resetPassword with the emailed id and key sets the password', async () => {
  const mail = await waitResetMail('jsuser@example.com', 1);
  const key = linkParam(mail, '?key=');
  const id = linkParam(mail, '&id=');
  // A wrong id changes nothing and still resolves, as Alfresco does.
  assert.deepEqual(await people.resetPassword('jsuser', { password: NEW, id: 'activiti$1', key }), {});
  assert.equal(await authenticate('default', 'jsuser', OLD), 200);
  assert.deepEqual(await people.resetPassword('jsuser', { password: NEW, id, key }), {});
  assert.equal(await authenticate('default', 'jsuser', NEW), 200);
  assert.equal(await authenticate('default', 'jsuser', OLD), 401);
  assert.equal(resetMails('nobody-here@example.com').length, 0);
});

test('person ids are matched in any case, as Alfresco does by default', async () => {
  assert.deepEqual(await people.requestPasswordReset('JS.UPPER', { client: 'share' }), {});
  const mail = await waitResetMail('js.upper@example.com', 1);
  const key = linkParam(mail, '?key=');
  const id = linkParam(mail, '&id=');
  assert.deepEqual(await people.resetPassword('Js.Upper', { password: NEW, id, key }), {});
  assert.equal(await authenticate('default', 'js.upper', NEW), 200);
  assert.equal(await authenticate('default', 'js.upper', OLD), 401);
});
