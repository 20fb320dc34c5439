/**
 * What the LB (nftables plane) and a real server (`slb-agent rs-setup --mode l3dsr-tunnel`) must
 * agree on for VXLAN-encapsulated L3 DSR. Each LB-to-real-server tunnel is point to point, so
 * every real server's tunnel device can carry the same MAC and the LB needs no per-server lookup.
 * Linux allows one VXLAN device per VNI and UDP port, so the LB gives each real server its own
 * VNI (its own device); the real server's device runs in external (metadata) mode and takes
 * every VNI, so real servers need no VNI configuration.
 */

/** Destination MAC of the inner frame; rs-setup gives the real server's VXLAN device this address. */
export const TUNNEL_INNER_MAC = '02:73:6c:62:00:01';
/** The IANA VXLAN port. */
export const VXLAN_PORT = 4789;
/** The first VNI the LB uses when the config names none. */
export const DEFAULT_VNI = 4242;
/** VXLAN device name on a real server; one per underlay family, since a VXLAN socket is v4 or v6. */
export function rsTunnelDevice(family: 4 | 6): string {
  return family === 4 ? 'slbvx' : 'slbvx6';
}
/**
 * Bytes the tunnel adds in front of the inner IP packet: outer IP (20 or 40) + UDP 8 + VXLAN 8 +
 * inner Ethernet 14. A real server clamps its advertised TCP MSS to underlay MTU - this - inner
 * IP and TCP headers, so client segments fit the underlay after encapsulation.
 */
export function vxlanOverhead(underlayFamily: 4 | 6): number {
  return (underlayFamily === 4 ? 20 : 40) + 8 + 8 + 14;
}
