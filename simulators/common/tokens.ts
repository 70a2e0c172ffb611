/** Bearer tokens with expiry, issued deterministically from a seed. */
import { hexId, rngFor } from './prng.js';

export type TokenCheck =
  { ok: true; subject: string } | { ok: false; reason: 'missing' | 'unknown' | 'expired' };

export class TokenStore {
  private readonly tokens = new Map<string, { subject: string; expiresAt: number }>();
  private issued = 0;
  /** Tokens expired early by expireAll() (mid-run expiry switch). */
  private readonly revoked = new Set<string>();

  constructor(
    private readonly seed: number,
    private readonly now: () => number,
    private readonly prefix = '',
  ) {}

  issue(subject: string, lifetimeSeconds: number): { token: string; expiresAt: number } {
    this.issued++;
    const token = this.prefix + hexId(rngFor(this.seed, 'token', this.issued), 40);
    const expiresAt = this.now() + lifetimeSeconds * 1000;
    this.tokens.set(token, { subject, expiresAt });
    return { token, expiresAt };
  }

  /** Check an Authorization header value of the form "Bearer <token>". */
  checkBearer(authorization: string | undefined): TokenCheck {
    if (!authorization) return { ok: false, reason: 'missing' };
    const m = /^Bearer\s+(\S+)$/i.exec(authorization.trim());
    if (!m) return { ok: false, reason: 'missing' };
    return this.check(m[1] as string);
  }

  check(token: string): TokenCheck {
    const t = this.tokens.get(token);
    if (!t) return { ok: false, reason: 'unknown' };
    if (t.expiresAt <= this.now() || this.revoked.has(token)) return { ok: false, reason: 'expired' };
    return { ok: true, subject: t.subject };
  }

  /** Expire every token issued so far (they answer 401 from now on); new tokens work. */
  expireAll(): void {
    for (const k of this.tokens.keys()) this.revoked.add(k);
  }

  /** Number of tokens issued so far. */
  get count(): number {
    return this.issued;
  }
}

/**
 * OAuth2 client credentials of a token request: from HTTP Basic when present (id and secret are
 * form-encoded there, RFC 6749 §2.3.1), otherwise from the form's client_id and client_secret.
 */
export function clientCredentials(
  authorization: string | undefined,
  form: URLSearchParams,
): { id: string | null; secret: string | null } {
  const basic = /^Basic\s+(\S+)$/i.exec(authorization ?? '');
  if (!basic) return { id: form.get('client_id'), secret: form.get('client_secret') };
  const [u, p] = Buffer.from(basic[1] as string, 'base64')
    .toString('utf8')
    .split(':');
  return { id: decodeURIComponent(u ?? ''), secret: decodeURIComponent(p ?? '') };
}
