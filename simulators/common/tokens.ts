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
