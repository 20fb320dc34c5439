/** Words and numbers shared by the drill's terminal progress and its HTML report. */
import type { Sample } from './result.js';

/** "850 ms" under 10 s, "12.3 s" above: a human reads both at a glance. */
export function formatMs(ms: number): string {
  return Math.abs(ms) < 10_000 ? `${Math.round(ms)} ms` : `${(ms / 1000).toFixed(1)} s`;
}

/** Time since the drill started, "+2.30 s". */
export function formatOffset(ms: number): string {
  return `+${(ms / 1000).toFixed(2)} s`;
}

/** What one observation answered, in words: "osaka 198.51.100.1", "SERVFAIL", "NOERROR, no address". */
export function describeAnswer(s: Sample): string {
  if (s.rcode !== 'NOERROR') return s.rcode;
  if (s.addresses.length === 0) return 'NOERROR, no address';
  return s.addresses.map((a, i) => `${s.sites[i] ?? '?'} ${a}`).join(', ');
}

/** "12/16 (75%)", or "-" before any fetch. */
export function formatRate(ok: number, total: number): string {
  return total === 0 ? '-' : `${ok}/${total} (${Math.round((100 * ok) / total)}%)`;
}

const HTML_ESCAPES: Readonly<Record<string, string>> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' };

/** Text safe inside HTML/SVG elements and quoted attributes (plan names and commands are user input). */
export function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => HTML_ESCAPES[c] ?? c);
}
