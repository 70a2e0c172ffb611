/**
 * Authenticators: API key (header or query, several keys with validity dates, next key on 401),
 * Basic, OAuth2 client credentials and password grant (token cached, refreshed before expiry and
 * once after a 401), static bearer. Secret values live only inside these objects, which also
 * scrub them (and their encoded forms) out of any provider text before it is shown.
 */
import { MeterflowError } from '../../lib/errors.js';
import type { AuthConfig } from '../../schemas/connection.js';
import { DAY_MS } from '../../schemas/time.js';
import { requireEnv, type Env } from './secrets.js';
import { joinUrl } from './url.js';

export interface AuthTarget {
  url: URL;
  headers: Record<string, string>;
}

/** A token endpoint answer as the HTTP core returns it (status + text). */
export interface TokenHttpResponse {
  status: number;
  text: string;
}

export interface AuthDeps {
  connectionId: string;
  baseUrl: string;
  env: Env;
  now: () => number;
  /** POSTs a form to the token URL through the HTTP core (budgeted, timeouts, never authenticated). */
  postForm: (
    url: URL,
    form: Record<string, string>,
    headers: Record<string, string>,
  ) => Promise<TokenHttpResponse>;
}

export interface Authenticator {
  readonly type: AuthConfig['type'];
  /** Adds credentials to an outgoing request. */
  apply(target: AuthTarget): Promise<void>;
  /**
   * Called after a 401. Returns true when a retry with fresh credentials makes sense (new token,
   * next key); false when there is nothing left to try.
   */
  onUnauthorized(): Promise<boolean>;
  /** Query parameter names that carry credentials (stripped from every logged/emitted URL). */
  readonly secretParams: string[];
  /**
   * The text with every secret value of this connection replaced by [redacted]: raw, URL- and
   * form-encoded, JSON-escaped, and the Basic base64 form. Applied to anything a provider echoes.
   */
  scrub(text: string): string;
}

/** Values shorter than this are not scrubbed: they would mangle ordinary words. */
const MIN_SCRUB_LENGTH = 4;

/** The secret values one authenticator holds, in every form a provider may echo them. */
export class SecretScrubber {
  private fixed: string[] = [];
  /** Issued tokens: only the last two issues are kept, so a long run does not grow this. */
  private issued: string[][] = [];
  private forms: string[] = [];

  add(...values: (string | undefined)[]): void {
    this.fixed.push(...values.filter((v): v is string => v !== undefined));
    this.rebuild();
  }

  /** Values that replace earlier ones (OAuth tokens). */
  rotate(...values: (string | undefined)[]): void {
    this.issued = [...this.issued.slice(-1), values.filter((v): v is string => v !== undefined)];
    this.rebuild();
  }

  scrub(text: string): string {
    let out = text;
    for (const f of this.forms) if (out.includes(f)) out = out.split(f).join('[redacted]');
    return out;
  }

  private rebuild(): void {
    const forms = new Set<string>();
    for (const v of [...this.fixed, ...this.issued.flat()]) {
      if (v.length < MIN_SCRUB_LENGTH) continue;
      forms.add(v);
      forms.add(encodeURIComponent(v));
      forms.add(new URLSearchParams({ v }).toString().slice(2));
      forms.add(JSON.stringify(v).slice(1, -1));
    }
    // Longest first, so a form containing another is replaced whole.
    this.forms = [...forms].sort((a, b) => b.length - a.length);
  }
}

/** Holds the scrubber every authenticator shares the behaviour of. */
abstract class SecretHolder {
  protected readonly secrets = new SecretScrubber();
  scrub(text: string): string {
    return this.secrets.scrub(text);
  }
}

const fill = (template: string, name: string, value: string): string =>
  template.split(`{${name}}`).join(value);

function dateMs(s: string | undefined, end: boolean): number | undefined {
  if (!s) return undefined;
  // A date-only validTo covers that whole day.
  const t = Date.parse(/^\d{4}-\d{2}-\d{2}$/.test(s) ? `${s}T00:00:00Z` : s);
  if (Number.isNaN(t)) return undefined;
  return end && /^\d{4}-\d{2}-\d{2}$/.test(s) ? t + DAY_MS : t;
}

/** How long a key that got a 401 is passed over before it is tried again. */
export const KEY_REJECTION_MS = 5 * 60_000;

class ApiKeyAuth extends SecretHolder implements Authenticator {
  readonly type = 'apiKey' as const;
  readonly secretParams: string[];
  private readonly keys: { value: string; from?: number; to?: number; index: number }[];
  /** Key index → when its 401 stops counting: a short burst of 401s must not end a long run. */
  private readonly rejected = new Map<number, number>();
  private current: number | undefined;

  constructor(
    private readonly cfg: Extract<AuthConfig, { type: 'apiKey' }>,
    private readonly deps: AuthDeps,
  ) {
    super();
    this.keys = cfg.keys.map((k, index) => ({
      value: requireEnv(deps.env, k.valueEnv, deps.connectionId),
      from: dateMs(k.validFrom, false),
      to: dateMs(k.validTo, true),
      index,
    }));
    this.secretParams = cfg.in === 'query' ? [cfg.name] : [];
    this.secrets.add(...this.keys.map((k) => k.value));
  }

  private pick(): number {
    const now = this.deps.now();
    const valid = this.keys.filter(
      (k) =>
        !this.isRejected(k.index, now) &&
        (k.from === undefined || k.from <= now) &&
        (k.to === undefined || now < k.to),
    );
    const chosen = valid[0];
    if (!chosen) {
      throw new MeterflowError(
        'POLL_AUTH',
        `connection ${this.deps.connectionId}: no valid API key left (${this.keys.length} configured, ${this.keys.filter((k) => this.isRejected(k.index, now)).length} rejected with 401 in the last ${KEY_REJECTION_MS / 60_000} min, others outside their validity dates)`,
        { context: { connection: this.deps.connectionId, keys: this.keys.length } },
      );
    }
    return chosen.index;
  }

  private isRejected(index: number, now: number): boolean {
    const until = this.rejected.get(index);
    if (until === undefined) return false;
    if (now < until) return true;
    this.rejected.delete(index);
    return false;
  }

  apply(target: AuthTarget): Promise<void> {
    if (this.current === undefined || this.isRejected(this.current, this.deps.now()))
      this.current = this.pick();
    // Re-check validity on every request: a long run may cross a key's validTo.
    const k = this.keys[this.current]!;
    const now = this.deps.now();
    if ((k.to !== undefined && now >= k.to) || (k.from !== undefined && now < k.from))
      this.current = this.pick();
    const value = fill(this.cfg.format, 'key', this.keys[this.current]!.value);
    if (this.cfg.in === 'header') target.headers[this.cfg.name.toLowerCase()] = value;
    else target.url.searchParams.set(this.cfg.name, value);
    return Promise.resolve();
  }

  onUnauthorized(): Promise<boolean> {
    if (this.current !== undefined) this.rejected.set(this.current, this.deps.now() + KEY_REJECTION_MS);
    this.current = undefined;
    try {
      this.current = this.pick();
      return Promise.resolve(true);
    } catch {
      return Promise.resolve(false);
    }
  }
}

class BasicAuth extends SecretHolder implements Authenticator {
  readonly type = 'basic' as const;
  readonly secretParams: string[] = [];
  private readonly header: string;
  constructor(cfg: Extract<AuthConfig, { type: 'basic' }>, deps: AuthDeps) {
    super();
    const user = requireEnv(deps.env, cfg.usernameEnv, deps.connectionId);
    const pass = requireEnv(deps.env, cfg.passwordEnv, deps.connectionId);
    const encoded = Buffer.from(`${user}:${pass}`, 'utf8').toString('base64');
    this.header = `Basic ${encoded}`;
    // The user name alone is no secret; the pair and its base64 are.
    this.secrets.add(pass, `${user}:${pass}`, encoded);
  }
  apply(target: AuthTarget): Promise<void> {
    target.headers.authorization = this.header;
    return Promise.resolve();
  }
  onUnauthorized(): Promise<boolean> {
    return Promise.resolve(false);
  }
}

class BearerAuth extends SecretHolder implements Authenticator {
  readonly type = 'bearer' as const;
  readonly secretParams: string[] = [];
  private readonly value: string;
  constructor(
    private readonly cfg: Extract<AuthConfig, { type: 'bearer' }>,
    deps: AuthDeps,
  ) {
    super();
    const token = requireEnv(deps.env, cfg.tokenEnv, deps.connectionId);
    this.value = fill(cfg.format, 'token', token);
    this.secrets.add(token);
  }
  apply(target: AuthTarget): Promise<void> {
    target.headers[this.cfg.header.toLowerCase()] = this.value;
    return Promise.resolve();
  }
  onUnauthorized(): Promise<boolean> {
    return Promise.resolve(false);
  }
}

class NoAuth extends SecretHolder implements Authenticator {
  readonly type = 'none' as const;
  readonly secretParams: string[] = [];
  apply(): Promise<void> {
    return Promise.resolve();
  }
  onUnauthorized(): Promise<boolean> {
    return Promise.resolve(false);
  }
}

interface Token {
  accessToken: string;
  tokenType: string;
  expiresAt: number;
  refreshToken?: string;
}

/** Parses `{error, error_description}` provider bodies into a short, secret-free phrase. */
export function providerErrorPhrase(text: string): string | undefined {
  try {
    const body = JSON.parse(text) as unknown;
    if (body && typeof body === 'object') {
      const b = body as Record<string, unknown>;
      const err = typeof b.error === 'string' ? b.error : undefined;
      const err2 = err ?? (typeof b.title === 'string' ? b.title : undefined);
      const desc =
        typeof b.error_description === 'string'
          ? b.error_description
          : typeof b.detail === 'string'
            ? b.detail
            : typeof b.message === 'string'
              ? b.message
              : undefined;
      if (err2 || desc) {
        const phrase = [err2, desc].filter(Boolean).join(': ');
        return phrase.length > 300 ? `${phrase.slice(0, 300)}…` : phrase;
      }
    }
  } catch {
    /* not JSON */
  }
  return undefined;
}

class OAuth2Auth extends SecretHolder implements Authenticator {
  readonly secretParams: string[] = [];
  private token: Token | undefined;
  private inflight: Promise<Token> | undefined;
  private readonly clientId: string;
  private readonly clientSecret: string | undefined;
  private readonly username: string | undefined;
  private readonly password: string | undefined;
  private readonly tokenUrl: URL;

  constructor(
    private readonly cfg: Extract<AuthConfig, { type: 'oauth2ClientCredentials' | 'oauth2Password' }>,
    private readonly deps: AuthDeps,
  ) {
    super();
    this.clientId = requireEnv(deps.env, cfg.clientIdEnv, deps.connectionId);
    this.clientSecret = cfg.clientSecretEnv
      ? requireEnv(deps.env, cfg.clientSecretEnv, deps.connectionId)
      : undefined;
    if (cfg.type === 'oauth2Password') {
      this.username = requireEnv(deps.env, cfg.usernameEnv, deps.connectionId);
      this.password = requireEnv(deps.env, cfg.passwordEnv, deps.connectionId);
    }
    this.tokenUrl = joinUrl(deps.baseUrl, cfg.tokenUrl);
    this.secrets.add(this.clientSecret, this.password);
  }

  get type(): AuthConfig['type'] {
    return this.cfg.type;
  }

  private grantForm(): Record<string, string> {
    const form: Record<string, string> = { client_id: this.clientId };
    if (this.clientSecret !== undefined) form.client_secret = this.clientSecret;
    if (this.cfg.scope) form.scope = this.cfg.scope;
    if (this.cfg.type === 'oauth2Password') {
      form.grant_type = 'password';
      form.username = this.username!;
      form.password = this.password!;
    } else {
      form.grant_type = 'client_credentials';
    }
    return form;
  }

  private async requestToken(form: Record<string, string>): Promise<Token> {
    const ctx = {
      connection: this.deps.connectionId,
      endpoint: 'oauth2.token',
      url: this.tokenUrl.origin + this.tokenUrl.pathname,
    };
    const res = await this.deps.postForm(this.tokenUrl, form, { accept: 'application/json' });
    if (res.status < 200 || res.status >= 300) {
      const phrase = this.scrub(providerErrorPhrase(res.text) ?? `status ${res.status}`);
      throw new MeterflowError(
        'POLL_AUTH',
        `connection ${ctx.connection}: token request to ${ctx.url} failed with ${res.status} (${phrase})`,
        {
          context: { ...ctx, status: res.status },
        },
      );
    }
    let body: Record<string, unknown>;
    try {
      body = JSON.parse(res.text) as Record<string, unknown>;
    } catch (cause) {
      throw new MeterflowError(
        'POLL_AUTH',
        `connection ${ctx.connection}: token response from ${ctx.url} is not JSON`,
        { cause, context: ctx },
      );
    }
    const accessToken = body.access_token;
    if (typeof accessToken !== 'string' || accessToken === '') {
      throw new MeterflowError(
        'POLL_AUTH',
        `connection ${ctx.connection}: token response from ${ctx.url} has no access_token`,
        { context: ctx },
      );
    }
    const expiresIn = Number(body.expires_in ?? 3600);
    // Tokens are secrets too once issued: a provider may echo them in a later error.
    this.secrets.rotate(accessToken, typeof body.refresh_token === 'string' ? body.refresh_token : undefined);
    return {
      accessToken,
      tokenType: typeof body.token_type === 'string' && body.token_type ? body.token_type : 'Bearer',
      expiresAt: this.deps.now() + (Number.isFinite(expiresIn) && expiresIn > 0 ? expiresIn : 3600) * 1000,
      ...(typeof body.refresh_token === 'string' && body.refresh_token
        ? { refreshToken: body.refresh_token }
        : {}),
    };
  }

  private async fetchToken(): Promise<Token> {
    const old = this.token;
    if (old?.refreshToken) {
      const form: Record<string, string> = {
        grant_type: 'refresh_token',
        refresh_token: old.refreshToken,
        client_id: this.clientId,
      };
      if (this.clientSecret !== undefined) form.client_secret = this.clientSecret;
      try {
        return await this.requestToken(form);
      } catch {
        /* refresh token rejected: fall back to a full grant */
      }
    }
    return this.requestToken(this.grantForm());
  }

  private fresh(t: Token | undefined): t is Token {
    return t !== undefined && this.deps.now() < t.expiresAt - this.cfg.refreshSkewSeconds * 1000;
  }

  private async current(): Promise<Token> {
    if (this.fresh(this.token)) return this.token;
    this.inflight ??= this.fetchToken()
      .then((t) => (this.token = t))
      .finally(() => (this.inflight = undefined));
    return this.inflight;
  }

  async apply(target: AuthTarget): Promise<void> {
    const t = await this.current();
    const scheme = /^bearer$/i.test(t.tokenType) ? 'Bearer' : t.tokenType;
    target.headers.authorization = `${scheme} ${t.accessToken}`;
  }

  onUnauthorized(): Promise<boolean> {
    // Drop the token (keep its refresh token) so the next apply fetches a new one.
    if (this.token) this.token = { ...this.token, expiresAt: 0 };
    return Promise.resolve(true);
  }
}

export function createAuthenticator(cfg: AuthConfig, deps: AuthDeps): Authenticator {
  switch (cfg.type) {
    case 'apiKey':
      return new ApiKeyAuth(cfg, deps);
    case 'basic':
      return new BasicAuth(cfg, deps);
    case 'bearer':
      return new BearerAuth(cfg, deps);
    case 'oauth2ClientCredentials':
    case 'oauth2Password':
      return new OAuth2Auth(cfg, deps);
    case 'none':
      return new NoAuth();
  }
}

/** How many times one request may re-authenticate after 401s (a new token once; each spare key). */
export function maxReauths(cfg: AuthConfig): number {
  if (cfg.type === 'apiKey') return Math.max(0, cfg.keys.length - 1) + 0;
  if (cfg.type === 'oauth2ClientCredentials' || cfg.type === 'oauth2Password') return 1;
  return 0;
}
