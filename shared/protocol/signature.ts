import { createHmac, timingSafeEqual } from 'node:crypto';

/** `sha256=<hex>` of HMAC-SHA256(secret, timestamp + "." + body): the report signature. */
export function signReport(secret: Buffer | string, timestamp: string, body: string | Buffer): string {
  const h = createHmac('sha256', secret);
  h.update(`${timestamp}.`);
  h.update(body);
  return `sha256=${h.digest('hex')}`;
}

/** Constant-time check of a report signature header. */
export function verifyReportSignature(secret: Buffer | string, timestamp: string, body: string | Buffer, header: string): boolean {
  const want = Buffer.from(signReport(secret, timestamp, body));
  const got = Buffer.from(header);
  return got.length === want.length && timingSafeEqual(got, want);
}
