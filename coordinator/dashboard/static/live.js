// blockfarm dashboard: live updates without reload. A page whose #live
// element has data-live is fetched again every few seconds (same URL, the
// body only: header x-blockfarm-fragment) and its body swapped in. The
// server escapes everything it renders, so the swap adds no markup of its
// own. No dependencies; nothing from other sites.
(function () {
  'use strict';
  var EVERY_MS = 5000;
  var live = document.getElementById('live');
  var status = document.getElementById('live-status');
  if (!live || !live.getAttribute('data-live')) return;
  function say(text) {
    if (status) status.textContent = text;
  }
  function busy() {
    // Do not swap while someone types in a form of the page.
    var a = document.activeElement;
    return a && live.contains(a) && /^(INPUT|SELECT|TEXTAREA)$/.test(a.tagName);
  }
  function tick() {
    if (document.hidden || busy()) return schedule();
    fetch(location.pathname + location.search, { headers: { 'x-blockfarm-fragment': '1' }, credentials: 'same-origin', cache: 'no-store' })
      .then(function (r) {
        if (!r.ok) throw new Error('HTTP ' + r.status);
        return r.text();
      })
      .then(function (html) {
        if (!busy()) live.innerHTML = html;
        say('live · updated ' + new Date().toLocaleTimeString());
      })
      .catch(function (e) {
        say('live · not updated (' + e.message + ')');
      })
      .then(schedule);
  }
  function schedule() {
    setTimeout(tick, EVERY_MS);
  }
  say('live');
  schedule();
})();
