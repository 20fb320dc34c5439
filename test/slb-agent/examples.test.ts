/**
 * The example files the README points operators to stay valid: the agent file passes
 * `slb-agent check`, and the standalone pinger file parses with the settings it documents.
 */
import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { loadAgentConfig } from '../../slb-agent/config.js';
import { loadPingerFile } from '../../slb-agent/pinger/file.js';

const AGENT_BIN = fileURLToPath(new URL('../../bin/slb-agent.js', import.meta.url));
const example = (name: string): string => fileURLToPath(new URL(`../../examples/${name}`, import.meta.url));

describe('examples/', () => {
  it('lb-dsr.yaml: a dsr VIP with maglev and persistence, and a pinger, as `slb-agent check` sees it', async () => {
    const config = await loadAgentConfig(example('lb-dsr.yaml'));
    expect(config.vips[0]!.forwarder).toMatchObject({ mode: 'dsr', interface: 'eth0', scheduler: 'maglev', persistenceMs: 300_000 });
    expect(config.pinger?.interfaces[0]).toMatchObject({ name: 'eth0', auto: true, peers: ['10.0.0.1'], intervalMs: 60_000 });
    const stdout = await new Promise<string>((resolve, reject) => {
      execFile(process.execPath, [AGENT_BIN, 'check', '--config', example('lb-dsr.yaml')], { timeout: 30_000 }, (err, out, errOut) => (err ? reject(new Error(`${err.message}: ${errOut}`)) : resolve(out)));
    });
    expect(stdout).toContain('forwarder dsr/maglev');
  });

  it('rs-pinger.yaml: ARP to the gateway and recent neighbours every 60 s', async () => {
    const f = await loadPingerFile(example('rs-pinger.yaml'));
    expect(f.pinger.interfaces[0]).toMatchObject({ method: 'arp', intervalMs: 60_000, jitter: 0.1, auto: true });
    expect(f.api).toEqual({ host: '127.0.0.1', port: 9102 });
  });
});
