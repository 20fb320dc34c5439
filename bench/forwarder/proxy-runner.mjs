#!/usr/bin/env node
// Runs the userspace proxy data plane inside the namespace it is started in (bench/forwarder.mjs
// starts it with `ip netns exec <lb> node proxy-runner.mjs '<VipSpec JSON>'`): applies the one
// VipSpec, prints `ready`, and serves until SIGTERM/SIGINT, then closes the plane and exits 0.
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const { createProxyDataPlane } = await import(pathToFileURL(path.join(REPO, 'dist/slb-agent/forwarder/proxy/proxy.js')).href);

const spec = JSON.parse(process.argv[2] ?? 'null');
if (spec === null || typeof spec !== 'object') {
  process.stderr.write('usage: proxy-runner.mjs <VipSpec JSON>\n');
  process.exit(2);
}
const plane = createProxyDataPlane();
try {
  await plane.apply([spec]);
} catch (err) {
  process.stderr.write(`proxy-runner: apply failed: ${err?.stack ?? err}\n`);
  process.exit(1);
}
process.stdout.write('ready\n');
const stop = async () => {
  await plane.close().catch(() => undefined);
  process.exit(0);
};
process.once('SIGTERM', stop);
process.once('SIGINT', stop);
