/**
 * The shared data-plane suite against the nftables plane, once per kernel mode, each in its own
 * network-namespace lab (root needed; CI runs as root).
 */
import { dataPlaneSuite } from './suite.js';
import { kernelEnv } from './kernel-lab.js';

for (const mode of ['dsr', 'nat', 'l3dsr-dscp', 'l3dsr-tunnel'] as const) dataPlaneSuite(kernelEnv(mode));
