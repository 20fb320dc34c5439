/**
 * The site report an slb-agent POSTs to every gslb-dns instance (`POST /api/v1/reports`).
 * The schema is the contract between the two programs: both validate against it.
 */
import { FormatRegistry, Type } from '@sinclair/typebox';
import type { Static } from '@sinclair/typebox';

const RFC3339 = /^(\d{4})-(\d{2})-(\d{2})[Tt ](\d{2}):(\d{2}):(\d{2})(\.\d+)?([Zz]|[+-]\d{2}:\d{2})$/;

// TypeBox checks a `format` only when it is registered; both programs import this module, so
// registering here means every validator of ReportSchema really checks `sentAt`.
if (!FormatRegistry.Has('date-time')) {
  FormatRegistry.Set('date-time', (v) => {
    const m = RFC3339.exec(v);
    if (!m) return false;
    const [mo, d, h, mi, s] = [Number(m[2]), Number(m[3]), Number(m[4]), Number(m[5]), Number(m[6])];
    return mo >= 1 && mo <= 12 && d >= 1 && d <= 31 && h <= 23 && mi <= 59 && s <= 60 &&
      !Number.isNaN(Date.parse(v.replace(/:60(\.|[Zz+-])/, ':59$1')));
  });
}

/** Longest `reason` a member may carry; senders cut theirs to it. */
export const MAX_REASON_CHARS = 200;

export const MemberStateSchema = Type.Union([Type.Literal('up'), Type.Literal('down'), Type.Literal('drain')]);

export const ReportMemberSchema = Type.Object({
  address: Type.String({ minLength: 2, maxLength: 64 }),
  state: MemberStateSchema,
  /** reported weight, percent of the configured weight (healthy capacity share) */
  weight: Type.Number({ minimum: 0, maximum: 100 }),
  connections: Type.Optional(Type.Integer({ minimum: 0 })),
  capacity: Type.Optional(Type.Integer({ minimum: 0 })),
  healthy: Type.Optional(Type.Integer({ minimum: 0 })),
  total: Type.Optional(Type.Integer({ minimum: 0 })),
  /**
   * false: the agent no longer checks this member (it stopped, the kernel keeps forwarding); the
   * DNS rule: the member keeps its last state and leaves when the site goes stale. Absent: true.
   */
  checked: Type.Optional(Type.Boolean()),
  /** why the member is down or drained (agent stopped, forwarder not applied, VIP check failing) */
  reason: Type.Optional(Type.String({ maxLength: MAX_REASON_CHARS })),
}, { additionalProperties: false });

export const ReportSchema = Type.Object({
  site: Type.String({ minLength: 1, maxLength: 128 }),
  agent: Type.String({ minLength: 1, maxLength: 128 }),
  /** strictly increasing per (site, agent), also across agent restarts */
  seq: Type.Integer({ minimum: 0 }),
  sentAt: Type.String({ format: 'date-time', maxLength: 64 }),
  members: Type.Array(ReportMemberSchema, { maxItems: 10_000 }),
}, { additionalProperties: false });

export type Report = Static<typeof ReportSchema>;
export type MemberState = Static<typeof MemberStateSchema>;
export type ReportMember = Static<typeof ReportMemberSchema>;

/** Header carrying the sender's clock in unix milliseconds. */
export const TIMESTAMP_HEADER = 'x-gslb-timestamp';
/**
 * Header naming the reporting site, so the receiver picks the secret and checks the signature
 * before it parses the body; the body's `site` must say the same. Optional for old agents: the
 * receiver then finds the top-level `"site"` in the raw bytes with a bounded scan.
 */
export const SITE_HEADER = 'x-gslb-site';
/** Header carrying `sha256=<hex HMAC-SHA256(secret, timestamp + "." + raw body)>`. */
export const SIGNATURE_HEADER = 'x-gslb-signature';
/** Reports whose timestamp differs from the receiver's clock by more than this are refused. */
export const MAX_CLOCK_SKEW_MS = 30_000;
/** Largest report body accepted, in bytes. */
export const MAX_REPORT_BYTES = 1 << 20;
