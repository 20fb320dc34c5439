import dgram from 'node:dgram';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startCli } from '../helpers/cli.js';
import type { Cli } from '../helpers/cli.js';
import { dig } from '../helpers/dig.js';
import { header, query } from '../helpers/packet.js';
import { FIXTURE_ZONES } from '../helpers/server.js';
import { localAddresses, udpNativeStatus } from '../../dns/wire/udp-transport.js';

/** Sends one query to host:port and collects every reply with the address it came from, for `ms`. */
function replies(host: string, port: number, ms = 700): Promise<{ from: string; id: number }[]> {
  return new Promise((resolve) => {
    const sock = dgram.createSocket(host.includes(':') ? 'udp6' : 'udp4');
    const got: { from: string; id: number }[] = [];
    sock.on('message', (m, r) => { got.push({ from: r.address, id: header(m).id }); });
    sock.on('error', () => { /* ICMP port unreachable: no reply */ });
    sock.send(query({ id: 0x5a5a }), port, host);
    setTimeout(() => { sock.close(); resolve(got); }, ms);
  });
}

// 127.0.0.3 is routed to lo (127.0.0.0/8) without being configured on it
const ON_LO = localAddresses(4).includes('127.0.0.3');

const transports = udpNativeStatus().available ? (['native', 'dgram'] as const) : (['dgram'] as const);

describe.each(transports)('UDP replies leave from the query\'s destination on a wildcard listen (%s)', (transport) => {
  let cli: Cli;
  let v4 = 0;
  let v6 = 0;
  beforeAll(async () => {
    cli = await startCli(['--zones', FIXTURE_ZONES, '--listen', '0.0.0.0:0', '--listen', '[::]:0'], { GSLB_UDP: transport });
    v4 = (await cli.waitLog((l) => l['msg'] === 'listening' && l['host'] === '0.0.0.0'))['udp'] as number;
    v6 = (await cli.waitLog((l) => l['msg'] === 'listening' && l['host'] === '::'))['udp'] as number;
    const kinds = cli.lines.filter((l) => l['msg'] === 'listening').map((l) => l['udpTransport']);
    expect(kinds).toEqual([transport, transport]);
  });
  afterAll(async () => { await cli.stop(); });

  it('answers dig at 127.0.0.1 and ::1 (dig rejects a reply from another address)', async () => {
    for (const [server, port] of [['127.0.0.1', v4], ['::1', v6]] as const) {
      const r = await dig(port, ['+norec', 'www.example.test', 'A'], server);
      expect(r.answer).toEqual(['www.example.test. 3600 IN A 192.0.2.80']);
      expect(r.raw).not.toContain('unexpected source');
    }
  });

  it('never answers a query to 127.0.0.3 from another address', async () => {
    const got = await replies('127.0.0.3', v4);
    for (const g of got) expect(g.from).toBe('127.0.0.3');
    if (transport === 'native' || ON_LO) {
      expect(got).toEqual([{ from: '127.0.0.3', id: 0x5a5a }]);
      const r = await dig(v4, ['+norec', 'www.example.test', 'A'], '127.0.0.3');
      expect(r.answer).toEqual(['www.example.test. 3600 IN A 192.0.2.80']);
    } else {
      // dgram binds the addresses configured on interfaces; 127.0.0.3 is not one: no reply at all
      expect(got).toEqual([]);
    }
  });
});
