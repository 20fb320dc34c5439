/**
 * A gslb-dns process for a benchmark, and the signed reports the benchmarks post to it as agents
 * would (the HMAC over `ts.body` of shared/protocol, written out so the bench needs no build step
 * beyond dist/dns/main.js).
 */
import { spawn } from 'node:child_process';
import { createHmac } from 'node:crypto';
import http from 'node:http';
import readline from 'node:readline';

/**
 * Spawns `node main args` in its own process group (`onSpawn` gets the child at once, so clean-up
 * can kill it whatever happens next); resolves with { udp, tcp, api } from its "listening" and
 * "api listening" log lines, rejects with the last 30 log lines on exit or after `startTimeoutMs`.
 * `wrap` (e.g. ['prlimit', '--nofile=1024:1024']) runs node under that command.
 */
export function startGslbDns(main, args, { startTimeoutMs, onSpawn, wrap = [] }) {
  const argv = [...wrap, process.execPath, main, ...args];
  const child = spawn(argv[0], argv.slice(1), { detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
  onSpawn(child);
  const tail = [];
  const keep = (line) => { tail.push(line); if (tail.length > 30) tail.shift(); };
  readline.createInterface({ input: child.stderr }).on('line', keep);
  return new Promise((resolve, reject) => {
    let udp;
    let tcp;
    let api;
    const timer = setTimeout(() => reject(new Error(`the server did not log its ports within ${startTimeoutMs} ms:\n${tail.join('\n')}`)), startTimeoutMs);
    child.once('exit', (code, sig) => { clearTimeout(timer); if (udp === undefined || api === undefined) reject(new Error(`the server exited (${code ?? sig}) during start-up:\n${tail.join('\n')}`)); });
    readline.createInterface({ input: child.stdout }).on('line', (line) => {
      keep(line);
      let j;
      try { j = JSON.parse(line); } catch { return; }
      if (j.msg === 'listening' && typeof j.udp === 'number') { udp = j.udp; tcp = j.tcp; }
      if (j.msg === 'api listening' && typeof j.port === 'number') api = j.port;
      if (udp !== undefined && api !== undefined) { clearTimeout(timer); resolve({ udp, tcp, api }); }
    });
  });
}

/** A report signed with the site's secret (not sent): { body, ts, sig }; members are { address, state }, weight 100. */
export function signReport(secret, { site, agent, seq, members }, ts = Date.now()) {
  const body = JSON.stringify({
    site, agent, seq, sentAt: new Date(ts).toISOString(),
    members: members.map((m) => ({ address: m.address, state: m.state, weight: 100 })),
  });
  return { body, ts, sig: `sha256=${createHmac('sha256', secret).update(`${ts}.`).update(body).digest('hex')}` };
}

/**
 * POSTs a signed report to 127.0.0.1:`apiPort`; resolves with { status, body, ms } (ms: the round
 * trip from the call), rejects when it cannot connect or after `timeoutMs`.
 */
export function postReport(apiPort, report, { agent, timeoutMs }) {
  const t0 = performance.now();
  return new Promise((resolve, reject) => {
    const req = http.request({
      agent, host: '127.0.0.1', port: apiPort, path: '/api/v1/reports', method: 'POST',
      headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(report.body), 'x-gslb-timestamp': String(report.ts), 'x-gslb-signature': report.sig },
    }, (res) => {
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode, ms: performance.now() - t0, body: Buffer.concat(chunks).toString('utf8') }));
    });
    req.setTimeout(timeoutMs, () => req.destroy(new Error(`report POST timed out after ${timeoutMs / 1000} s`)));
    req.on('error', reject);
    req.end(report.body);
  });
}
