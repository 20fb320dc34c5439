/**
 * A real etcd cluster on 127.0.0.1 for tests and benchmarks: ports from the OS, data in a temp
 * dir, members killed and restarted by PID, everything removed by close().
 */
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer } from 'node:net';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';

export interface EtcdMember {
  readonly name: string;
  readonly clientPort: number;
  readonly peerPort: number;
  readonly dataDir: string;
  proc: ChildProcess | undefined;
  log: string;
}

export interface EtcdCluster {
  readonly members: readonly EtcdMember[];
  /** `127.0.0.1:P1,127.0.0.1:P2,...` for `--overrides etcd://<this>/PREFIX` */
  readonly endpoints: string;
  /** SIGKILLs member i and waits for it to exit */
  kill(i: number): Promise<void>;
  /** starts member i again on its data dir and waits until the cluster reports it healthy */
  restart(i: number): Promise<void>;
  /** starts every member that is not running (quorum needs them together) and waits until all are healthy */
  restartAll(): Promise<void>;
  /** kills every member and removes the data */
  close(): Promise<void>;
}

/** A port nothing listens on right now (bound and released: another process may take it, rarely). */
export async function freePort(): Promise<number> {
  const srv = createServer();
  await new Promise<void>((resolve, reject) => { srv.once('error', reject); srv.listen(0, '127.0.0.1', resolve); });
  const { port } = srv.address() as AddressInfo;
  await new Promise<void>((resolve) => srv.close(() => resolve()));
  return port;
}

async function healthy(port: number): Promise<boolean> {
  try {
    const res = await fetch(`http://127.0.0.1:${port}/health`, { signal: AbortSignal.timeout(1000) });
    const body = (await res.json()) as { health?: string };
    return res.status === 200 && body.health === 'true';
  } catch {
    return false;
  }
}

async function waitHealthy(m: EtcdMember, ms: number): Promise<void> {
  const deadline = Date.now() + ms;
  while (Date.now() < deadline) {
    if (m.proc?.exitCode !== null && m.proc?.exitCode !== undefined) throw new Error(`etcd ${m.name} exited ${m.proc.exitCode}: ${m.log.slice(-2000)}`);
    if (await healthy(m.clientPort)) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`etcd ${m.name} not healthy within ${ms} ms: ${m.log.slice(-2000)}`);
}

/**
 * Starts an n-member cluster (3 by default) and waits until every member is healthy. A port
 * found free may be taken by another process before etcd binds it: then the attempt is thrown
 * away and the cluster started again on new ports (3 attempts).
 */
export async function startEtcdCluster(n = 3): Promise<EtcdCluster> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await startEtcdClusterOnce(n);
    } catch (err) {
      if (attempt >= 3) throw err;
      process.stderr.write(`etcd test cluster: attempt ${attempt} failed, trying new ports: ${(err as Error).message.slice(0, 300)}\n`);
    }
  }
}

async function startEtcdClusterOnce(n: number): Promise<EtcdCluster> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'gslb-etcd-'));
  const members: EtcdMember[] = [];
  for (let i = 0; i < n; i++) {
    members.push({ name: `etcd${i}`, clientPort: await freePort(), peerPort: await freePort(), dataDir: path.join(dir, `etcd${i}`), proc: undefined, log: '' });
  }
  const initialCluster = members.map((m) => `${m.name}=http://127.0.0.1:${m.peerPort}`).join(',');
  const token = `gslb-test-${process.pid}-${path.basename(dir)}`;

  function spawnMember(m: EtcdMember, clusterState: 'new' | 'existing'): void {
    const args = [
      '--name', m.name, '--data-dir', m.dataDir,
      '--listen-client-urls', `http://127.0.0.1:${m.clientPort}`, '--advertise-client-urls', `http://127.0.0.1:${m.clientPort}`,
      '--listen-peer-urls', `http://127.0.0.1:${m.peerPort}`, '--initial-advertise-peer-urls', `http://127.0.0.1:${m.peerPort}`,
      '--initial-cluster', initialCluster, '--initial-cluster-state', clusterState, '--initial-cluster-token', token,
      // loopback: short heartbeats make leader loss noticed fast
      '--heartbeat-interval', '50', '--election-timeout', '500',
    ];
    const proc = spawn('etcd', args, { stdio: ['ignore', 'pipe', 'pipe'] });
    m.log = '';
    const keep = (d: Buffer): void => { m.log = (m.log + d.toString()).slice(-20_000); };
    proc.stdout!.on('data', keep);
    proc.stderr!.on('data', keep);
    m.proc = proc;
  }

  async function kill(i: number): Promise<void> {
    const m = members[i]!;
    const p = m.proc;
    if (!p || p.exitCode !== null || p.signalCode !== null) return;
    await new Promise<void>((resolve) => { p.once('exit', () => resolve()); p.kill('SIGKILL'); });
    m.proc = undefined;
  }

  // never leave etcd behind, even when the test process ends without afterAll
  const killAll = (): void => { for (const m of members) if (m.proc && m.proc.exitCode === null) m.proc.kill('SIGKILL'); };
  process.once('exit', killAll);

  const cluster: EtcdCluster = {
    members,
    endpoints: members.map((m) => `127.0.0.1:${m.clientPort}`).join(','),
    kill,
    async restart(i) {
      const m = members[i]!;
      await kill(i);
      spawnMember(m, 'existing');
      await waitHealthy(m, 20_000);
    },
    async restartAll() {
      const down = members.filter((m) => m.proc === undefined);
      for (const m of down) spawnMember(m, 'existing');
      for (const m of down) await waitHealthy(m, 20_000);
    },
    async close() {
      process.removeListener('exit', killAll);
      for (let i = 0; i < members.length; i++) await kill(i);
      await rm(dir, { recursive: true, force: true });
    },
  };
  try {
    for (const m of members) spawnMember(m, 'new');
    for (const m of members) await waitHealthy(m, 30_000);
  } catch (err) {
    await cluster.close();
    throw err;
  }
  return cluster;
}
