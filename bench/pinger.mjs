// bench:pinger: the MAC-keepalive pinger's cost with PEERS answering peers at a 1 s interval.
//
// Lab: one bridge; the pinger in its own namespace; NS peer namespaces holding PEERS addresses
// between them (`ip addr add` on one interface answers ARP for every address on it). The pinger
// runs standalone (`slb-agent pinger --config`) for DURATION seconds after a warm-up round; CPU is
// utime+stime from /proc/<pid>/stat over that window, the answered ratio is from its /status.
// Prints numbers; asserts nothing. Needs root (network namespaces).
//
//   PEERS (1000), NS (4), DURATION (20 s), METHOD (arp), INTERVAL (1s)
import { readFileSync, readdirSync, writeFileSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { createLab } from '../dist/lab/netns.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const PEERS = Number(process.env.PEERS ?? 1000);
const NS = Math.max(1, Math.min(PEERS, Number(process.env.NS ?? 4)));
const DURATION = Number(process.env.DURATION ?? 20);
const METHOD = process.env.METHOD ?? 'arp';
const INTERVAL = process.env.INTERVAL ?? '1s';
const CLK_TCK = 100; // USER_HZ on Linux
const TARGET_CPU = 5;

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const peerAddr = (i) => `10.77.${Math.floor(i / 250)}.${(i % 250) + 1}`;

function cpuTicks(pid) {
  // fields after the ")" of comm: state is field 3; utime 14, stime 15
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return Number(f[11]) + Number(f[12]);
}
const rssMb = (pid) => Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? 0) / 1024;
function children(pid) {
  let n = [];
  for (const t of readdirSync(`/proc/${pid}/task`)) {
    n = n.concat(readFileSync(`/proc/${pid}/task/${t}/children`, 'utf8').trim().split(/\s+/).filter(Boolean).map(Number));
  }
  return n;
}

if (process.getuid?.() !== 0) { console.error('bench:pinger needs root (network namespaces)'); process.exit(1); }
const dir = mkdtempSync(path.join(tmpdir(), 'bench-pinger-'));
const lab = await createLab({ prefix: 'pgb' });
let proc;
try {
  await lab.addBridge('br0');
  await lab.addNamespace('pinger');
  await lab.attach('pinger', 'br0', { address: '10.77.255.1/16' });
  const per = Math.ceil(PEERS / NS);
  for (let k = 0; k < NS; k++) {
    const role = `peer${k}`;
    await lab.addNamespace(role);
    await lab.attach(role, 'br0');
    const lines = [];
    for (let i = k * per; i < Math.min(PEERS, (k + 1) * per); i++) lines.push(`addr add ${peerAddr(i)}/16 dev eth0`);
    await lab.exec(role, ['ip', '-batch', '-'], { input: `${lines.join('\n')}\n`, timeoutMs: 60_000 });
  }
  const peers = Array.from({ length: PEERS }, (_, i) => peerAddr(i));
  const file = path.join(dir, 'pinger.yaml');
  writeFileSync(file, `pinger:\n  interfaces:\n    - name: eth0\n      peers: [${peers.join(', ')}]\n      interval: ${INTERVAL}\n      timeout: 500ms\n      method: ${METHOD}\napi: 127.0.0.1:9102\n`);

  proc = lab.spawn('pinger', [process.execPath, path.join(ROOT, 'bin/slb-agent.js'), 'pinger', '--config', file, '--log-level', 'warn']);
  let log = '';
  proc.stdout.on('data', (d) => { log += d; });
  proc.stderr.on('data', (d) => { log += d; });
  const status = async () => JSON.parse((await lab.exec('pinger', ['curl', '-sf', 'http://127.0.0.1:9102/status'])).stdout).pinger;
  let st;
  for (let i = 0; i < 100 && !st; i++) { await sleep(100); st = await status().catch(() => undefined); if (proc.exitCode !== null) break; }
  if (!st) throw new Error(`pinger did not come up: ${log}`);
  // `ip netns exec` execs the command in place: the child's pid is node's
  const pid = proc.pid;
  const comm = readFileSync(`/proc/${pid}/comm`, 'utf8').trim();
  await sleep(2000); // one warm-up round: first broadcasts, MACs learned

  const sum = (s) => s.interfaces[0].peers.reduce((a, p) => ({ sent: a.sent + p.sent, answered: a.answered + p.answered }), { sent: 0, answered: 0 });
  const before = sum(await status());
  const t0 = process.hrtime.bigint();
  const c0 = cpuTicks(pid);
  let maxChildren = 0;
  for (let s = 0; s < DURATION; s++) { await sleep(1000); maxChildren = Math.max(maxChildren, children(pid).length); }
  const c1 = cpuTicks(pid);
  const secs = Number(process.hrtime.bigint() - t0) / 1e9;
  const rss = rssMb(pid);
  const endStatus = await status();
  const after = sum(endStatus);
  const notAnswering = endStatus.interfaces[0].peers.filter((p) => p.answering === false).length;
  const sent = after.sent - before.sent;
  const answered = after.answered - before.answered;
  const cpu = ((c1 - c0) / CLK_TCK / secs) * 100;

  console.log(`pinger bench: ${PEERS} peers in ${NS} namespaces, method ${METHOD}, interval ${INTERVAL}, ${secs.toFixed(1)} s measured (process ${comm} pid ${pid})`);
  console.log(`  probes sent          ${sent} (${(sent / secs).toFixed(0)}/s)`);
  console.log(`  answered             ${answered} (${((answered / Math.max(1, sent)) * 100).toFixed(2)} %); peers not answering at the end: ${notAnswering}`);
  console.log(`  CPU                  ${cpu.toFixed(2)} % of one core (target: < ${TARGET_CPU} % for 1,000 peers at 1 s) -> ${cpu < TARGET_CPU ? 'within target' : 'ABOVE target'}`);
  console.log(`  RSS                  ${rss.toFixed(1)} MB`);
  console.log(`  child processes      ${maxChildren} (max seen, sampled every second)`);
} finally {
  if (proc && proc.exitCode === null) proc.kill('SIGTERM');
  await lab.close();
  rmSync(dir, { recursive: true, force: true });
}
