/**
 * Key rotation without an outage, with the real processes: gslb-dns lists a site's old and new
 * keys (`secret: [new, old]`) and accepts a report signed with either; an agent with a list signs
 * with the first. Short keys load with a warning naming the field.
 */
import { writeFile, readFile } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { cliScope, startCli } from '../helpers/cli.js';
import { echoBackend, startAgent, writeZones } from '../helpers/agent-site.js';
import type { AgentProc, EchoBackend } from '../helpers/agent-site.js';

const scope = cliScope('gslb-rotate-');
const KEYS = { KEY_OLD: 'o'.repeat(40), KEY_NEW: 'n'.repeat(40), KEY_WRONG: 'wrong', SHORT: 'short' };
const agents: AgentProc[] = [];
let backend: EchoBackend | undefined;

afterAll(async () => {
  await Promise.all(agents.map((a) => a.stop()));
  await backend?.stop();
});

function agentYaml(name: string, secret: string, dnsApi: number, rsPort: number): string {
  return [
    'site: tokyo', `agent: ${name}`, `secret: ${secret}`, `dns: [ "http://127.0.0.1:${dnsApi}" ]`,
    'report: { interval: 200ms, timeout: 1s }', 'api: 127.0.0.1:0', 'vips:', '  - name: web', '    address: 192.0.2.1',
    '    port: 80', '    check: { type: tcp, interval: 200ms, timeout: 100ms, rise: 1, fall: 1 }',
    '    realServers:', `      - { address: 127.0.0.1, port: ${rsPort} }`, '',
  ].join('\n');
}

describe('secret lists', () => {
  it('gslb-dns verifies against every listed key; the agent signs with its first', async () => {
    const dir = await scope.tempDir();
    const zones = await writeZones(dir, 'rotate.test', { www: '192.0.2.1' });
    const poolFile = path.join(zones, 'rotate.test.gslb.yaml');
    const pools = (await readFile(poolFile, 'utf8'))
      .replace('secret: env:GSLB_SECRET_TOKYO', 'secret: [env:KEY_NEW, env:KEY_OLD]')
      .replace('pools:', '  osaka: { secret: env:SHORT }\npools:');
    await writeFile(poolFile, pools);
    const dns = scope.track(await startCli(['--zones', zones, '--listen', '127.0.0.1:0', '--api', '127.0.0.1:0', '--log-level', 'debug'], KEYS));
    expect(dns.lines.some((l) => l['level'] === 40 && String(l['msg']).endsWith('sites.osaka.secret: secret env:SHORT is shorter than 32 bytes (5): use e.g. `openssl rand -hex 32`'))).toBe(true);

    backend = await echoBackend('rs1');
    const start = async (name: string, secret: string): Promise<AgentProc> => {
      const file = path.join(dir, `${name}.yaml`);
      await writeFile(file, agentYaml(name, secret, dns.apiPort, backend!.port));
      const a = await startAgent(file, KEYS);
      agents.push(a);
      return a;
    };
    await start('lb-old', 'env:KEY_OLD');
    await start('lb-new', '[env:KEY_NEW, env:KEY_OLD]');
    const wrong = await start('lb-wrong', '[env:KEY_WRONG, env:KEY_OLD]');
    expect(wrong.lines.some((l) => l['level'] === 40 && /:3: secret\[0\]: secret env:KEY_WRONG is shorter than 32 bytes \(5\)/.test(String(l['msg'])))).toBe(true);

    const accepted = (agent: string) => (l: Record<string, unknown>): boolean => l['msg'] === 'report accepted' && l['agent'] === agent;
    await dns.waitLog(accepted('lb-old'), 20_000);
    await dns.waitLog(accepted('lb-new'), 20_000);
    // the signature is checked before the body is read, so the refusal names the site, not the agent
    const rejected = await dns.waitLog((l) => l['msg'] === 'report rejected', 20_000);
    expect(rejected).toMatchObject({ site: 'tokyo', reason: 'bad signature' });
    expect(dns.lines.some(accepted('lb-wrong'))).toBe(false);
  });
});
