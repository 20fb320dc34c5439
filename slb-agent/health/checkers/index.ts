/** Checker factory: one place maps a check's `type` to its implementation. */
import { systemClock } from '../../../shared/clock.js';
import type { Clock } from '../../../shared/clock.js';
import type { CheckConfig } from '../../config.js';
import { createAgentChecker } from './agent.js';
import { createDnsChecker } from './dns.js';
import { createExecChecker } from './exec.js';
import { createHttpChecker } from './http.js';
import { createIcmpChecker } from './icmp.js';
import { createTcpChecker } from './tcp.js';
import type { Checker } from './types.js';

export type { CheckResult, CheckTarget, Checker } from './types.js';
export { parseAgentReply } from './agent.js';

/** The checker for `check`; `vipName` is passed to exec checks as VIP_NAME; timeouts run on `clock`. */
export function createChecker(check: CheckConfig, vipName: string, clock: Clock = systemClock): Checker {
  switch (check.type) {
    case 'tcp': return createTcpChecker(check, clock);
    case 'http':
    case 'https': return createHttpChecker(check, clock);
    case 'dns': return createDnsChecker(check, clock);
    case 'icmp': return createIcmpChecker(check, 'ping', clock);
    case 'exec': return createExecChecker(check, vipName, clock);
    case 'agent': return createAgentChecker(check, clock);
  }
}
