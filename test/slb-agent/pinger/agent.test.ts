/**
 * The agent runs its `pinger:` block: started and stopped with the agent, shown in /status and
 * /metrics. Method udp to 127.0.0.1 (loopback: a closed port answers with port unreachable).
 */
import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import { createAgent } from '../../../slb-agent/agent.js';
import type { AgentStatus } from '../../../slb-agent/agent.js';
import { createAgentApi } from '../../../slb-agent/api/app.js';
import { parseAgentConfig } from '../../../slb-agent/config.js';

const CONFIG = `site: tokyo
agent: lb1
secret: env:S
dns: [ "http://127.0.0.1:1" ]
vips:
  - name: web
    address: 127.0.0.1
    port: 80
    realServers:
      - { address: 127.0.0.11, port: 8080 }
pinger:
  interfaces:
    - name: lo
      peers: [127.0.0.1, 127.0.0.2]
      interval: 200ms
      timeout: 100ms
      method: udp
`;

describe('agent with a pinger block', () => {
  it('starts the pinger with the agent and reports it in /status and /metrics', async () => {
    const config = parseAgentConfig(CONFIG, 'site.yaml', { S: 'x' });
    const agent = createAgent({ config, logger: pino({ level: 'silent' }), createChecker: () => async () => ({ ok: true, latencyMs: 1 }) });
    const app = await createAgentApi({ agent });
    agent.start();
    try {
      let status: AgentStatus | undefined;
      // waits for the answers (bounded by a deadline, not a number of polls)
      const end = performance.now() + 30_000;
      while (performance.now() < end) {
        status = (await app.inject({ method: 'GET', url: '/status' })).json<AgentStatus>();
        if ((status.pinger?.interfaces[0]?.peers.every((p) => p.answered >= 1)) === true) break;
        await new Promise((r) => setTimeout(r, 50));
      }
      expect(status?.pinger?.interfaces[0]).toMatchObject({ name: 'lo', method: 'udp', intervalMs: 200 });
      for (const p of status?.pinger?.interfaces[0]?.peers ?? []) expect(p).toMatchObject({ answering: true });
      const metrics = (await app.inject({ method: 'GET', url: '/metrics' })).body;
      expect(metrics).toMatch(/slb_pinger_probes_answered_total\{interface="lo",peer="127\.0\.0\.2",method="udp"\} [1-9]/);
      expect(metrics).toContain('slb_agent_vip_state');
    } finally {
      await agent.stop();
      await app.close();
    }
    expect(agent.status().pinger?.running).toBe(false);
  });
});
