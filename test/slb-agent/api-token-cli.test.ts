/**
 * The real slb-agent process and its API tokens: without --admin-token-file a drain is refused
 * with 403 naming the flag; with it, only the token's holder drains. An API beyond loopback
 * without --read-token-file is warned about at start.
 */
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { cliScope } from '../helpers/cli.js';
import { echoBackend, startAgent } from '../helpers/agent-site.js';
import type { AgentProc, EchoBackend } from '../helpers/agent-site.js';

const scope = cliScope('agent-token-');
const ENV = { S: 's'.repeat(32) };
const TOKEN = 'agent-cli-admin-token-0123456789';
const agents: AgentProc[] = [];
let backend: EchoBackend | undefined;

afterAll(async () => {
  await Promise.all(agents.map((a) => a.stop()));
  await backend?.stop();
});

async function start(api: string, flags: string[]): Promise<AgentProc> {
  backend ??= await echoBackend('rs1');
  const dir = await scope.tempDir();
  const file = path.join(dir, 'site.yaml');
  await writeFile(file, [
    'site: tokyo', 'agent: lb1', 'secret: env:S', 'dns: [ "http://127.0.0.1:1" ]', `api: ${api}`, 'vips:', '  - name: web',
    '    address: 192.0.2.1', '    port: 80', '    check: { type: tcp, interval: 1s, timeout: 500ms }',
    '    realServers:', `      - { address: 127.0.0.1, port: ${backend.port} }`, '',
  ].join('\n'));
  const tokenFlags = await Promise.all(flags.map(async (f) => {
    const t = path.join(dir, `${f}.token`);
    await writeFile(t, `${TOKEN}\n`);
    return [`--${f}`, t];
  }));
  const a = await startAgent(file, ENV, ['--run-dir', dir, ...tokenFlags.flat()]);
  agents.push(a);
  return a;
}

const drain = (a: AgentProc, headers: Record<string, string> = {}): Promise<Response> => fetch(`http://127.0.0.1:${a.apiPort}/vips/drain`, {
  method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body: JSON.stringify({ vip: 'web' }),
});

describe('slb-agent API tokens (process)', () => {
  it('without --admin-token-file: a drain is 403 naming the flag; beyond loopback without a read token: a warning', async () => {
    const a = await start('0.0.0.0:0', []);
    const r = await drain(a, { authorization: `Bearer ${TOKEN}` });
    expect(r.status).toBe(403);
    expect(((await r.json()) as { error: string }).error).toContain('--admin-token-file');
    expect(a.lines.some((l) => l['level'] === 40 && String(l['msg']).includes('without --read-token-file'))).toBe(true);
  });

  it('with --admin-token-file: 401 without the token, 200 with it; /status needs the read token', async () => {
    const a = await start('127.0.0.1:0', ['admin-token-file', 'read-token-file']);
    expect((await drain(a)).status).toBe(401);
    expect((await drain(a, { authorization: 'Bearer not-the-token-0123456789' })).status).toBe(401);
    expect((await drain(a, { authorization: `Bearer ${TOKEN}` })).status).toBe(200);
    expect((await fetch(`http://127.0.0.1:${a.apiPort}/status`)).status).toBe(401);
    expect((await fetch(`http://127.0.0.1:${a.apiPort}/status`, { headers: { authorization: `Bearer ${TOKEN}` } })).status).toBe(200);
    expect(a.lines.some((l) => String(l['msg']).includes('without --read-token-file'))).toBe(false);
  });
});
