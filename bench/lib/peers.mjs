/**
 * The peer servers of bench/peers (NSD, Knot) for the node benchmarks: their config templates
 * rendered as bench/peers/lib.sh renders them, and the command that runs each in the foreground.
 */
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const PEERS_CONF = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', 'peers', 'conf');

/** bench/peers/conf/<name>/<name>.conf.in with @RUN@, @CONF@ (zones in @CONF@/static) and @PORT@ filled in. */
export function renderPeerConf(name, { run, conf, port }) {
  return fs.readFileSync(path.join(PEERS_CONF, name, `${name}.conf.in`), 'utf8')
    .replaceAll('@RUN@', run).replaceAll('@CONF@', conf).replaceAll('@PORT@', String(port));
}

/** The command line that runs peer `name` (nsd, knot) in the foreground on `confFile`. */
export function peerArgv(name, confFile) {
  if (name === 'nsd') return ['/usr/sbin/nsd', '-d', '-c', confFile];
  if (name === 'knot') return ['/usr/sbin/knotd', '-c', confFile];
  throw new Error(`unknown peer ${name} (nsd, knot)`);
}
