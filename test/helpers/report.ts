import { signReport } from '../../shared/protocol/signature.js';

export const SECRETS = { tokyo: 'tokyo-secret-0123456789abcdef-0123456789', osaka: 'osaka-secret-0123456789abcdef-0123456789' } as const;
export const SECRET_ENV = { GSLB_SECRET_TOKYO: SECRETS.tokyo, GSLB_SECRET_OSAKA: SECRETS.osaka };

export interface MemberReport {
  address: string;
  state: 'up' | 'down' | 'drain';
  weight?: number;
  connections?: number;
  capacity?: number;
}

let seq = Date.now();

/** POSTs a signed report as an slb-agent would; returns status and body. */
export async function postReport(apiPort: number, site: string, members: MemberReport[], opts: {
  secret?: string; seq?: number; timestamp?: number; agent?: string; signature?: string;
} = {}): Promise<{ status: number; body: Record<string, unknown> }> {
  const body = JSON.stringify({
    site, agent: opts.agent ?? 'lb1', seq: opts.seq ?? ++seq, sentAt: new Date().toISOString(),
    members: members.map((m) => ({ weight: 100, connections: 0, capacity: 1000, healthy: 1, total: 1, ...m })),
  });
  const ts = String(opts.timestamp ?? Date.now());
  const secret = opts.secret ?? (SECRETS as Record<string, string>)[site] ?? 'none';
  const res = await fetch(`http://127.0.0.1:${apiPort}/api/v1/reports`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'x-gslb-timestamp': ts, 'x-gslb-signature': opts.signature ?? signReport(secret, ts, body) },
    body,
  });
  return { status: res.status, body: (await res.json()) as Record<string, unknown> };
}

/** The next sequence number the helper would use (for replay tests). */
export function nextSeq(): number {
  return ++seq;
}
