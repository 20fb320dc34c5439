/** Checker factory: one place maps a check's `type` to its implementation. */
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

/** The checker for `check`; `vipName` is passed to exec checks as VIP_NAME. */
export function createChecker(check: CheckConfig, vipName: string): Checker {
  switch (check.type) {
    case 'tcp': return createTcpChecker(check);
    case 'http':
    case 'https': return createHttpChecker(check);
    case 'dns': return createDnsChecker(check);
    case 'icmp': return createIcmpChecker(check);
    case 'exec': return createExecChecker(check, vipName);
    case 'agent': return createAgentChecker(check);
  }
}
