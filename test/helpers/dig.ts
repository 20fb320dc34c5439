import { execFile } from 'node:child_process';
import { promisify } from 'node:util';

const run = promisify(execFile);

/** A dig reply, parsed from dig's own text output. */
export interface DigReply {
  status: string;
  flags: Set<string>;
  /** OPT pseudo-section, when the reply had one */
  opt?: { version: number; udp: number; flags: string; ecs?: string };
  question: string[];
  answer: string[];
  authority: string[];
  additional: string[];
  raw: string;
}

/** Runs the real `dig` against 127.0.0.1:port (or `server`) and parses its output. */
export async function dig(port: number, args: string[], server = '127.0.0.1'): Promise<DigReply> {
  const { stdout } = await run('dig', [`@${server}`, '-p', String(port), '+tries=1', '+time=2', '+nostats', '+nocmd', ...args], {
    timeout: 15_000,
  });
  return parseDig(stdout);
}

/** Normalizes a record line: single spaces between fields. */
export function rr(line: string): string {
  return line.trim().split(/\s+/).join(' ');
}

/** Parses dig's default output format. */
export function parseDig(text: string): DigReply {
  const out: DigReply = { status: '', flags: new Set(), question: [], answer: [], authority: [], additional: [], raw: text };
  let section: 'question' | 'answer' | 'authority' | 'additional' | 'opt' | undefined;
  for (const line of text.split('\n')) {
    const head = /status: ([A-Z0-9]+)/.exec(line);
    if (line.startsWith(';; ->>HEADER<<-') && head) { out.status = head[1]!; continue; }
    const fl = /^;; flags:([^;]*);/.exec(line);
    if (fl) { out.flags = new Set(fl[1]!.trim().split(/\s+/).filter(Boolean)); continue; }
    if (line.startsWith(';; OPT PSEUDOSECTION')) { section = 'opt'; out.opt = { version: -1, udp: 0, flags: '' }; continue; }
    if (line.startsWith(';; QUESTION SECTION')) { section = 'question'; continue; }
    if (line.startsWith(';; ANSWER SECTION')) { section = 'answer'; continue; }
    if (line.startsWith(';; AUTHORITY SECTION')) { section = 'authority'; continue; }
    if (line.startsWith(';; ADDITIONAL SECTION')) { section = 'additional'; continue; }
    if (line.trim() === '') continue;
    if (section === 'opt') {
      const e = /^; EDNS: version: (\d+), flags:([^;]*); udp: (\d+)/.exec(line);
      if (e) { out.opt!.version = Number(e[1]); out.opt!.flags = e[2]!.trim(); out.opt!.udp = Number(e[3]); }
      const s = /^; CLIENT-SUBNET: (\S+)/.exec(line);
      if (s) out.opt!.ecs = s[1]!;
      continue;
    }
    if (section === 'question') { out.question.push(rr(line.replace(/^;/, ''))); continue; }
    if (section && !line.startsWith(';')) out[section].push(rr(line));
  }
  return out;
}
