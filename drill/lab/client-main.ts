/**
 * A lab client as real ones behave (started by DrillLab.startClient inside a region's client
 * namespace): resolves a name through its resolver, keeps the answer for its TTL, and fetches
 * `http://ADDRESS:PORT/` from the first address every interval; after the TTL it resolves again.
 * One JSON line per event on stdout: `{ t, event: 'resolve', addresses, ttl }` or
 * `{ t, event: 'resolve', error }`, `{ t, event: 'fetch', address, ok, body | error }`.
 *   --resolver ADDR  --name NAME  [--port 80]  [--interval-ms 200]
 * Exit codes: 0 on SIGTERM/SIGINT, 2 bad flags.
 */
import { Resolver } from 'node:dns/promises';
import { request } from 'node:http';
import { addressFamily } from '../../shared/ip.js';
import { parseArgs } from 'node:util';

const FETCH_TIMEOUT_MS = 1_000;

const emit = (o: Record<string, unknown>): void => { process.stdout.write(`${JSON.stringify({ t: Date.now(), ...o })}\n`); };

function get(address: string, port: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const req = request({ host: address, port, path: '/', agent: false, timeout: FETCH_TIMEOUT_MS }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => { body += d; });
      res.on('end', () => { if (res.statusCode === 200) resolve(body); else reject(new Error(`HTTP ${res.statusCode}`)); });
      res.on('error', reject);
    });
    req.on('timeout', () => { req.destroy(new Error(`timeout ${FETCH_TIMEOUT_MS} ms`)); });
    req.on('error', reject);
    req.end();
  });
}

async function main(argv: string[]): Promise<number> {
  let opts: { resolver: string; name: string; port: number; intervalMs: number };
  try {
    const { values } = parseArgs({ args: argv, options: { resolver: { type: 'string' }, name: { type: 'string' }, port: { type: 'string' }, 'interval-ms': { type: 'string' } }, strict: true });
    opts = { resolver: values.resolver ?? '', name: values.name ?? '', port: Number(values.port ?? 80), intervalMs: Number(values['interval-ms'] ?? 200) };
    if (addressFamily(opts.resolver) === 0 || opts.name === '' || !Number.isInteger(opts.port) || !(opts.intervalMs > 0)) throw new Error('want --resolver ADDR --name NAME [--port N] [--interval-ms N]');
  } catch (err) {
    process.stderr.write(`drill lab client: ${(err as Error).message}\n`);
    return 2;
  }
  const resolver = new Resolver({ timeout: 1_000, tries: 1 });
  resolver.setServers([opts.resolver]);
  let stop = false;
  const stopped = new Promise<void>((resolve) => {
    const on = (): void => { stop = true; resolve(); };
    process.once('SIGTERM', on);
    process.once('SIGINT', on);
  });
  let cached: { addresses: string[]; expires: number } | undefined;
  while (!stop) {
    const now = performance.now();
    if (cached === undefined || now >= cached.expires) {
      try {
        const records = await resolver.resolve4(opts.name, { ttl: true });
        const ttl = Math.min(...records.map((r) => r.ttl));
        cached = { addresses: records.map((r) => r.address), expires: now + ttl * 1000 };
        emit({ event: 'resolve', addresses: cached.addresses, ttl });
      } catch (err) {
        cached = undefined;
        emit({ event: 'resolve', error: (err as Error).message });
      }
    }
    const address = cached?.addresses[0];
    if (address !== undefined) {
      try {
        emit({ event: 'fetch', address, ok: true, body: (await get(address, opts.port)).trim() });
      } catch (err) {
        emit({ event: 'fetch', address, ok: false, error: (err as Error).message });
      }
    }
    await Promise.race([new Promise((r) => setTimeout(r, opts.intervalMs)), stopped]);
  }
  return 0;
}

process.exit(await main(process.argv.slice(2)));
