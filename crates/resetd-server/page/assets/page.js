// resetd hosted page, progressive enhancement: a live strength hint under the new password.
// The page works without it; the server checks everything again on submit.
(function () {
  'use strict';
  var form = document.getElementById('reset-form');
  var hint = document.getElementById('strength');
  if (!form || !hint || !window.fetch || !window.JSON) { return; }
  var input = document.getElementById('password');
  var url = form.getAttribute('data-check-url');
  var login = form.getAttribute('data-login');
  var timer = null;
  var latest = 0;

  function text(tag, value) {
    var el = document.createElement(tag);
    el.textContent = value;
    return el;
  }

  function show(verdict) {
    while (hint.firstChild) { hint.removeChild(hint.firstChild); }
    if (!verdict) { hint.hidden = true; return; }
    var score = Math.max(0, Math.min(4, verdict.score | 0));
    var meter = document.createElement('meter');
    meter.min = 0; meter.max = 4; meter.low = 2; meter.high = 3; meter.optimum = 4;
    meter.value = score;
    meter.setAttribute('aria-hidden', 'true');
    hint.appendChild(meter);
    hint.appendChild(text('span', hint.getAttribute('data-prefix') + ' ' + hint.getAttribute('data-label-' + score)));
    var problems = (verdict.violations || []).map(function (v) {
      return hint.getAttribute('data-' + v.code) || v.message;
    });
    if (problems.length) {
      var list = document.createElement('ul');
      problems.forEach(function (p) { list.appendChild(text('li', p)); });
      hint.appendChild(list);
    }
    hint.hidden = false;
  }

  function check() {
    var value = input.value;
    var mine = ++latest;
    if (!value) { show(null); return; }
    var body = { password: value };
    if (login) { body.login = login; }
    fetch(url, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(body),
      credentials: 'omit',
      cache: 'no-store'
    }).then(function (r) { return r.ok ? r.json() : null; })
      .then(function (v) { if (mine === latest) { show(v); } })
      .catch(function () { if (mine === latest) { show(null); } });
  }

  input.addEventListener('input', function () {
    if (timer) { clearTimeout(timer); }
    timer = setTimeout(check, 300);
  });
})();
