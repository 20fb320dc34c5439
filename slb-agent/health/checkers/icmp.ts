/**
 * ICMP echo check through the system `ping` (iputils-ping): Node has no raw or ICMP datagram
 * sockets, and `ping` works as root and, being setuid or capable, as any user.
 */
import { addressFamily } from '../../../shared/ip.js';
import type { IcmpCheckConfig } from '../../config.js';
import { runCommand } from './exec.js';
import { systemClock } from '../../../shared/clock.js';
import type { Clock } from '../../../shared/clock.js';
import { describeError, runProbe } from './deadline.js';
import type { ProbeOutcome } from './deadline.js';
import type { Checker } from './types.js';

/** A checker that sends one echo request and waits for the reply. */
export function createIcmpChecker(check: IcmpCheckConfig, ping = 'ping', clock: Clock = systemClock): Checker {
  // ping's own deadline (seconds, decimals allowed by iputils) is a backstop: the probe's
  // deadline kills it anyway
  const wait = Math.max(0.001, check.timeoutMs / 1000).toFixed(3);
  return (target, signal) => runProbe(clock, check.timeoutMs, signal, async (s): Promise<ProbeOutcome> => {
    const argv = [ping, addressFamily(target.address) === 6 ? '-6' : '-4', '-c', '1', '-W', wait, '-n', '-q', target.address];
    try {
      const r = await runCommand(argv, { PATH: process.env['PATH'] ?? '/usr/bin:/bin', LC_ALL: 'C' }, s);
      if (r.code === 0) return { ok: true };
      // exit code 1: no reply; 2 and others: ping could not send (its message says why)
      if (r.code === 1) return { ok: false, error: 'no echo reply' };
      const tail = r.output.trim().split('\n').pop() ?? '';
      return { ok: false, error: `ping failed (exit code ${r.code ?? r.signal ?? '?'})${tail === '' ? '' : `: ${tail}`}` };
    } catch (err) {
      const e = err as NodeJS.ErrnoException;
      return { ok: false, error: e.code === 'ENOENT' ? 'ping not installed (Debian package iputils-ping)' : describeError(err) };
    }
  });
}
