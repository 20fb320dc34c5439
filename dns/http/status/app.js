// The gslb-dns status page: preact + htm straight from node_modules (see the import map), no build
// step. Data comes from the read-guarded API: GET /api/v1/events (server-sent events, read with
// fetch so the token travels in the Authorization header, never in a URL) and /api/v1/explain;
// the buttons call the admin API with the admin token. Tokens live in sessionStorage only.
import { h, render } from 'preact';
import { useCallback, useEffect, useRef, useState } from 'preact/hooks';
import htm from 'htm';

const html = htm.bind(h);
const READ_KEY = 'gslb-dns.read-token';
const ADMIN_KEY = 'gslb-dns.admin-token';
const EVENTS_SHOWN = 200;
const RETRY_MS = 2000;

function stored(key) {
  try { return sessionStorage.getItem(key) ?? ''; } catch { return ''; }
}
function store(key, value) {
  try { if (value) sessionStorage.setItem(key, value); else sessionStorage.removeItem(key); } catch { /* private mode: kept in memory only */ }
}
function authHeaders(token) {
  return token ? { authorization: `Bearer ${token}` } : {};
}
async function errorOf(res) {
  try {
    const body = await res.json();
    return body;
  } catch {
    return { error: `${res.status} ${res.statusText}` };
  }
}

/** Reads a text/event-stream response, calling onEvent(name, data) for each event with data. */
async function readEvents(res, onEvent) {
  const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
  let buf = '';
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    buf += value;
    let end;
    while ((end = buf.indexOf('\n\n')) >= 0) {
      const block = buf.slice(0, end);
      buf = buf.slice(end + 2);
      let name = 'message';
      const data = [];
      for (const line of block.split('\n')) {
        if (line === '' || line.startsWith(':')) continue;
        const colon = line.indexOf(':');
        const field = colon < 0 ? line : line.slice(0, colon);
        let v = colon < 0 ? '' : line.slice(colon + 1);
        if (v.startsWith(' ')) v = v.slice(1);
        if (field === 'event') name = v;
        else if (field === 'data') data.push(v);
      }
      if (data.length > 0) onEvent(name, JSON.parse(data.join('\n')));
    }
  }
}

/** Applies one server event to the page's copy of the state. */
function applyEvent(prev, name, d) {
  const offset = typeof d.serverTime === 'number' ? d.serverTime - Date.now() : prev?.offset ?? 0;
  if (name === 'snapshot') return { ...d, offset, events: d.events ?? [] };
  if (!prev) return prev;
  switch (name) {
    case 'site': return { ...prev, offset, sites: prev.sites.map((s) => (s.name === d.site.name ? d.site : s)) };
    case 'pools': return { ...prev, offset, epoch: d.epoch, pools: d.pools, failOpen: d.failOpen };
    case 'overrides': return { ...prev, offset, overrides: d.overrides, overridesDigest: d.overridesDigest };
    case 'event': return { ...prev, offset, events: [d.event, ...prev.events].slice(0, EVENTS_SHOWN) };
    default: return prev;
  }
}

/** The live state: connects, reconnects after RETRY_MS, and reports 401/403 as `denied`. */
function useLiveState(token, enabled) {
  const [data, setData] = useState(null);
  const [conn, setConn] = useState({ status: 'connecting', error: '' });
  useEffect(() => {
    if (!enabled) { setConn({ status: 'off', error: '' }); return undefined; }
    const abort = new AbortController();
    let timer;
    const connect = async () => {
      setConn((c) => ({ ...c, status: 'connecting' }));
      try {
        const res = await fetch('/api/v1/events', { headers: authHeaders(token), signal: abort.signal, cache: 'no-store' });
        if (res.status === 401 || res.status === 403) {
          setConn({ status: 'denied', error: (await errorOf(res)).error });
          setData(null);
          return;
        }
        if (!res.ok) throw new Error((await errorOf(res)).error);
        setConn({ status: 'live', error: '' });
        await readEvents(res, (name, d) => setData((prev) => applyEvent(prev, name, d)));
        throw new Error('the stream ended');
      } catch (err) {
        if (abort.signal.aborted) return;
        setConn({ status: 'reconnecting', error: String(err.message ?? err) });
        timer = setTimeout(connect, RETRY_MS);
      }
    };
    void connect();
    return () => { abort.abort(); clearTimeout(timer); };
  }, [token, enabled]);
  return { data, conn };
}

/** Re-renders every second (report ages). */
function useSecondTick() {
  const [, setTick] = useState(0);
  useEffect(() => {
    const t = setInterval(() => setTick((n) => n + 1), 1000);
    return () => clearInterval(t);
  }, []);
}

function age(ms) {
  if (ms < 0) ms = 0;
  if (ms < 10_000) return `${(ms / 1000).toFixed(1)} s`;
  if (ms < 120_000) return `${Math.round(ms / 1000)} s`;
  if (ms < 7_200_000) return `${Math.round(ms / 60_000)} min`;
  return `${Math.round(ms / 3_600_000)} h`;
}

function Badge({ kind, children, title }) {
  return html`<span class=${`badge ${kind}`} title=${title ?? ''}>${children}</span>`;
}

function memberBadge(m) {
  if (m.why === 'forced down by operator') return html`<${Badge} kind="force-down">forced down<//>`;
  if (m.why === 'drained by operator' || m.status === 'drain') return html`<${Badge} kind="drain">drain<//>`;
  if (m.why === 'site stale') return html`<${Badge} kind="stale">stale<//>`;
  return html`<${Badge} kind=${m.status}>${m.status}<//>`;
}

function Actions({ admin, site, address, act }) {
  if (!admin) return null;
  const target = { site, ...(address ? { address } : {}) };
  const label = address ? `${site} ${address}` : `site ${site}`;
  return html`<div class="actions">
    ${['drain', 'undrain', 'force-down', 'release'].map((a) => html`
      <button type="button" class=${a === 'force-down' ? 'danger' : ''} data-action=${a} aria-label=${`${a} ${label}`}
        onClick=${() => act(a, target)}>${a}</button>`)}
  </div>`;
}

function Sites({ data, admin, act }) {
  const now = Date.now() + (data.offset ?? 0);
  return html`<section class="card" id="sites"><h2>Sites</h2><div class="scroll"><table>
    <thead><tr><th>site</th><th>state</th><th>last report</th><th>agent</th><th>last seq</th><th class="hide-narrow">mode</th>${admin ? html`<th>actions</th>` : null}</tr></thead>
    <tbody>${data.sites.map((s) => html`<tr data-site=${s.name}>
      <td><strong>${s.name}</strong></td>
      <td>${s.stale ? html`<${Badge} kind="stale">stale<//>` : html`<${Badge} kind="fresh">fresh<//>`}${s.restored ? html` <${Badge} kind="warn" title="health restored from the state dir">restored<//>` : null}</td>
      <td data-col="age">${s.mode === 'probe' ? html`<span class="muted">probed</span>` : s.lastReportAt === null ? html`<span class="muted">none yet</span>` : `${age(now - s.lastReportAt)} ago`}</td>
      <td data-col="agent" class="mono">${s.agent ?? ''}</td>
      <td data-col="seq" class="mono">${Object.entries(s.lastSeq).map(([a, q]) => (Object.keys(s.lastSeq).length > 1 ? `${a}: ${q}` : String(q))).join(', ')}</td>
      <td class="hide-narrow">${s.mode}</td>
      ${admin ? html`<td><${Actions} admin=${admin} site=${s.name} act=${act} /></td>` : null}
    </tr>`)}</tbody></table></div></section>`;
}

function Pools({ data, admin, act }) {
  const failOpen = new Map((data.failOpen ?? []).map((f) => [f.pool, f]));
  return html`<section class="card" id="pools"><h2>Pools <span class="muted">epoch ${data.epoch}</span></h2>
    ${data.pools.map((p) => {
      const fo = failOpen.get(p.name);
      return html`<div class="pool" data-pool=${p.name}>
        <h3>${p.name} <span class="muted">${p.policy}</span> <span class="muted mono">${p.names.join(' ')}</span>
          ${fo?.failOpen ? html`<${Badge} kind="failopen" title=${`no member serves: answering per allDown ${fo.allDown}`}>failing open (${fo.allDown})<//>` : null}
          ${p.startupPending ? html`<${Badge} kind="warn">startup pending<//>` : null}
          ${p.degraded && !fo?.failOpen ? html`<${Badge} kind="degraded">degraded<//>` : null}</h3>
        <div class="scroll"><table>
          <thead><tr><th>site</th><th>address</th><th>state</th><th>reason</th><th class="num">weight</th><th class="num">effective</th><th class="hide-narrow num">tier</th>${admin ? html`<th>actions</th>` : null}</tr></thead>
          <tbody>${p.members.map((m) => html`<tr data-member=${`${m.site}|${m.address}`}>
            <td>${m.site}</td><td class="mono">${m.address}</td>
            <td data-col="state">${memberBadge(m)} ${m.serving ? html`<${Badge} kind="up">serving<//>` : null}</td>
            <td data-col="why">${m.why}</td>
            <td class="num">${m.weight}</td><td class="num" data-col="effective">${Math.round(m.effectiveWeight * 100) / 100}</td>
            <td class="hide-narrow num">${m.tier}</td>
            ${admin ? html`<td><${Actions} admin=${admin} site=${m.site} address=${m.address} act=${act} /></td>` : null}
          </tr>`)}</tbody></table></div></div>`;
    })}</section>`;
}

function Overrides({ data }) {
  return html`<section class="card" id="overrides"><h2>Overrides</h2>
    ${data.overrides.length === 0 ? html`<p class="muted">none: every member follows its health</p>` : html`<div class="scroll"><table>
      <thead><tr><th>action</th><th>target</th><th>who</th><th>why</th><th>when</th></tr></thead>
      <tbody>${data.overrides.map((o) => html`<tr data-override=${`${o.site}|${o.address ?? ''}`}>
        <td><${Badge} kind=${o.action}>${o.action}<//></td><td>${o.address ? `${o.site} ${o.address}` : `site ${o.site}`}</td>
        <td>${o.actor ?? ''}</td><td>${o.reason ?? ''}</td><td class="mono">${o.at}</td></tr>`)}</tbody></table></div>`}</section>`;
}

function Events({ data }) {
  return html`<section class="card" id="events"><h2>Recent events</h2>
    ${data.events.length === 0 ? html`<p class="muted">none yet</p>` : html`<ul class="events">${data.events.map((e) => html`
      <li><span class="mono muted">${e.at.slice(11, 19)}</span> <strong>${e.type}</strong> ${e.site}${e.address ? ` ${e.address}` : ''}: <span class="muted">${e.detail}</span></li>`)}</ul>`}</section>`;
}

function Explain({ token, epoch }) {
  const [q, setQ] = useState({ name: '', type: 'A', subnet: '' });
  const [asked, setAsked] = useState(null);
  const [out, setOut] = useState(null);
  useEffect(() => {
    if (!asked) return undefined;
    let live = true;
    const params = new URLSearchParams({ name: asked.name, type: asked.type, ...(asked.subnet ? { subnet: asked.subnet } : {}) });
    fetch(`/api/v1/explain?${params}`, { headers: authHeaders(token), cache: 'no-store' })
      .then(async (res) => (res.ok ? { ok: true, body: await res.json() } : { ok: false, body: await errorOf(res) }))
      .then((r) => { if (live) setOut(r); })
      .catch((err) => { if (live) setOut({ ok: false, body: { error: String(err.message ?? err) } }); });
    return () => { live = false; };
  // asked again whenever the health epoch moves: "what this instance answers now"
  }, [asked, token, epoch]);
  const submit = (e) => { e.preventDefault(); setAsked({ ...q }); };
  const x = out?.ok ? out.body : null;
  return html`<section class="card" id="explain"><h2>Why: what does this instance answer?</h2>
    <form class="row" onSubmit=${submit}>
      <input name="name" placeholder="www.gslb.example.com" aria-label="name" value=${q.name} onInput=${(e) => setQ({ ...q, name: e.currentTarget.value })} required />
      <select name="type" aria-label="type" value=${q.type} onChange=${(e) => setQ({ ...q, type: e.currentTarget.value })}><option>A</option><option>AAAA</option></select>
      <input name="subnet" placeholder="client subnet, e.g. 203.0.113.0/24" aria-label="client subnet" value=${q.subnet} onInput=${(e) => setQ({ ...q, subnet: e.currentTarget.value })} />
      <button type="submit" class="primary">Explain</button>
    </form>
    ${out && !out.ok ? html`<p class="notice error" data-explain-error>${out.body.error}</p>` : null}
    ${x ? html`<div data-explain-result>
      <p><strong>${x.name} ${x.type}</strong>${x.subnet ? ` from ${x.subnet}` : ''}: pool <strong>${x.pool}</strong> (${x.policy})${x.answeredBy !== x.pool ? `, answered by ${x.answeredBy}` : ''},
        ${' '}${x.failOpen ? html`<${Badge} kind="failopen">failing open (${x.allDown})<//>` : html`<${Badge} kind=${x.mode === 'normal' ? 'up' : 'warn'}>${x.mode}<//>`}</p>
      <p data-col="answer">${x.rcode}: ${x.answers.length ? html`<span class="mono">${x.answers.join(', ')}</span>` : 'no answers (NODATA)'}, TTL <strong>${x.ttl}</strong>, scope /${x.scope}</p>
      <div class="scroll"><table><thead><tr><th>site</th><th>address</th><th class="num">tier</th><th class="num">weight</th><th>eligible</th><th>reason</th></tr></thead>
        <tbody>${x.candidates.map((c) => html`<tr data-candidate=${`${c.site}|${c.address}`}>
          <td>${c.site}</td><td class="mono">${c.address}</td><td class="num">${c.tier}</td><td class="num">${c.weight}</td>
          <td>${c.selected ? html`<${Badge} kind="selected">selected<//>` : c.eligible ? html`<${Badge} kind="eligible">eligible<//>` : html`<${Badge} kind="off">no<//>`}</td>
          <td data-col="reason">${c.reason}${c.override ? html` <span class="muted">(${[c.override.actor, c.override.reason].filter(Boolean).join(': ')})</span>` : null}</td>
        </tr>`)}</tbody></table></div></div>` : null}
  </section>`;
}

function TokenForm({ label, id, value, onSave, hint }) {
  const [v, setV] = useState('');
  const submit = (e) => { e.preventDefault(); onSave(v.trim()); setV(''); };
  return html`<form class="row" onSubmit=${submit}>
    <label for=${id}>${label}</label>
    <input id=${id} type="password" autocomplete="off" value=${v} placeholder=${value ? '(set)' : hint} onInput=${(e) => setV(e.currentTarget.value)} />
    <button type="submit">${value && v === '' ? 'Forget' : 'Use'}</button>
  </form>`;
}

function ActionResult({ result, reason, retryForce }) {
  if (!result) return null;
  if (result.pending) return html`<p class="notice">${result.label}: sending&hellip;</p>`;
  if (result.ok) {
    return html`<p class="notice ok" data-action-result="ok">${result.label}: ${result.body.changed ? 'done' : 'nothing to change'}${result.body.forced ? ' (forced past the guard)' : ''}
      ${(result.body.warnings ?? []).map((w) => html`<br />${w}`)}</p>`;
  }
  const b = result.body;
  return html`<div class="notice error" data-action-result="error"><p>${result.label}: ${b.error}</p>
    ${b.breaches ? html`<ul>${b.breaches.map((x) => html`<li>pool ${x.pool}: needs ${x.minServing} serving, would have ${x.servingAfter} (now ${x.servingNow})</li>`)}</ul>
      <button type="button" class="danger" disabled=${reason.trim() === ''} onClick=${retryForce}>Retry with force</button>
      ${reason.trim() === '' ? html` <span>force needs a reason: type one above</span>` : null}` : null}</div>`;
}

function App() {
  const [config, setConfig] = useState(null);
  const [configError, setConfigError] = useState('');
  const [readToken, setReadToken] = useState(stored(READ_KEY));
  const [adminToken, setAdminToken] = useState(stored(ADMIN_KEY));
  const [reason, setReason] = useState('');
  const [result, setResult] = useState(null);
  const last = useRef(null);
  useSecondTick();

  useEffect(() => {
    fetch('/api/v1/status-config', { cache: 'no-store' }).then((r) => r.json()).then(setConfig).catch((e) => setConfigError(String(e.message ?? e)));
  }, []);

  // admin tokens read too; on a public instance no token is needed at all
  const token = readToken || adminToken;
  const enabled = config !== null && (config.public || token !== '');
  const { data, conn } = useLiveState(token, enabled);

  const act = useCallback(async (action, target, force = false) => {
    const why = reason.trim();
    const label = `${action} ${target.address ? `${target.site} ${target.address}` : `site ${target.site}`}${force ? ' (force)' : ''}`;
    last.current = { action, target };
    setResult({ pending: true, label });
    try {
      const res = await fetch(`/api/v1/admin/${action}`, {
        method: 'POST', cache: 'no-store',
        headers: { 'content-type': 'application/json', ...authHeaders(adminToken) },
        body: JSON.stringify({ ...target, ...(why ? { reason: why } : {}), ...(force ? { force: true } : {}) }),
      });
      setResult({ ok: res.ok, label, body: res.ok ? await res.json() : await errorOf(res) });
    } catch (err) {
      setResult({ ok: false, label, body: { error: String(err.message ?? err) } });
    }
  }, [adminToken, reason]);
  const retryForce = () => { if (last.current) void act(last.current.action, last.current.target, true); };

  const saveRead = (v) => { store(READ_KEY, v); setReadToken(v); };
  const saveAdmin = (v) => { store(ADMIN_KEY, v); setAdminToken(v); setResult(null); };
  const admin = adminToken !== '' && config?.admin === true;

  return html`
    <header class="top">
      <h1>gslb-dns <span class="muted" data-instance>${config?.instance ?? ''}</span></h1>
      <div class="row">
        <${Badge} kind=${conn.status === 'live' ? 'live' : conn.status === 'denied' ? 'error' : 'warn'} title=${conn.error}>
          <span data-conn=${conn.status}>${conn.status === 'live' ? 'live' : conn.status}</span><//>
        ${config?.public ? html`<span class="muted">public (no token needed to read)</span>` : null}
      </div>
    </header>
    ${configError ? html`<p class="notice error">cannot reach the API: ${configError}</p>` : null}
    ${config && (!config.public || config.admin || result) ? html`<section class="card" id="access"><div class="row">
      ${config && !config.public ? html`<${TokenForm} label="Read token" id="read-token" value=${readToken} hint="read or admin token" onSave=${saveRead} />` : null}
      ${config?.admin ? html`<${TokenForm} label="Admin token" id="admin-token" value=${adminToken} hint="unlocks the buttons" onSave=${saveAdmin} />` : null}
      ${admin ? html`<label for="reason">Reason</label><input id="reason" value=${reason} placeholder="why (recorded with the override)" onInput=${(e) => setReason(e.currentTarget.value)} />` : null}
    </div>
      ${conn.status === 'denied' ? html`<p class="notice error" data-denied>${conn.error}</p>` : null}
      ${config && !config.public && !token ? html`<p class="muted">Give a read token to see the state.</p>` : null}
      <${ActionResult} result=${result} reason=${reason} retryForce=${retryForce} />
    </section>` : null}
    ${data ? html`
      <div class="grid">
        <div><${Sites} data=${data} admin=${admin} act=${act} /><${Pools} data=${data} admin=${admin} act=${act} /></div>
        <div><${Explain} token=${token} epoch=${data.epoch} /><${Overrides} data=${data} /><${Events} data=${data} /></div>
      </div>` : null}`;
}

const root = document.getElementById('app');
// the "Loading" placeholder goes: preact renders into an empty element
root.replaceChildren();
render(html`<${App} />`, root);
