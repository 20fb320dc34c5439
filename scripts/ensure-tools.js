#!/usr/bin/env node
// Checks that the external tools the tests need are installed (run by `npm test` via "pretest").
//
// Missing tools: as root, installs their Debian packages with apt-get and checks again;
// otherwise prints what is missing and how to install it, and exits 1. Never skips silently.
//
//   node scripts/ensure-tools.js                  check (and install as root)
//   node scripts/ensure-tools.js --list-packages  print the Debian packages, one a line (.ci/run)
import { spawnSync } from 'node:child_process';
import { accessSync, constants, existsSync, readdirSync, statSync } from 'node:fs';
import { delimiter, join } from 'node:path';

/** Tool the tests run -> Debian (12) package that provides it. Add new tools here. */
const TOOLS = [
  { tool: 'dig', pkg: 'bind9-dnsutils' },
  { tool: 'dnsperf', pkg: 'dnsperf' },
  { tool: 'nft', pkg: 'nftables' },
  { tool: 'ip', pkg: 'iproute2' },
  { tool: 'tcpdump', pkg: 'tcpdump' },
  { tool: 'ping', pkg: 'iputils-ping' },
  { tool: 'arping', pkg: 'arping' },
  { tool: 'haproxy', pkg: 'haproxy' },
  { tool: 'wrk', pkg: 'wrk' },
  { tool: 'conntrack', pkg: 'conntrack' },
  // test/demo: `npm start` is checked with the commands its "try this" block prints
  { tool: 'curl', pkg: 'curl' },
  // shared operator overrides: the tests start a 3-member etcd cluster on loopback
  { tool: 'etcd', pkg: 'etcd-server' },
  { tool: 'etcdctl', pkg: 'etcd-client' },
  // the status pages are tested in a real browser, driven by playwright-core
  { tool: 'chromium', pkg: 'chromium' },
  // the drill lab (test/lab/drill-lab.test.ts): the parent zone on Knot, an unbound resolver per region
  { tool: 'knotd', pkg: 'knot' },
  { tool: 'unbound', pkg: 'unbound' },
  // peer GSLB servers in the drill lab (test/lab/drill-peers.test.ts, test/drill/lab-peers.test.ts);
  // pdns_server loads the bind backend from pdns-backend-bind, which has no command of its own
  { tool: 'pdns_server', pkg: 'pdns-server' },
  // only recommended by pdns-server (and CI installs without recommends): a module, not a command
  { tool: 'pdns bind backend', pkg: 'pdns-backend-bind', lib: 'pdns/libbindbackend.so' },
  { tool: 'gdnsd', pkg: 'gdnsd' },
  // DNSSEC (test/dns/dnssec): BIND's validator and key tools, and DNSViz, check the signed answers
  { tool: 'delv', pkg: 'bind9-dnsutils' },
  { tool: 'dnssec-keygen', pkg: 'bind9-utils' },
  { tool: 'dnssec-dsfromkey', pkg: 'bind9-utils' },
  { tool: 'dnsviz', pkg: 'dnsviz' },
  // the udp_batch addon is compiled by `npm ci` (node-gyp); .ci/run installs these before it
  { tool: 'g++', pkg: 'g++' },
  { tool: 'make', pkg: 'make' },
  { tool: 'python3', pkg: 'python3' },
  // test/deploy/systemd.test.ts: the units are checked with systemd-analyze verify; the agent runs as
  // nobody with only the unit's capabilities through setpriv (capsh decodes /proc/PID/status)
  { tool: 'systemd-analyze', pkg: 'systemd' },
  { tool: 'setpriv', pkg: 'util-linux' },
  { tool: 'capsh', pkg: 'libcap2-bin' },
];

// sbin directories are often missing from a non-root PATH although the tools are installed there
const EXTRA_DIRS = ['/usr/local/sbin', '/usr/sbin', '/sbin'];

const say = (msg) => console.log(`ensure-tools: ${msg}`);

function isExecutable(file) {
  try {
    accessSync(file, constants.X_OK);
    return statSync(file).isFile();
  } catch {
    return false;
  }
}

/** Returns { onPath, path } for the first executable named `tool`, or null. */
function locate(tool) {
  const pathDirs = (process.env.PATH ?? '').split(delimiter).filter(Boolean);
  for (const dir of pathDirs) {
    if (isExecutable(join(dir, tool))) return { onPath: true, path: join(dir, tool) };
  }
  for (const dir of EXTRA_DIRS) {
    if (isExecutable(join(dir, tool))) return { onPath: false, path: join(dir, tool) };
  }
  return null;
}

/** A shared library under /usr/lib or its multiarch directory (e.g. /usr/lib/x86_64-linux-gnu). */
function locateLib(lib) {
  const dirs = ['/usr/lib', ...readdirSync('/usr/lib', { withFileTypes: true }).filter((d) => d.isDirectory() && d.name.endsWith('-linux-gnu')).map((d) => join('/usr/lib', d.name))];
  const found = dirs.map((d) => join(d, lib)).find((f) => existsSync(f));
  return found === undefined ? null : { onPath: true, path: found };
}

function missingTools() {
  const missing = [];
  for (const entry of TOOLS) {
    const found = entry.lib !== undefined ? locateLib(entry.lib) : locate(entry.tool);
    if (found === null) missing.push(entry);
    else if (!found.onPath) say(`note: ${entry.tool} found at ${found.path}, which is not on PATH`);
  }
  return missing;
}

function packagesOf(entries) {
  return [...new Set(entries.map((e) => e.pkg))];
}

function describe(entries) {
  return entries.map((e) => `${e.tool} (package ${e.pkg})`).join(', ');
}

function run(cmd, args, env) {
  say(`running: ${[cmd, ...args].join(' ')}`);
  const r = spawnSync(cmd, args, { stdio: 'inherit', env: { ...process.env, ...env } });
  if (r.error) {
    say(`could not run ${cmd}: ${r.error.message}`);
    return false;
  }
  if (r.status !== 0) {
    say(`${cmd} exited with ${r.status ?? `signal ${r.signal}`}`);
    return false;
  }
  return true;
}

function main() {
  if (process.argv.includes('--list-packages')) {
    console.log(packagesOf(TOOLS).join('\n'));
    return 0;
  }

  let missing = missingTools();
  if (missing.length === 0) {
    say(`ok: ${TOOLS.map((e) => e.tool).join(', ')}`);
    return 0;
  }

  const pkgs = packagesOf(missing);
  const installCmd = `apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends ${pkgs.join(' ')}`;
  say(`missing: ${describe(missing)}`);

  const isRoot = typeof process.getuid === 'function' && process.getuid() === 0;
  if (!isRoot) {
    say('not running as root, so not installing them. Install them with:');
    console.log(`  sudo sh -c '${installCmd}'`);
    return 1;
  }
  if (locate('apt-get') === null) {
    say(`apt-get not found; install these packages (Debian names) with your package manager: ${pkgs.join(' ')}`);
    return 1;
  }

  say(`running as root: installing ${pkgs.join(' ')}`);
  const env = { DEBIAN_FRONTEND: 'noninteractive' };
  const ok =
    run('apt-get', ['update'], env) &&
    run('apt-get', ['install', '-y', '--no-install-recommends', ...pkgs], env);
  if (!ok) {
    say(`installation failed; run by hand: ${installCmd}`);
    return 1;
  }

  missing = missingTools();
  if (missing.length > 0) {
    say(`still missing after installing: ${describe(missing)}`);
    return 1;
  }
  say(`installed; ok: ${TOOLS.map((e) => e.tool).join(', ')}`);
  return 0;
}

process.exitCode = main();
