/**
 * The API's connection caps and timeouts on real sockets: clients bind distinct loopback
 * addresses (127.0.0.x) to be distinct sources.
 */
import net from 'node:net';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { pino } from 'pino';
import type { FastifyInstance } from 'fastify';
import { createApiApp } from '../../../dns/http/app.js';
import type { ApiOptions } from '../../../dns/http/app.js';
import {
  connectionLimitsWarning, defaultConnectionLimits, DESCRIPTOR_RESERVE, readDescriptorLimit,
} from '../../../dns/http/connection-limit.js';
import { createClock, createFixtureState } from '../../helpers/gslb-state-fixture.js';

const LIMITS = `Limit                     Soft Limit           Hard Limit           Units
Max cpu time              unlimited            unlimited            seconds
Max open files            1024                 4096                 files
`;

describe('descriptor limit and default caps', () => {
  it('reads the soft limit of Max open files', () => {
    expect(readDescriptorLimit(LIMITS)).toBe(1024);
    expect(readDescriptorLimit(LIMITS.replace('1024  ', 'unlimited'))).toBeUndefined();
    expect(readDescriptorLimit('')).toBeUndefined();
    expect(readDescriptorLimit()).toBeGreaterThan(0);
  });

  it('derives caps below the limit with room for DNS, and warns when given caps do not fit', () => {
    for (const fd of [256, 1024, 4096, 65_536, 1_048_576]) {
      const l = defaultConnectionLimits(fd);
      expect(l.maxPerSource).toBeLessThanOrEqual(l.maxConnections);
      if (fd >= 1024) expect(connectionLimitsWarning(l, fd)).toBeUndefined();
    }
    expect(defaultConnectionLimits(1024)).toEqual({ maxConnections: 384, maxPerSource: 48 });
    expect(connectionLimitsWarning({ maxConnections: 1024, maxPerSource: 64 }, 1024)).toContain('ulimit -n is 1024');
    expect(connectionLimitsWarning({ maxConnections: 1024 - DESCRIPTOR_RESERVE, maxPerSource: 64 }, 1024)).toBeUndefined();
    expect(connectionLimitsWarning({ maxConnections: 1024, maxPerSource: 64 }, undefined)).toBeUndefined();
  });
});

const apps: FastifyInstance[] = [];
const sockets: net.Socket[] = [];

afterEach(async () => {
  for (const s of sockets.splice(0)) s.destroy();
  for (const a of apps.splice(0)) await a.close();
});

async function listen(over: Partial<ApiOptions>): Promise<{ app: FastifyInstance; port: number }> {
  const { state } = createFixtureState(createClock());
  const app = await createApiApp({
    state, adminToken: undefined, stateDir: undefined, instance: 'dns-a', logger: pino({ level: 'silent' }),
    dnsMetrics: () => ({ requests: [], responses: [], answers: [], fastPath: 0 }), ...over,
  });
  apps.push(app);
  await app.listen({ host: '127.0.0.1', port: 0 });
  return { app, port: (app.server.address() as AddressInfo).port };
}

interface Conn { socket: net.Socket; closed: Promise<void>; data: () => string }

function connect(port: number, from: string): Promise<Conn> {
  return new Promise((resolve, reject) => {
    const socket = net.connect({ port, host: '127.0.0.1', localAddress: from });
    sockets.push(socket);
    let data = '';
    socket.on('data', (d: Buffer) => { data += d.toString(); });
    socket.on('error', () => {});
    const closed = new Promise<void>((r) => socket.once('close', () => r()));
    socket.once('connect', () => resolve({ socket, closed, data: () => data }));
    socket.once('error', reject);
  });
}

/** A keep-alive GET /healthz on the socket; resolves once the answer is in (the server holds the socket). */
async function healthz(c: Conn): Promise<void> {
  const before = c.data().length;
  c.socket.write('GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n');
  while (!c.data().slice(before).includes('{"ok":true}')) {
    if (c.socket.destroyed) throw new Error('closed');
    await new Promise((r) => setTimeout(r, 5));
  }
}

const closedCount = (cs: Conn[]): number => cs.filter((c) => c.socket.destroyed).length;

/** Waits (without a deadline of its own: the test's timeout) until `pred` holds. */
async function until(pred: () => boolean): Promise<void> {
  while (!pred()) await new Promise((r) => setTimeout(r, 5));
}

async function metric(port: number, from: string, name: string): Promise<number> {
  const c = await connect(port, from);
  c.socket.write('GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n');
  await c.closed;
  const line = c.data().split('\n').find((l) => l.startsWith(`${name} `));
  return Number(line?.split(' ')[1]);
}

describe('connection caps', () => {
  it('closes a source over its cap at once, and others still get in', async () => {
    const { port } = await listen({ limits: { maxConnections: 20, maxPerSource: 3 } });
    const held = await Promise.all([1, 2, 3].map(() => connect(port, '127.0.0.2')));
    for (const c of held) await healthz(c);
    const over = await connect(port, '127.0.0.2');
    await over.closed;
    expect(over.data()).toBe('');
    await healthz(await connect(port, '127.0.0.3'));
    expect(await metric(port, '127.0.0.4', 'gslb_api_connections_refused_total{cap="per-source"}')).toBe(1);
  });

  it('when the total is full, evicts an idle socket of the heaviest source to let a new source in', async () => {
    const { port } = await listen({ limits: { maxConnections: 4, maxPerSource: 3 } });
    const heavy = await Promise.all([1, 2, 3].map(() => connect(port, '127.0.0.2')));
    for (const c of heavy) await healthz(c);
    const light = await connect(port, '127.0.0.3');
    await healthz(light);
    // full (4): a third source gets in, one of 127.0.0.2's sockets goes
    const fresh = await connect(port, '127.0.0.4');
    await healthz(fresh);
    await until(() => closedCount(heavy) === 1);
    expect(light.socket.destroyed).toBe(false);
    // 127.0.0.2 still holds 2: one more goes for 127.0.0.5; then every source holds 1 and a newcomer is refused
    await healthz(await connect(port, '127.0.0.5'));
    await until(() => closedCount(heavy) === 2);
    const refused = await connect(port, '127.0.0.6');
    await refused.closed;
    expect(refused.data()).toBe('');
  });
});

describe('timeouts', () => {
  it('closes a client stalled in its headers and one stalled in its body', async () => {
    const { port } = await listen({ timeouts: { headersMs: 200, requestMs: 400, idleMs: 5_000, keepAliveMs: 5_000 } });
    const inHeaders = await connect(port, '127.0.0.2');
    inHeaders.socket.write('POST /api/v1/reports HTTP/1.1\r\nHost: x\r\n');
    const inBody = await connect(port, '127.0.0.2');
    inBody.socket.write('POST /api/v1/reports HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{"site":');
    await Promise.all([inHeaders.closed, inBody.closed]);
    expect(inHeaders.data()).toMatch(/^HTTP\/1.1 408|^$/);
    expect(inBody.data()).toMatch(/^HTTP\/1.1 408|^$/);
  });
});
