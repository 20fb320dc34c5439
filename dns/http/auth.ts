/**
 * Bearer-token check for the admin API, in constant time (both sides are hashed first, so
 * neither the token's content nor its length leaks through timing).
 */
import { createHash, timingSafeEqual } from 'node:crypto';

export type AdminAuthResult =
  | { readonly ok: true }
  | { readonly ok: false; readonly status: 401 | 403; readonly reason: string };

function digest(s: string): Buffer {
  return createHash('sha256').update(s, 'utf8').digest();
}

/**
 * A checker for `Authorization` header values against `token`. An undefined token disables the
 * admin API (403); an empty one is a configuration error and throws here, never an open door.
 */
export function createAdminAuth(token: string | undefined): (authorization: string | undefined) => AdminAuthResult {
  if (token === undefined) {
    return () => ({ ok: false, status: 403, reason: 'admin API disabled: start with --admin-token-file' });
  }
  const want = token.trim();
  if (want === '') throw new Error('admin token is empty');
  const wantDigest = digest(want);
  return (authorization) => {
    if (authorization === undefined) return { ok: false, status: 401, reason: 'unauthorized: Authorization: Bearer <token> required' };
    const m = /^Bearer[ \t]+(.*)$/i.exec(authorization);
    if (!m) return { ok: false, status: 401, reason: 'unauthorized: Authorization: Bearer <token> required' };
    if (!timingSafeEqual(digest(m[1]!.trim()), wantDigest)) return { ok: false, status: 401, reason: 'unauthorized: wrong token' };
    return { ok: true };
  };
}
