/**
 * HAProxy agent-check: connect to the real server's agent port and read one line of words,
 * e.g. `up 75%`, `drain`, `maint`, `down # disk full`. Words (comma or space separated):
 *
 *   word              ok     agent.state   meaning
 *   N%                -      -             weight, percent of the configured weight
 *   up | ready        true   up            operational / leave drain and maint
 *   drain             true   drain         healthy, but no new flows
 *   maint             false  maint         administratively out
 *   down|stopped|fail false  down          not operational
 *
 * Several state words: the most restrictive wins (down > maint > drain > up). Text after `#`
 * is the agent's reason. A line with no known word is a failure.
 */
import type { AgentCheckConfig } from '../../config.js';
import { openTcp } from './tcp.js';
import { systemClock } from '../../../shared/clock.js';
import type { Clock } from '../../../shared/clock.js';
import { describeError, runProbe } from './deadline.js';
import type { ProbeOutcome } from './deadline.js';
import type { CheckResult, Checker } from './types.js';

/** Agents answer in a line; anything longer is not an agent. */
const MAX_LINE = 1024;

type AgentState = NonNullable<NonNullable<CheckResult['agent']>['state']>;
const RANK: Record<AgentState, number> = { up: 0, drain: 1, maint: 2, down: 3 };
const WORDS: Record<string, AgentState> = { up: 'up', ready: 'up', drain: 'drain', maint: 'maint', down: 'down', stopped: 'down', fail: 'down' };

/** The outcome an agent's reply line stands for. */
export function parseAgentReply(line: string): ProbeOutcome {
  const hash = line.indexOf('#');
  const reason = hash >= 0 ? line.slice(hash + 1).trim() : '';
  const words = (hash >= 0 ? line.slice(0, hash) : line).trim().toLowerCase().split(/[\s,]+/).filter((w) => w !== '');
  let state: AgentState | undefined;
  let weightPct: number | undefined;
  const unknown: string[] = [];
  for (const w of words) {
    const pct = /^(\d+(?:\.\d+)?)%$/.exec(w);
    if (pct) { weightPct = Number(pct[1]); continue; }
    const s = WORDS[w];
    if (s === undefined) { unknown.push(w); continue; }
    if (state === undefined || RANK[s] > RANK[state]) state = s;
  }
  if (state === undefined && weightPct === undefined) {
    return { ok: false, error: words.length === 0 ? 'agent sent an empty reply' : `agent reply not understood: ${JSON.stringify(line.trim().slice(0, 100))}` };
  }
  const agent = { ...(weightPct !== undefined ? { weightPct } : {}), ...(state !== undefined ? { state } : {}) };
  const ok = state !== 'down' && state !== 'maint';
  if (ok) return { ok, agent };
  return { ok, agent, error: `agent says ${words.filter((w) => WORDS[w] === state).join(' ')}${reason === '' ? '' : `: ${reason}`}` };
}

/** A checker that reads one line from the agent port (always `check.port`). */
export function createAgentChecker(check: AgentCheckConfig, clock: Clock = systemClock): Checker {
  return (target, signal) => runProbe(clock, check.timeoutMs, signal, async (s): Promise<ProbeOutcome> => {
    let sock;
    try {
      sock = await openTcp(target.address, check.port, s);
    } catch (err) {
      return { ok: false, error: describeError(err) };
    }
    const conn = sock;
    return new Promise<ProbeOutcome>((resolve) => {
      let buf = '';
      let settled = false;
      const settle = (r: ProbeOutcome): void => {
        if (settled) return;
        settled = true;
        s.removeEventListener('abort', onAbort);
        conn.destroy();
        resolve(r);
      };
      const onAbort = (): void => settle({ ok: false, error: 'aborted' });
      s.addEventListener('abort', onAbort, { once: true });
      conn.setEncoding('latin1');
      conn.on('data', (chunk: string) => {
        buf += chunk;
        const nl = buf.search(/[\r\n]/);
        if (nl >= 0) settle(parseAgentReply(buf.slice(0, nl)));
        else if (buf.length > MAX_LINE) settle({ ok: false, error: `agent reply longer than ${MAX_LINE} bytes without a newline` });
      });
      // some agents close without a newline: what they sent is the line
      conn.on('end', () => settle(buf === '' ? { ok: false, error: 'agent closed the connection without a reply' } : parseAgentReply(buf)));
      conn.on('error', (err) => settle({ ok: false, error: describeError(err) }));
      conn.on('close', () => settle({ ok: false, error: 'connection closed' }));
    });
  });
}
