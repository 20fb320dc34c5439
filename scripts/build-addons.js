#!/usr/bin/env node
// Builds the native addons (binding.gyp: udp_batch for the DNS server's UDP path, pinger_sock for
// the pinger's ARP/ICMP sockets, reuseport_sock for the proxy's hand-over listeners) as the package's
// `install` script: in a checkout during `npm ci`, and when the packed tarball is installed. CI has no network beyond the npm registry and
// Debian, so node-gyp must not download Node's headers: when the system's node ships them
// (/usr/include/node, Debian's nodejs package) they are used. A failed build is not fatal: UDP
// falls back to node:dgram and the pinger to its udp method, each saying so when used.
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import path from 'node:path';

const args = ['rebuild'];
if (!process.env.npm_config_nodedir) {
  // node lives in <prefix>/bin; its headers, when installed, in <prefix>/include/node
  const prefix = path.resolve(path.dirname(process.execPath), '..');
  if (existsSync(path.join(prefix, 'include', 'node', 'node_api.h'))) args.push(`--nodedir=${prefix}`);
}
const r = spawnSync('node-gyp', args, { stdio: 'inherit' });
if (r.status !== 0) {
  console.error('gslb: building the native addons failed (udp_batch, pinger_sock, reuseport_sock); UDP falls back to node:dgram, the pinger offers only its udp method and the proxy listens without SO_REUSEPORT (no restart hand-over)');
}
