/**
 * The kernel data plane: programs nftables (one table per family it uses, nothing else on the
 * host) so that dsr, l3dsr-dscp, l3dsr-tunnel and nat VIPs forward at kernel speed.
 */
import type { Logger } from 'pino';
import type { DataPlane } from '../data-plane.js';

export interface NftablesOptions {
  readonly logger?: Logger;
  /** run every command inside this network namespace (`ip netns exec NAME`): labs and tests */
  readonly netns?: string;
  /** on close(): remove the forwarding (true) or leave it in place for the next start (false, default) */
  readonly cleanupOnClose?: boolean;
}

export function createNftablesDataPlane(_opts: NftablesOptions = {}): DataPlane {
  throw new Error('nftables data plane: not built yet');
}
