/** TCP connect check (keepalived TCP_CHECK): passes when the three-way handshake completes. */
import { connect } from 'node:net';
import type { Socket } from 'node:net';
import type { TcpCheckConfig } from '../../config.js';
import { systemClock } from '../../../shared/clock.js';
import type { Clock } from '../../../shared/clock.js';
import { describeError, runProbe } from './deadline.js';
import type { ProbeOutcome } from './deadline.js';
import type { Checker } from './types.js';

/**
 * Opens a TCP connection to `address:port` and resolves once connected (the caller owns the
 * socket) or rejects with the socket error; aborting `signal` destroys the socket.
 */
export function openTcp(address: string, port: number, signal: AbortSignal): Promise<Socket> {
  return new Promise<Socket>((resolve, reject) => {
    const sock = connect({ host: address, port, noDelay: true });
    const onAbort = (): void => { sock.destroy(); reject(new Error('aborted')); };
    signal.addEventListener('abort', onAbort, { once: true });
    sock.once('connect', () => {
      signal.removeEventListener('abort', onAbort);
      sock.removeAllListeners('error');
      resolve(sock);
    });
    sock.once('error', (err) => {
      signal.removeEventListener('abort', onAbort);
      sock.destroy();
      reject(err);
    });
  });
}

/** A checker that connects and closes at once. */
export function createTcpChecker(check: TcpCheckConfig, clock: Clock = systemClock): Checker {
  return (target, signal) => runProbe(clock, check.timeoutMs, signal, async (s): Promise<ProbeOutcome> => {
    try {
      const sock = await openTcp(target.address, check.port ?? target.port, s);
      // a reset instead of FIN: nothing was sent, and the server need not keep TIME_WAIT state
      sock.resetAndDestroy();
      return { ok: true };
    } catch (err) {
      return { ok: false, error: describeError(err) };
    }
  });
}
