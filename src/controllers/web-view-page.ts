// The web view's one page: static HTML, CSS and JavaScript, no build step and nothing from a CDN. It reads the
// server-sent events of /api/events with fetch (so it can send a bearer token, which EventSource cannot) and
// renders each snapshot (web-view-model.ts). A token comes from the URL fragment (#token=…, never sent to the
// server) or the form the page shows on a 401, and is kept in sessionStorage.
export const WEB_VIEW_PAGE = String.raw`<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Diego — live view</title>
<style>
  :root { --bg:#f6f7f9; --card:#fff; --ink:#1d2430; --muted:#667085; --line:#e3e6ea;
          --run:#1f9d55; --claim:#d69e2e; --unclaim:#718096; --crash:#d64545; }
  * { box-sizing: border-box; }
  body { margin:0; font:14px/1.4 system-ui, -apple-system, "Segoe UI", sans-serif; background:var(--bg); color:var(--ink); }
  header { display:flex; align-items:center; gap:16px; padding:10px 18px; background:#1d2430; color:#fff; }
  header h1 { font-size:16px; margin:0; font-weight:600; }
  #status { font-size:12px; padding:2px 8px; border-radius:10px; background:#4a5568; }
  #status.live { background:var(--run); } #status.standby { background:var(--claim); } #status.down { background:var(--crash); }
  #totals { font-size:12px; color:#cbd5e0; margin-left:auto; }
  main { padding:14px 18px; display:grid; gap:16px; }
  h2 { font-size:13px; text-transform:uppercase; letter-spacing:.05em; color:var(--muted); margin:0 0 8px; }
  .zones { display:flex; gap:14px; flex-wrap:wrap; align-items:flex-start; }
  .zone { background:#eceff3; border-radius:8px; padding:10px; min-width:260px; flex:1; }
  .zone > h3 { margin:0 0 8px; font-size:13px; }
  .cell { background:var(--card); border:1px solid var(--line); border-radius:6px; padding:8px; margin-bottom:8px; }
  .cell.absent { border-color:var(--crash); opacity:.75; }
  .cell .name { font-weight:600; font-family:ui-monospace, monospace; font-size:12px; }
  .cell .meta { color:var(--muted); font-size:11px; }
  .bar { height:4px; background:var(--line); border-radius:2px; margin:4px 0 6px; overflow:hidden; }
  .bar > div { height:100%; background:#4c6ef5; }
  ul.instances { list-style:none; margin:0; padding:0; display:flex; flex-wrap:wrap; gap:4px; }
  .instance { font:11px ui-monospace, monospace; padding:2px 6px; border-radius:4px; color:#fff; background:var(--unclaim); }
  .instance[data-state="RUNNING"] { background:var(--run); }
  .instance[data-state="CLAIMED"] { background:var(--claim); }
  .instance[data-state="CRASHED"] { background:var(--crash); }
  .instance[data-presence="EVACUATING"], .instance[data-presence="SUSPECT"] { outline:2px dashed #2d3748; }
  .task { background:#805ad5; }
  table { border-collapse:collapse; width:100%; background:var(--card); border:1px solid var(--line); font-size:12px; }
  th, td { text-align:left; padding:4px 8px; border-bottom:1px solid var(--line); }
  th { color:var(--muted); font-weight:500; }
  td.mono { font-family:ui-monospace, monospace; }
  .empty { color:var(--muted); font-style:italic; }
  .row { display:grid; grid-template-columns: 1fr 1fr; gap:16px; }
  @media (max-width: 900px) { .row { grid-template-columns: 1fr; } }
  #auth { display:none; background:#fff3cd; border:1px solid #e0c36a; padding:10px; border-radius:6px; }
  #auth input { width:60%; font-family:ui-monospace, monospace; }
</style>
</head>
<body>
<header><h1>Diego live view</h1><span id="status">connecting…</span><span id="totals"></span></header>
<main>
  <form id="auth"><div id="auth-message"></div>
    <input id="token" type="password" placeholder="bearer token (kubectl create token …)" autocomplete="off">
    <button type="submit">Connect</button></form>
  <section><h2>Cells by zone</h2><div id="zones" class="zones"></div></section>
  <section id="unplaced-section"><h2>Not on a cell: waiting for placement, or crashed and waiting to restart</h2><div id="unplaced"></div></section>
  <div class="row">
    <section><h2>Crashing apps</h2><div id="crashing"></div></section>
    <section><h2>Pending tasks</h2><div id="pending-tasks"></div></section>
  </div>
  <section><h2>Recent auction decisions</h2><div id="decisions"></div></section>
</main>
<script>
(() => {
  const $ = (id) => document.getElementById(id);
  const esc = (v) => String(v ?? '').replace(/[&<>"']/g, (c) => ({ '&':'&amp;', '<':'&lt;', '>':'&gt;', '"':'&quot;', "'":'&#39;' })[c]);
  const time = (iso) => iso ? new Date(iso).toLocaleTimeString() : '';
  const pct = (total, avail) => total > 0 ? Math.round(100 * (total - Math.max(0, avail)) / total) : 0;

  // A token in the fragment (never sent to the server): kept for the tab, then taken out of the address bar.
  function tokenFromHash() {
    const m = /[#&]token=([^&]+)/.exec(location.hash);
    if (!m) return false;
    sessionStorage.setItem('diego-web-view-token', decodeURIComponent(m[1]));
    history.replaceState(null, '', location.pathname + location.search);
    return true;
  }
  tokenFromHash();
  const token = () => sessionStorage.getItem('diego-web-view-token');

  function status(text, cls) { const s = $('status'); s.textContent = text; s.className = cls; }

  function instance(i) {
    const title = i.app + ' #' + i.index + ' ' + i.state + (i.crashCount ? ' (crashes: ' + i.crashCount + ')' : '') + (i.crashReason ? ' — ' + i.crashReason : '') + (i.placementError ? ' — ' + i.placementError : '');
    return '<li class="instance" data-app="' + esc(i.app) + '" data-process-guid="' + esc(i.processGuid) + '" data-index="' + i.index +
      '" data-state="' + esc(i.state) + '" data-presence="' + esc(i.presence) + '" title="' + esc(title) + '">' +
      esc(i.app.split('/').pop()) + '/' + i.index + ' ' + esc(i.state) + '</li>';
  }
  function cell(c) {
    const cap = c.capacity, av = c.available;
    // What the auction counts as used; what the cell's agent reports left, when it is less.
    const mem = cap ? Math.max(pct(cap.memoryMb, cap.memoryMb - c.used.memoryMb), av ? pct(cap.memoryMb, av.memoryMb) : 0) : undefined;
    const more = c.counts.instances - c.instances.length;
    return '<div class="cell' + (c.present ? '' : ' absent') + '" data-cell-id="' + esc(c.cellId) + '" data-zone="' + esc(c.zone) + '">' +
      '<div class="name">' + esc(c.cellId) + (c.evacuating ? ' · evacuating' : '') + (c.present ? '' : ' · not present') + (c.unknown ? ' · no Cell' : '') + '</div>' +
      '<div class="meta">' + c.counts.running + ' running, ' + c.counts.claimed + ' claimed, ' + c.counts.crashed + ' crashed, ' + c.counts.tasks + ' tasks' +
      (cap ? ' · ' + cap.memoryMb + ' MB, ' + cap.containers + ' containers' : '') + (mem !== undefined ? ' · ' + mem + '% memory used' : '') + '</div>' +
      (mem !== undefined ? '<div class="bar"><div style="width:' + mem + '%"></div></div>' : '') +
      '<ul class="instances">' + c.instances.map(instance).join('') +
      c.tasks.map((t) => '<li class="instance task" data-task="' + esc(t.key) + '" title="' + esc(t.taskGuid) + '">task ' + esc(t.key.split('/').pop()) + '</li>').join('') +
      (more > 0 ? '<li class="instance">+' + more + ' more</li>' : '') + '</ul></div>';
  }
  function table(rows, head, empty) {
    if (rows.length === 0) return '<div class="empty">' + empty + '</div>';
    return '<table><tr>' + head.map((h) => '<th>' + h + '</th>').join('') + '</tr>' + rows.join('') + '</table>';
  }
  function render(v) {
    const t = v.totals;
    status(v.leading ? 'live' : 'standby (not the leader)', v.leading ? 'live' : 'standby');
    $('totals').textContent = t.presentCells + '/' + t.cells + ' cells · ' + t.apps + ' apps · ' + t.running + ' running, ' + t.claimed +
      ' claimed, ' + t.unclaimed + ' unclaimed, ' + t.crashed + ' crashed · ' + t.pendingTasks + ' pending tasks · ' + time(v.generatedAt);
    $('zones').innerHTML = v.zones.length === 0
      ? '<div class="empty">' + (v.leading ? 'no cells' : 'this replica does not lead: the cache and the auction run on the leader (kubectl get lease -n <system namespace> diego-operator-controller)') + '</div>'
      : v.zones.map((z) => '<div class="zone" data-zone="' + esc(z.zone) + '"><h3>zone ' + esc(z.zone || '(none)') + '</h3>' + z.cells.map(cell).join('') + '</div>').join('');
    $('unplaced').innerHTML = v.unplaced.length === 0 ? '<div class="empty">nothing</div>' : '<ul class="instances">' + v.unplaced.map(instance).join('') + '</ul>';
    $('crashing').innerHTML = table(v.crashing.map((a) => '<tr class="crashing-app" data-app="' + esc(a.app) + '"><td class="mono">' + esc(a.app) + '</td><td>' +
      a.crashed + '/' + a.instances + '</td><td>' + a.crashCount + '</td><td>' + esc(a.lastCrashReason) + '</td></tr>'),
      ['app', 'crashed', 'crash count', 'last reason'], 'no crashing apps');
    $('pending-tasks').innerHTML = table(v.pendingTasks.map((k) => '<tr class="pending-task" data-task="' + esc(k.key) + '"><td class="mono">' + esc(k.key) +
      '</td><td>' + esc(k.cellId || '—') + '</td><td>' + k.rejectionCount + '</td><td>' + esc(k.rejectionReason) + '</td></tr>'),
      ['task', 'placed on', 'rejections', 'reason'], 'no pending tasks');
    $('decisions').innerHTML = table(v.decisions.map((d) => {
      const f = d.filteredOut, out = [f.rootfs && f.rootfs + ' rootfs', f.volumeDrivers && f.volumeDrivers + ' volume drivers', f.placementTags && f.placementTags + ' tags', f.resources && f.resources + ' without room'].filter(Boolean).join(', ');
      return '<tr class="decision" data-key="' + esc(d.key) + '"><td>' + time(d.at) + '</td><td class="mono">' + esc(d.work) + '</td><td class="mono">' +
        esc(d.cellId ? d.cellId + ' (zone ' + d.zone + ')' : 'not placed: ' + d.placementError) + '</td><td>' + (d.score === undefined ? '' : d.score.toFixed(3)) +
        '</td><td class="mono runners-up">' + (d.runnersUp || []).map((r) => esc(r.cellId) + ' ' + r.score.toFixed(3)).join(', ') +
        '</td><td>' + d.cellsConsidered + (out ? ' (filtered: ' + esc(out) + ')' : '') + '</td></tr>';
    }), ['time', 'work', 'decision', 'score', 'next best (lower wins)', 'cells considered'], 'no auctions yet');
  }

  // One stream at a time: a new connect() (a new token) aborts the one before, whose end then does nothing.
  let current, retryTimer;
  async function connect() {
    clearTimeout(retryTimer);
    if (current) current.abort();
    const ac = new AbortController();
    current = ac;
    const retry = (why) => {
      if (ac !== current) return;
      status(why + ', reconnecting…', 'down');
      retryTimer = setTimeout(connect, 2000);
    };
    const headers = token() ? { authorization: 'Bearer ' + token() } : {};
    let res;
    try { res = await fetch('api/events', { headers, cache: 'no-store', signal: ac.signal }); } catch (e) { return retry('cannot reach the controller'); }
    if (ac !== current) return;
    if (res.status === 401 || res.status === 403) {
      const body = await res.json().catch(() => ({}));
      $('auth').style.display = 'block';
      $('auth-message').textContent = (body.error || res.statusText) + ' — give a token allowed to list desiredlrps.diego.dev in all namespaces.';
      return status('not authorized', 'down');
    }
    if (!res.ok || !res.body) return retry('HTTP ' + res.status);
    $('auth').style.display = 'none';
    const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
    let buf = '';
    try {
      for (;;) {
        const { value, done } = await reader.read();
        if (done || ac !== current) break;
        buf += value;
        let i;
        while ((i = buf.indexOf('\n\n')) >= 0) {
          const msg = buf.slice(0, i); buf = buf.slice(i + 2);
          let event = 'message', data = '';
          for (const line of msg.split('\n')) {
            if (line.startsWith('event:')) event = line.slice(6).trim();
            else if (line.startsWith('data:')) data += line.slice(5).trim();
          }
          if (event === 'view' && data) render(JSON.parse(data));
        }
      }
    } catch (e) { /* the connection broke */ }
    retry('disconnected');
  }
  $('auth').addEventListener('submit', (e) => {
    e.preventDefault();
    sessionStorage.setItem('diego-web-view-token', $('token').value.trim());
    connect();
  });
  window.addEventListener('hashchange', () => { if (tokenFromHash()) connect(); });
  connect();
})();
</script>
</body>
</html>
`;
