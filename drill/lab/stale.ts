/**
 * Leftovers of drill labs whose process died without closing them (SIGKILL, a crash): their
 * namespaces and the programs still running inside them. Deleting a namespace does not stop its
 * processes, so they are killed first, by the PIDs the kernel lists for the namespace.
 */
import { readdir, rm } from 'node:fs/promises';
import path from 'node:path';
import { listNamespaces, pidAlive, run } from '../../lab/netns.js';

/** SIGKILLs every process inside namespace `ns` (none when it does not exist). */
export async function killNamespacePids(ns: string): Promise<void> {
  const { stdout } = await run(['ip', 'netns', 'pids', ns]).catch(() => ({ stdout: '' }));
  for (const pid of stdout.split(/\s+/).filter(Boolean).map(Number)) {
    if (Number.isInteger(pid) && pid > 1 && pid !== process.pid) {
      try { process.kill(pid, 'SIGKILL'); } catch { /* gone already */ }
    }
  }
}

/**
 * Removes the namespaces `<prefix>-<pid36>-...` of labs whose creating process is gone, with
 * every process in them, and their run directories under `dirPrefix`; those of live processes
 * (parallel test workers) are left alone. Resolves with what it removed.
 */
export async function removeStaleDrillLabs(prefix: string, dirPrefix?: string): Promise<string[]> {
  const re = new RegExp(`^${prefix}-([0-9a-z]+)-[0-9a-z]+-`);
  const removed: string[] = [];
  for (const name of await listNamespaces()) {
    const pid36 = re.exec(name)?.[1];
    if (pid36 === undefined || pidAlive(parseInt(pid36, 36))) continue;
    await killNamespacePids(name);
    await run(['ip', 'netns', 'del', name]).catch(() => undefined);
    removed.push(name);
  }
  if (dirPrefix !== undefined) {
    // run directories `<dirPrefix><pid36>-<seq>-XXXXXX`
    const parent = path.dirname(dirPrefix);
    const base = path.basename(dirPrefix);
    for (const entry of await readdir(parent).catch(() => [] as string[])) {
      const pid36 = entry.startsWith(base) ? /^([0-9a-z]+)-[0-9a-z]+-/.exec(entry.slice(base.length))?.[1] : undefined;
      if (pid36 === undefined || pidAlive(parseInt(pid36, 36))) continue;
      await rm(path.join(parent, entry), { recursive: true, force: true });
      removed.push(path.join(parent, entry));
    }
  }
  return removed;
}
