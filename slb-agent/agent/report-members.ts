/** The members an agent reports: one per VIP address, while running and in the final report of a stop. */
import type { ReportMember } from '../../shared/protocol/report.js';
import { downFor, mergeMembers } from '../vip.js';
import type { VipRuntime } from './runtime.js';

/**
 * Addresses of VIPs a reload removed, reported down so DNS does not keep their last state;
 * an address a VIP still uses is left to that VIP.
 */
function removedMembers(vips: readonly VipRuntime[], removedAddresses: ReadonlySet<string>): ReportMember[] {
  const live = new Set(vips.map((v) => v.config.address));
  return [...removedAddresses].filter((a) => !live.has(a))
    .map((address) => ({ address, state: 'down' as const, weight: 0, reason: 'removed from the agent config' }));
}

/** The members of the next report. */
export function liveMembers(vips: readonly VipRuntime[], removedAddresses: ReadonlySet<string>): ReportMember[] {
  return mergeMembers(vips.map((v) => v.status)).concat(removedMembers(vips, removedAddresses));
}

/**
 * The members of the final report: what stops with the agent (proxy VIPs, and every forwarded VIP
 * when the kernel plane is cleaned up on exit) is down, what the kernel keeps forwarding is unchecked.
 */
export function finalMembers(vips: readonly VipRuntime[], removedAddresses: ReadonlySet<string>, cleanupOnExit: boolean): ReportMember[] {
  return mergeMembers(vips.map((v) => {
    const fw = v.config.forwarder;
    const stopsWithUs = fw !== undefined && (fw.mode === 'proxy' || cleanupOnExit);
    return stopsWithUs ? downFor(v.status, 'agent stopped') : { ...v.status, checked: false };
  })).concat(removedMembers(vips, removedAddresses));
}
