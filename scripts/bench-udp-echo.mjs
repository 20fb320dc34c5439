#!/usr/bin/env node
// Benchmarks the UDP transport alone: a listener whose handler copies the query's header and
// question and appends one precomputed A record, driven by dnsperf, native batch vs node:dgram.
//
//   npm run build && node scripts/bench-udp-echo.mjs [seconds=5]
//
// The server runs in a child process pinned with `taskset -c 1`, dnsperf on `taskset -c 0`
// (-c 1 -q 100 -t 2). Bounded: each run lasts `seconds` plus a few seconds of start-up and drain.
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const transportJs = join(root, 'dist', 'dns', 'wire', 'udp-transport.js');

if (process.argv[2] === '--serve') await serve(process.argv[3] === 'dgram' ? 'dgram' : 'native');
else await main(Number(process.argv[2] ?? 5));

/** Child: listen on 127.0.0.1:0, print the port, print stats as JSON on SIGTERM. */
async function serve(kind) {
  const { listenUdp } = await import(transportJs);
  const answer = Buffer.from([
    0xc0, 0x0c, 0x00, 0x01, 0x00, 0x01, // name -> question, A, IN
    0x00, 0x00, 0x00, 0x1e, 0x00, 0x04, // TTL 30, RDLENGTH 4
    192, 0, 2, 1,
  ]);
  const handler = (q, off, len, out, outOff, outMax) => {
    if (len < 17) return 0;
    let p = off + 12;
    const end = off + len;
    while (p < end && q[p] !== 0) p += q[p] + 1; // qname labels (no compression in a question)
    p += 5; // root label, QTYPE, QCLASS
    if (p > end) return 0;
    const qEnd = p - off;
    if (qEnd + answer.length > outMax) return 0;
    q.copy(out, outOff, off, p);
    out[outOff + 2] = 0x84 | (q[off + 2] & 0x01); // QR AA, keep RD
    out[outOff + 3] = 0x00;
    out.writeUInt16BE(1, outOff + 4); // QDCOUNT
    out.writeUInt16BE(1, outOff + 6); // ANCOUNT
    out.writeUInt32BE(0, outOff + 8); // NSCOUNT, ARCOUNT (EDNS OPT dropped)
    answer.copy(out, outOff + qEnd);
    return qEnd + answer.length;
  };
  const listener = await listenUdp('127.0.0.1', 0, handler, { preferNative: kind === 'native' });
  process.stdout.write(`${JSON.stringify({ port: listener.port, kind: listener.kind })}\n`);
  const cpuStart = process.cpuUsage();
  process.on('SIGTERM', () => {
    const cpu = process.cpuUsage(cpuStart);
    const stats = { ...listener.stats(), cpuSeconds: (cpu.user + cpu.system) / 1e6 };
    void listener.close().then(() => {
      process.stdout.write(`${JSON.stringify({ stats })}\n`);
      process.exit(0);
    });
  });
}

function has(cmd) {
  return spawnSync('sh', ['-c', `command -v ${cmd}`], { stdio: 'ignore' }).status === 0;
}

async function main(seconds) {
  if (!Number.isFinite(seconds) || seconds <= 0 || seconds > 60) throw new Error('seconds must be in (0, 60]');
  if (!existsSync(transportJs)) {
    console.error(`missing ${transportJs}: run \`npm run build\` first`);
    process.exit(1);
  }
  if (!has('dnsperf')) {
    console.error('dnsperf is not installed');
    process.exit(1);
  }
  const pin = has('taskset');
  const dir = mkdtempSync(join(tmpdir(), 'bench-udp-'));
  const queries = join(dir, 'q.txt');
  writeFileSync(queries, 'www.gslb.example.test A\n');
  const results = [];
  try {
    for (const kind of ['native', 'dgram']) results.push(await runOne(kind, seconds, queries, pin));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  const rows = [
    ['', ...results.map((r) => r.kind)],
    ['queries/s', ...results.map((r) => r.qps ?? '?')],
    ['completed', ...results.map((r) => r.completed ?? '?')],
    ['lost', ...results.map((r) => r.lost ?? '?')],
    ['avg latency (s)', ...results.map((r) => r.latency ?? '?')],
    ['server received', ...results.map((r) => String(r.stats?.received ?? '?'))],
    ['server sent', ...results.map((r) => String(r.stats?.sent ?? '?'))],
    ['server dropped', ...results.map((r) => String(r.stats?.dropped ?? '?'))],
    ['server CPU (s)', ...results.map((r) => r.stats?.cpuSeconds?.toFixed(2) ?? '?')],
    // answers per second of server CPU: what one saturated core would sustain; steadier than
    // queries/s when other work shares the machine
    ['answers/CPU-s', ...results.map((r) => (r.stats?.cpuSeconds > 0 ? Math.round(r.stats.sent / r.stats.cpuSeconds) : '?'))],
  ];
  const widths = rows[0].map((_, c) => Math.max(...rows.map((r) => String(r[c]).length)));
  console.log(`\nUDP transport, ${seconds}s per run, dnsperf -c 1 -q 100 -t 2${pin ? ', server taskset -c 1, dnsperf taskset -c 0' : ' (taskset missing: unpinned)'}`);
  for (const r of rows) console.log(r.map((v, c) => String(v).padEnd(widths[c])).join('   '));
}

async function runOne(kind, seconds, queries, pin) {
  const nodeArgs = [fileURLToPath(import.meta.url), '--serve', kind];
  const child = pin
    ? spawn('taskset', ['-c', '1', process.execPath, ...nodeArgs], { stdio: ['ignore', 'pipe', 'inherit'] })
    : spawn(process.execPath, nodeArgs, { stdio: ['ignore', 'pipe', 'inherit'] });
  const killer = setTimeout(() => child.kill('SIGKILL'), (seconds + 20) * 1000);
  try {
    const lines = readLines(child);
    const hello = JSON.parse(await lines.next(10_000));
    if (hello.kind !== kind) console.error(`warning: asked for ${kind}, got ${hello.kind}`);
    const perfArgs = ['-s', '127.0.0.1', '-p', String(hello.port), '-d', queries, '-l', String(seconds), '-c', '1', '-q', '100', '-t', '2'];
    const perf = pin
      ? spawnSync('taskset', ['-c', '0', 'dnsperf', ...perfArgs], { encoding: 'utf8', timeout: (seconds + 10) * 1000 })
      : spawnSync('dnsperf', perfArgs, { encoding: 'utf8', timeout: (seconds + 10) * 1000 });
    const text = `${perf.stdout ?? ''}${perf.stderr ?? ''}`;
    const pick = (re) => re.exec(text)?.[1];
    child.kill('SIGTERM');
    let stats;
    try {
      stats = JSON.parse(await lines.next(5_000)).stats;
    } catch {
      stats = undefined;
    }
    return {
      kind: hello.kind,
      qps: pick(/Queries per second:\s+([\d.]+)/),
      completed: pick(/Queries completed:\s+(\d+)/),
      lost: pick(/Queries lost:\s+(\d+)/),
      latency: pick(/Average Latency \(s\):\s+([\d.]+)/),
      stats,
    };
  } finally {
    clearTimeout(killer);
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  }
}

/** Line reader over the child's stdout with a per-line timeout. */
function readLines(child) {
  let buf = '';
  const ready = [];
  const waiting = [];
  child.stdout.setEncoding('utf8');
  child.stdout.on('data', (chunk) => {
    buf += chunk;
    let nl;
    while ((nl = buf.indexOf('\n')) >= 0) {
      const line = buf.slice(0, nl);
      buf = buf.slice(nl + 1);
      const w = waiting.shift();
      if (w) w.resolve(line);
      else ready.push(line);
    }
  });
  child.on('exit', () => { for (const w of waiting.splice(0)) w.reject(new Error('server exited')); });
  return {
    next(ms) {
      const line = ready.shift();
      if (line !== undefined) return Promise.resolve(line);
      return new Promise((resolve, reject) => {
        const entry = {
          resolve: (l) => { clearTimeout(t); resolve(l); },
          reject: (e) => { clearTimeout(t); reject(e); },
        };
        const t = setTimeout(() => {
          waiting.splice(waiting.indexOf(entry), 1);
          reject(new Error('timed out waiting for the server'));
        }, ms);
        waiting.push(entry);
      });
    },
  };
}
