(function () {
  'use strict';
  var byId = function (id) { return document.getElementById(id); };
  var rows = Array.prototype.slice.call(document.querySelectorAll('#results-table tbody tr'));
  var cells = Array.prototype.slice.call(document.querySelectorAll('#matrix .cell'));
  var q = byId('f-q'), status = byId('f-status'), diag = byId('f-diag'), siem = byId('f-siem'), tactic = byId('f-tactic'), breach = byId('f-breach');
  var view = byId('view');

  function filter() {
    var text = q.value.trim().toLowerCase(), shown = 0;
    rows.forEach(function (tr) {
      var d = tr.dataset;
      var ok = (!status.value || d.status === status.value) &&
        (!diag.value || d.diag === diag.value) &&
        (!siem.value || d.siem === siem.value) &&
        (!tactic.value || (' ' + d.tactics + ' ').indexOf(' ' + tactic.value + ' ') >= 0) &&
        (!breach.checked || d.breach === 'true') &&
        (!text || d.search.indexOf(text) >= 0);
      tr.hidden = !ok;
      if (ok) { shown++; }
    });
    byId('shown').textContent = String(shown);
  }

  function colour() {
    cells.forEach(function (a) {
      var v = JSON.parse(a.dataset.views)[view.value];
      a.className = 'cell ' + (v ? v[0] : 'cov-none');
      a.querySelector('.lbl').textContent = v ? v[1] : 'not tested';
    });
  }

  // Filters can be given in the address:
  // report.html#status=missed&diagnosis=no_telemetry&siem=local
  function fromHash() {
    var h = window.location.hash.replace(/^#/, '');
    h.split('&').forEach(function (kv) {
      var i = kv.indexOf('='), k, v;
      if (i < 0) { return; }
      k = decodeURIComponent(kv.slice(0, i));
      v = decodeURIComponent(kv.slice(i + 1).replace(/\+/g, ' '));
      if (k === 'q') { q.value = v; }
      if (k === 'status') { status.value = v; }
      if (k === 'diagnosis') { diag.value = v; }
      if (k === 'siem') { siem.value = v; }
      if (k === 'tactic') { tactic.value = v; }
      if (k === 'breach') { breach.checked = v === '1' || v === 'true'; }
      if (k === 'view') { view.value = v; }
    });
  }

  [q, status, diag, siem, tactic, breach].forEach(function (el) {
    el.addEventListener('input', filter);
    el.addEventListener('change', filter);
  });
  view.addEventListener('change', colour);
  byId('filters').addEventListener('submit', function (e) { e.preventDefault(); });
  window.addEventListener('hashchange', function () { fromHash(); filter(); colour(); });
  fromHash();
  filter();
  colour();
  byId('matrix-cells').textContent = String(cells.length);
  document.documentElement.setAttribute('data-ready', 'true');
}());
