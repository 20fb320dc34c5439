// The agent's status page: polls GET /status and renders it with preact + htm (no build step).
// Read-only on purpose: drains need the admin token and stay with curl. When the agent runs with
// --read-token-file, /status answers 401 and the page asks for a read token, kept in
// sessionStorage only and sent in the Authorization header (never in a URL).
import { h, render } from 'preact';
import { useEffect, useState } from 'preact/hooks';
import htm from 'htm';

const html = htm.bind(h);

const TOKEN_KEY = 'slb-agent.read-token';

/** How often the page asks the agent (its state is small); paused while the tab is hidden. */
const POLL_MS = 2000;
/** A request slower than this counts as the agent not answering. */
const TIMEOUT_MS = 5000;

/**
 * How far the agent's clock is ahead of the browser's, from the response's Date header. The page
 * often runs on another machine than the agent, and every time in /status is the agent's unix ms.
 * The header has whole seconds, so a difference under 2 s is taken as none (no jitter in "Xs ago").
 */
function clockSkew(res) {
  const agentNow = Date.parse(res.headers.get('date') ?? '');
  const skew = Number.isFinite(agentNow) ? agentNow - Date.now() : 0;
  return Math.abs(skew) < 2000 ? 0 : skew;
}

/** Polls /status; keeps the last good status when a request fails, so the page says how stale it is. */
function useAgentStatus(token) {
  const [state, setState] = useState({ status: null, updatedAt: null, skew: 0, error: null, needsToken: false });
  useEffect(() => {
    let timer;
    let inFlight = false;
    let stopped = false;
    const load = async () => {
      if (inFlight || stopped || document.hidden) return;
      inFlight = true;
      clearTimeout(timer);
      const ctrl = new AbortController();
      const deadline = setTimeout(() => ctrl.abort(), TIMEOUT_MS);
      try {
        const auth = token ? { authorization: `Bearer ${token}` } : {};
        const res = await fetch('/status', { signal: ctrl.signal, cache: 'no-store', headers: { accept: 'application/json', ...auth } });
        if (res.status === 401) {
          setState((s) => ({ ...s, needsToken: true, error: token ? 'the read token was refused' : null }));
        } else {
          if (!res.ok) throw new Error(`HTTP ${res.status}`);
          const status = await res.json();
          setState({ status, updatedAt: Date.now(), skew: clockSkew(res), error: null, needsToken: false });
        }
      } catch (err) {
        const error = err.name === 'AbortError' ? `no answer within ${TIMEOUT_MS / 1000} s` : err.message;
        setState((s) => ({ ...s, error }));
      } finally {
        clearTimeout(deadline);
        inFlight = false;
      }
      if (!stopped && !document.hidden) timer = setTimeout(load, POLL_MS);
    };
    // a hidden tab stops asking; showing it again asks at once
    const onVisibility = () => (document.hidden ? clearTimeout(timer) : load());
    document.addEventListener('visibilitychange', onVisibility);
    load();
    return () => {
      stopped = true;
      clearTimeout(timer);
      document.removeEventListener('visibilitychange', onVisibility);
    };
  }, [token]);
  return state;
}

/** The browser's clock, re-read every second so "Xs ago" moves between polls. */
function useNow() {
  const [now, setNow] = useState(Date.now());
  useEffect(() => {
    const t = setInterval(() => setNow(Date.now()), 1000);
    return () => clearInterval(t);
  }, []);
  return now;
}

function ago(now, at) {
  if (at === undefined || at === null) return '—';
  const s = Math.max(0, Math.round((now - at) / 1000));
  if (s < 120) return `${s}s ago`;
  if (s < 7200) return `${Math.round(s / 60)}m ago`;
  if (s < 172800) return `${Math.round(s / 3600)}h ago`;
  return `${Math.round(s / 86400)}d ago`;
}

const ms = (v) => (v === undefined || v === null ? '—' : `${v < 10 ? v.toFixed(2) : Math.round(v)} ms`);
const iso = (at) => (at ? new Date(at).toISOString() : '');

/** A coloured state word: up green, down red, drain amber, anything else grey. */
function State({ state, label }) {
  const known = ['up', 'down', 'drain'].includes(state) ? state : 'unknown';
  return html`<span class=${`state state-${known}`} data-state=${state}>${label ?? state}</span>`;
}

/** Columns of numbers: right-aligned, header and cells alike. */
const NUMERIC = new Set(['weight', 'healthy', 'connections', 'latency', 'checks pass/fail', 'flows active/total',
  'failures in a row', 'sent/failed', 'last RTT', 'smoothed RTT', 'sent/answered']);

function Table({ head, children, label }) {
  return html`<div class="scroll" role="region" aria-label=${label} tabindex="0">
    <table>
      <thead><tr>${head.map((c) => html`<th scope="col" class=${NUMERIC.has(c) ? 'num' : undefined}>${c}</th>`)}</tr></thead>
      <tbody>${children}</tbody>
    </table>
  </div>`;
}

function LastApply({ apply, now }) {
  if (!apply) return html`<span class="muted">not yet</span>`;
  return html`<span title=${iso(apply.at)}>${ago(now, apply.at)} </span>${apply.ok
    ? html`<span class="ok">ok</span>`
    : html`<span class="bad">error: ${apply.error ?? 'unknown'}</span>`}`;
}

function VipTable({ vips, now }) {
  return html`<${Table} label="VIPs" head=${['VIP', 'address', 'state', 'weight', 'healthy', 'connections', 'forwarder', 'last apply']}>
    ${vips.map((v) => html`<tr data-vip=${v.name}>
      <th scope="row">${v.name}${v.drained ? html` <span class="tag">drained</span>` : ''}</th>
      <td class="mono">${v.address}:${v.port}/${v.protocol}</td>
      <td><${State} state=${v.state} />${v.reason ? html`<div class="muted small">${v.reason}</div>` : ''}</td>
      <td class="num">${v.weight}%</td>
      <td class="num">${v.healthy}/${v.total}</td>
      <td class="num">${v.connections}</td>
      <td>${v.forwarder ? `${v.forwarder.mode} · ${v.forwarder.scheduler} (${v.forwarder.plane})` : html`<span class="muted">not forwarded</span>`}</td>
      <td>${v.forwarder ? html`<${LastApply} apply=${v.forwarder.lastApply} now=${now} />` : '—'}</td>
    </tr>`)}
  <//>`;
}

/** Which streak counts toward the next change: passes toward `rise` while down, failures toward `fall` while up. */
function Streak({ health, check }) {
  const toward = health.state === 'up' ? `fall ${health.failures}/${check.fall}` : `rise ${health.successes}/${check.rise}`;
  return html`<span title=${`passes in a row ${health.successes}, failures in a row ${health.failures}`}>${toward}</span>`;
}

function LastCheck({ health, now }) {
  const r = health.lastResult;
  if (!r) return html`<span class="muted">no check yet</span>`;
  const result = r.ok ? html`<span class="ok">pass</span>` : html`<span class="bad">fail: ${r.error ?? 'unknown'}</span>`;
  return html`<span title=${iso(health.lastCheckAt)}>${result}${' '}<span class="muted small">${ago(now, health.lastCheckAt)}</span></span>`;
}

function RealServers({ vip, now }) {
  const head = ['real server', 'health', 'last check', 'latency', 'streak', 'weight', 'drained', 'checks pass/fail'];
  if (vip.forwarder) head.push('flows active/total');
  return html`<section class="rs" data-rs-of=${vip.name}>
    <h3>${vip.name} <span class="muted small">real servers · ${vip.realServers[0]?.check.type ?? ''} check</span></h3>
    <${Table} label=${`real servers of ${vip.name}`} head=${head}>
      ${vip.realServers.map((r) => html`<tr data-rs=${`${r.address}:${r.port}`}>
        <th scope="row" class="mono">${r.address}:${r.port}${r.backup ? html` <span class="tag">backup</span>` : ''}</th>
        <td><${State} state=${r.drained ? 'drain' : r.health.state} label=${r.drained ? `${r.health.state}, drained` : r.health.state} /></td>
        <td><${LastCheck} health=${r.health} now=${now} />${r.health.lastError && r.health.lastResult?.ok
          ? html`<div class="muted small">last error: ${r.health.lastError}</div>` : ''}</td>
        <td class="num">${ms(r.health.lastLatencyMs)}</td>
        <td><${Streak} health=${r.health} check=${r.check} /></td>
        <td class="num">${r.weight}</td>
        <td>${r.drained ? 'yes' : 'no'}</td>
        <td class="num">${r.passes}/${r.fails}</td>
        ${vip.forwarder ? html`<td class="num">${r.forwarder ? `${r.forwarder.active}/${r.forwarder.total}` : '—'}</td>` : ''}
      </tr>`)}
    <//>
  </section>`;
}

function Delivery({ dns, now }) {
  return html`<${Table} label="report delivery" head=${['DNS instance', 'last result', 'failures in a row', 'sent/failed', 'last success', 'latency']}>
    ${dns.map((d) => {
      const failing = d.consecutiveFailures > 0;
      return html`<tr data-dns=${d.url}>
        <th scope="row" class="mono">${d.url}</th>
        <td>${failing
          ? html`<span class="bad">error: ${d.lastError ?? 'unknown'}</span>`
          : d.lastSuccessAt ? html`<span class="ok">ok${d.lastStatus ? ` (${d.lastStatus})` : ''}</span>` : html`<span class="muted">not sent yet</span>`}</td>
        <td class="num">${d.consecutiveFailures}</td>
        <td class="num">${d.sent}/${d.failed}</td>
        <td title=${iso(d.lastSuccessAt)}>${ago(now, d.lastSuccessAt)}</td>
        <td class="num">${ms(d.lastLatencyMs)}</td>
      </tr>`;
    })}
  <//>`;
}

function Pinger({ pinger, now }) {
  const rows = pinger.interfaces.flatMap((i) => i.peers.map((p) => ({ i, p })));
  return html`<${Table} label="pinger peers" head=${['interface', 'peer', 'MAC', 'answering', 'last RTT', 'smoothed RTT', 'sent/answered', 'last answer']}>
    ${rows.map(({ i, p }) => html`<tr data-peer=${`${i.name} ${p.address}`}>
      <td>${i.name} <span class="muted small">${i.method}</span></td>
      <th scope="row" class="mono">${p.address}${p.auto ? html` <span class="tag">auto</span>` : ''}</th>
      <td class="mono">${p.mac ?? '—'}</td>
      <td>${p.answering === null
        ? html`<${State} state="unknown" label="not yet" />`
        : html`<${State} state=${p.answering ? 'up' : 'down'} label=${p.answering ? 'yes' : 'no'} />`}
        ${p.lastError ? html`<div class="muted small">${p.lastError}</div>` : ''}</td>
      <td class="num">${ms(p.lastRttMs)}</td>
      <td class="num">${ms(p.srttMs)}</td>
      <td class="num">${p.sent}/${p.answered}</td>
      <td title=${iso(p.lastAnswerAt)}>${ago(now, p.lastAnswerAt)}</td>
    </tr>`)}
  <//>`;
}

function TokenForm({ onSave }) {
  const [v, setV] = useState('');
  const submit = (e) => { e.preventDefault(); onSave(v.trim()); setV(''); };
  return html`<form class="token" onSubmit=${submit}>
    <label for="read-token">Read token</label>
    <input id="read-token" type="password" autocomplete="off" value=${v} placeholder="read or admin token" onInput=${(e) => setV(e.currentTarget.value)} />
    <button type="submit">Use</button>
  </form>`;
}

function Page() {
  const [token, setToken] = useState(() => sessionStorage.getItem(TOKEN_KEY) ?? '');
  const saveToken = (t) => { sessionStorage.setItem(TOKEN_KEY, t); setToken(t); };
  const { status, updatedAt, skew, error, needsToken } = useAgentStatus(token);
  const now = useNow();
  // times in the status are the agent's; updatedAt is the browser's
  const agentNow = now + skew;
  return html`
    <header>
      <h1>slb-agent ${status ? html`<span class="mono">${status.agent}</span> <span class="muted">site ${status.site}</span>` : ''}</h1>
      <p class="meta" aria-live="polite">
        ${updatedAt ? html`<span id="updated">updated ${ago(now, updatedAt)}</span>` : 'waiting for the agent…'}
        ${status ? html` · started <span id="started" title=${iso(status.startedAt)}>${ago(agentNow, status.startedAt)}</span>` : ''}
        ${' · read-only'}
      </p>
    </header>
    ${needsToken ? html`<div class="banner" id="needs-token">This agent's status needs a read token (--read-token-file).${error ? ` ${error[0].toUpperCase()}${error.slice(1)}.` : ''}
      <${TokenForm} onSave=${saveToken} /></div>` : ''}
    ${error && !needsToken ? html`<div class="banner" role="alert" id="error">Cannot reach the agent: ${error}.
      ${status ? ` Showing what it said ${ago(now, updatedAt)}.` : ''}</div>` : ''}
    ${status ? html`<main>
      <section><h2>VIPs</h2><${VipTable} vips=${status.vips} now=${agentNow} /></section>
      <section><h2>Real servers</h2>${status.vips.map((v) => html`<${RealServers} vip=${v} now=${agentNow} />`)}</section>
      <section><h2>Report delivery</h2>${status.dns.length
        ? html`<${Delivery} dns=${status.dns} now=${agentNow} />` : html`<p class="muted">no DNS instances configured</p>`}</section>
      <section><h2>Pinger peers</h2>${status.pinger
        ? html`<${Pinger} pinger=${status.pinger} now=${agentNow} />` : html`<p class="muted">no pinger configured</p>`}</section>
    </main>` : ''}`;
}

const root = document.getElementById('app');
root.textContent = ''; // the "loading" line
render(html`<${Page} />`, root);
