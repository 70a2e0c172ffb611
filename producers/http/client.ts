/**
 * The HTTP core every connector uses: undici with a keep-alive Agent and timeouts, the request
 * budget, authentication, the error policy table (retry, rate limit, re-auth, fail), a response
 * size limit enforced while streaming, and same-origin redirects only. Every error is a
 * MeterflowError naming connection, endpoint, page and a URL without credentials.
 */
import { pollMetrics } from '../../lib/metrics.js';
import { backoffDelay, sleep } from '../../lib/retry.js';
import { Agent, request, type Dispatcher } from 'undici';
import { errorMessage, MeterflowError, type ErrorCode } from '../../lib/errors.js';
import type { Logger } from '../../lib/log.js';
import { baseUrlOf, type ConnectionConfig } from '../../schemas/connection.js';
import { createAuthenticator, maxReauths, providerErrorPhrase, type Authenticator } from './auth.js';
import { acceptHeader, parseBody, type BodyFormat } from './body.js';
import { RequestBudget } from './budget.js';
import { HTTP_DEFAULTS, type HttpLimits } from './defaults.js';
import {
  classify,
  DEFAULT_ERROR_POLICY,
  parseRetryAfter,
  type PolicyRule,
  type TransportFailure,
} from './policy.js';
import type { Env } from './secrets.js';
import { joinUrl, redactUrl, sameOrigin, withQuery } from './url.js';

export type HttpMethod = 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE';
export type QueryValue = string | number | boolean | undefined | string[];

export interface RequestSpec {
  method?: HttpMethod;
  /** Absolute URL, or a path relative to the connection's base URL. */
  url: string | URL;
  query?: Record<string, QueryValue>;
  headers?: Record<string, string>;
  /** JSON request body. */
  json?: unknown;
  /** Form-encoded request body. */
  form?: Record<string, string>;
  /** Endpoint name for errors, logs and stats, e.g. "meters.list". */
  endpoint: string;
  /** Page label for errors and envelopes. */
  page?: string | undefined;
  /** Expected body format (Accept header and parsing); default json. */
  format?: BodyFormat;
  /** Send credentials (default true). */
  auth?: boolean;
  /** Statuses handed to the caller instead of the error policy. */
  acceptStatus?: (status: number) => boolean;
  signal?: AbortSignal | undefined;
}

export interface HttpResponse {
  status: number;
  /** Lower-case header names; multiple values joined with ", ". */
  headers: Record<string, string>;
  text: string;
  contentType: string;
  /** Final request URL without credentials. */
  url: string;
  endpoint: string;
  page: string | undefined;
  receivedAt: number;
  format: BodyFormat;
}

export interface HttpStats {
  requests: number;
  retries: number;
  rateLimited: number;
  reauths: number;
}

export interface HttpClientOptions {
  connection: ConnectionConfig;
  env?: Env;
  /** Shared budget (it outlives one run); created from connection.budget when absent. */
  budget?: RequestBudget;
  dispatcher?: Dispatcher;
  defaultHeaders?: Record<string, string>;
  policy?: readonly PolicyRule[];
  log?: Logger;
  now?: () => number;
  random?: () => number;
  sleep?: (ms: number, signal?: AbortSignal) => Promise<void>;
  /** Called with every response's headers (e.g. to read a provider's remaining-calls header). */
  onResponse?: (res: { status: number; headers: Record<string, string> }, budget: RequestBudget) => void;
  /** Overrides of HTTP_DEFAULTS not present in connection.http. */
  limits?: Partial<
    Pick<
      HttpLimits,
      | 'rateLimitMaxWaitMs'
      | 'maxRateLimitRetries'
      | 'retryFloorMs'
      | 'retryAfterMaxMs'
      | 'maxRedirects'
      | 'connectTimeoutMs'
      | 'maxPageDigests'
    >
  >;
}

const TIMEOUT_CODES = new Set([
  'UND_ERR_CONNECT_TIMEOUT',
  'UND_ERR_HEADERS_TIMEOUT',
  'UND_ERR_BODY_TIMEOUT',
  'ETIMEDOUT',
]);

function transportFailure(err: unknown): TransportFailure {
  const code = (err as { code?: string }).code ?? '';
  return TIMEOUT_CODES.has(code) ? 'timeout' : 'network';
}

function flattenHeaders(h: Record<string, string | string[] | undefined>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(h))
    if (v !== undefined) out[k.toLowerCase()] = Array.isArray(v) ? v.join(', ') : v;
  return out;
}

export class HttpClient {
  readonly connectionId: string;
  readonly baseUrl: string;
  readonly budget: RequestBudget;
  readonly auth: Authenticator;
  readonly stats: HttpStats = { requests: 0, retries: 0, rateLimited: 0, reauths: 0 };
  private readonly dispatcher: Dispatcher;
  private readonly ownsDispatcher: boolean;
  private readonly policy: readonly PolicyRule[];
  private readonly now: () => number;
  private readonly sleep: (ms: number, signal?: AbortSignal) => Promise<void>;
  private readonly maxReauth: number;
  private readonly limits: HttpLimits;

  constructor(private readonly opts: HttpClientOptions) {
    const c = opts.connection;
    this.connectionId = c.id;
    this.baseUrl = baseUrlOf(c);
    this.now = opts.now ?? Date.now;
    this.sleep = opts.sleep ?? sleep;
    this.policy = opts.policy ?? DEFAULT_ERROR_POLICY;
    this.limits = { ...HTTP_DEFAULTS, ...c.http, ...opts.limits };
    this.budget = opts.budget ?? new RequestBudget(c.id, c.budget, this.now);
    this.ownsDispatcher = opts.dispatcher === undefined;
    this.dispatcher =
      opts.dispatcher ??
      new Agent({
        keepAliveTimeout: this.limits.keepAliveTimeoutMs,
        connectTimeout: Math.min(this.limits.connectTimeoutMs, c.http.timeoutMs),
        headersTimeout: c.http.timeoutMs,
        bodyTimeout: c.http.timeoutMs,
        connections: this.limits.connectionsPerOrigin,
      });
    // Secrets are resolved here, at connection start: a missing variable fails now, by name.
    this.auth = createAuthenticator(c.auth, {
      connectionId: c.id,
      baseUrl: this.baseUrl,
      env: opts.env ?? process.env,
      now: this.now,
      postForm: async (url, form, headers) => {
        const res = await this.send({
          method: 'POST',
          url,
          form,
          headers,
          endpoint: 'oauth2.token',
          auth: false,
          acceptStatus: (s) => s >= 400 && s < 500 && s !== 429,
        });
        return { status: res.status, text: res.text };
      },
    });
    this.maxReauth = maxReauths(c.auth);
  }

  /** Pages one pagination may fetch (connection.http.maxPages). */
  get maxPages(): number {
    return this.limits.maxPages;
  }

  /** Page digests, cursors and next URLs one pagination remembers to detect cycles. */
  get maxPageDigests(): number {
    return this.limits.maxPageDigests;
  }

  /** The URL as it may be shown anywhere: no user info, no credential query parameters. */
  redact(url: string | URL): string {
    return redactUrl(url, this.auth.secretParams);
  }

  resolve(url: string | URL, query?: Record<string, QueryValue>): URL {
    const u = url instanceof URL ? new URL(url) : joinUrl(this.baseUrl, url);
    return withQuery(u, query);
  }

  private fail(
    code: ErrorCode,
    what: string,
    spec: RequestSpec,
    url: URL,
    extra: { status?: number; retriable?: boolean; cause?: unknown } = {},
  ): MeterflowError {
    const shown = this.redact(url);
    const page = spec.page !== undefined ? `, page ${spec.page}` : '';
    return new MeterflowError(
      code,
      `connection ${this.connectionId}, endpoint ${spec.endpoint}${page}: ${what} (${spec.method ?? 'GET'} ${shown})`,
      {
        cause: extra.cause,
        retriable: extra.retriable ?? false,
        context: {
          connection: this.connectionId,
          endpoint: spec.endpoint,
          page: spec.page,
          url: shown,
          ...(extra.status !== undefined ? { status: extra.status } : {}),
        },
      },
    );
  }

  /**
   * The error as it may leave the client: provider text in its message or context carries none of
   * our secret values. Every error of send() and fetch() passes here.
   */
  private scrubbed(err: unknown): unknown {
    if (!(err instanceof MeterflowError)) return err;
    const context: Record<string, unknown> = {};
    let changed = false;
    for (const [k, v] of Object.entries(err.context)) {
      context[k] = typeof v === 'string' ? this.auth.scrub(v) : v;
      changed ||= context[k] !== v;
    }
    const message = this.auth.scrub(err.message);
    if (!changed && message === err.message) return err;
    return new MeterflowError(err.code, message, { retriable: err.retriable, context });
  }

  /** Backoff before the next retry, `retries` having been made so far. */
  private backoff(retries: number): number {
    return backoffDelay(
      retries + 1,
      { initialMs: this.limits.backoffBaseMs, maxMs: this.limits.backoffMaxMs },
      this.opts.random,
    );
  }

  /** Sends a request through budget, auth and the error policy; returns the successful response. */
  async send(spec: RequestSpec): Promise<HttpResponse> {
    try {
      return await this.exchange(spec);
    } catch (err) {
      throw this.scrubbed(err);
    }
  }

  /** Sends and parses the body in the expected format. */
  async fetch(spec: RequestSpec): Promise<{ res: HttpResponse; body: unknown }> {
    const res = await this.send(spec);
    try {
      const body = parseBody(res.format, res.contentType, res.text, {
        connection: this.connectionId,
        endpoint: spec.endpoint,
        url: res.url,
        page: spec.page,
      });
      return { res, body };
    } catch (err) {
      throw this.scrubbed(err);
    }
  }

  /**
   * One request: dispatches, then lets the redirect, re-auth, rate-limit and retry steps decide
   * whether to hand the response back, fail, or dispatch again.
   */
  private async exchange(spec: RequestSpec): Promise<HttpResponse> {
    const tally = new Tally();
    let hop: Hop = { url: this.resolve(spec.url, spec.query), method: spec.method ?? 'GET' };
    for (;;) {
      const outcome = await this.dispatch(spec, hop);
      if (outcome.kind === 'failure') {
        await this.retryStep(spec, hop, tally, outcome, classify({ failure: outcome.failure }, this.policy));
        continue;
      }
      const next = this.redirectStep(spec, hop, tally, outcome);
      if (next) {
        hop = next;
        continue;
      }
      if (spec.acceptStatus?.(outcome.status)) return this.response(spec, hop, outcome);
      const rule = classify({ status: outcome.status }, this.policy);
      switch (rule.action) {
        case 'success':
          return this.response(spec, hop, outcome);
        case 'reauth':
          await this.reauthStep(spec, hop, tally, outcome);
          continue;
        case 'rateLimited':
        case 'retry':
          await this.retryStep(spec, hop, tally, outcome, rule);
          continue;
        case 'fail':
          throw this.fail(rule.code, statusText(outcome), spec, hop.url, { status: outcome.status });
      }
    }
  }

  private response(spec: RequestSpec, hop: Hop, r: Answer): HttpResponse {
    return {
      status: r.status,
      headers: r.headers,
      text: r.text,
      contentType: r.headers['content-type'] ?? '',
      url: this.redact(hop.url),
      endpoint: spec.endpoint,
      page: spec.page,
      receivedAt: this.now(),
      format: spec.format ?? 'json',
    };
  }

  /** One attempt: budget, credentials, the request and its whole body within requestDeadlineMs. */
  private async dispatch(spec: RequestSpec, hop: Hop): Promise<Outcome> {
    spec.signal?.throwIfAborted();
    await this.budget.acquire({ endpoint: spec.endpoint, page: spec.page }, spec.signal);
    const headers: Record<string, string> = {
      accept: acceptHeader(spec.format ?? 'json'),
      // We decode no compression; saying so up front keeps providers from sending any.
      'accept-encoding': 'identity',
      ...lower(this.opts.defaultHeaders),
      ...lower(spec.headers),
    };
    let body: string | undefined;
    if (spec.json !== undefined && hop.method !== 'GET') {
      body = JSON.stringify(spec.json);
      headers['content-type'] ??= 'application/json';
    } else if (spec.form !== undefined) {
      body = new URLSearchParams(spec.form).toString();
      headers['content-type'] = 'application/x-www-form-urlencoded';
    }
    const target = { url: new URL(hop.url), headers };
    if (spec.auth !== false) await this.auth.apply(target);
    this.stats.requests++;
    const started = this.now();
    // timeoutMs is idle time between chunks; this bounds the attempt as a whole (slow-loris).
    // A controller per attempt, released in finally: AbortSignal.any/timeout would keep every
    // attempt reachable from the run's long-lived signal until it aborts.
    spec.signal?.throwIfAborted();
    const attempt = new AbortController();
    let deadline = false;
    const timer = setTimeout(() => ((deadline = true), attempt.abort()), this.limits.requestDeadlineMs);
    const forward = (): void => attempt.abort(spec.signal?.reason);
    spec.signal?.addEventListener('abort', forward, { once: true });
    let answer: Answer;
    try {
      const res = await request(target.url, {
        method: hop.method,
        headers: target.headers,
        body,
        dispatcher: this.dispatcher,
        signal: attempt.signal,
      });
      const resHeaders = flattenHeaders(res.headers);
      this.refuseEncoding(res, resHeaders, spec, hop.url);
      const text = await this.readLimited(res.body, resHeaders, spec, hop.url, res.statusCode);
      answer = { kind: 'answer', status: res.statusCode, headers: resHeaders, text };
    } catch (err) {
      if (spec.signal?.aborted) throw spec.signal.reason;
      if (err instanceof MeterflowError) throw err;
      if (deadline) return { kind: 'failure', failure: 'timeout', err, deadline: true };
      return { kind: 'failure', failure: transportFailure(err), err, deadline: false };
    } finally {
      clearTimeout(timer);
      spec.signal?.removeEventListener('abort', forward);
    }
    this.opts.onResponse?.({ status: answer.status, headers: answer.headers }, this.budget);
    pollMetrics.requests.inc({
      connection: this.connectionId,
      endpoint: spec.endpoint,
      status: String(answer.status),
    });
    const left = this.budget.remainingToday();
    if (Number.isFinite(left))
      pollMetrics.budgetLeft.set({ connection: this.connectionId, window: 'day' }, left);
    this.opts.log?.debug(
      {
        event: 'http.response',
        connection: this.connectionId,
        endpoint: spec.endpoint,
        page: spec.page,
        status: answer.status,
        ms: this.now() - started,
        url: this.redact(hop.url),
      },
      'response',
    );
    return answer;
  }

  /** A compressed body is neither asked for nor decoded: refuse it by name, not as binary garbage. */
  private refuseEncoding(
    res: Dispatcher.ResponseData,
    headers: Record<string, string>,
    spec: RequestSpec,
    url: URL,
  ): void {
    const encoding = (headers['content-encoding'] ?? '').trim().toLowerCase();
    if (encoding === '' || encoding === 'identity') return;
    discard(res.body);
    throw this.fail(
      'POLL_RESPONSE_CONTENT_TYPE',
      `response has Content-Encoding ${printable(encoding, 40)}, which meterflow neither requests nor decodes`,
      spec,
      url,
      { status: res.statusCode },
    );
  }

  /** Same-origin redirects only, at most maxRedirects per request. */
  private redirectStep(spec: RequestSpec, hop: Hop, tally: Tally, r: Answer): Hop | undefined {
    if (r.status < 300 || r.status >= 400 || !r.headers.location) return undefined;
    const next = new URL(r.headers.location, hop.url);
    if (!sameOrigin(next, this.baseUrl))
      throw this.fail(
        'POLL_FOREIGN_ORIGIN',
        `redirect to another origin ${next.origin} refused`,
        spec,
        hop.url,
        {
          status: r.status,
        },
      );
    if (++tally.redirects > this.limits.maxRedirects)
      throw this.fail('POLL_HTTP_STATUS', `more than ${this.limits.maxRedirects} redirects`, spec, hop.url, {
        status: r.status,
      });
    return { url: next, method: r.status === 303 ? 'GET' : hop.method };
  }

  /** After a 401: fresh credentials (new token, next key) a bounded number of times. */
  private async reauthStep(spec: RequestSpec, hop: Hop, tally: Tally, r: Answer): Promise<void> {
    if (spec.auth !== false && tally.reauths < this.maxReauth && (await this.auth.onUnauthorized())) {
      tally.reauths++;
      this.stats.reauths++;
      this.opts.log?.info(
        { event: 'http.reauth', connection: this.connectionId, endpoint: spec.endpoint },
        'credentials rejected, re-authenticating',
      );
      return;
    }
    throw this.fail('POLL_AUTH', `credentials rejected: ${statusText(r)}`, spec, hop.url, {
      status: r.status,
    });
  }

  /**
   * The one place retries are counted and waited for: transport failures and retriable statuses
   * against maxRetries, 429s against maxRateLimitRetries and rateLimitMaxWaitMs. Every wait is at
   * least a floor (retryFloorMs after a 429 or any Retry-After, backoffBaseMs otherwise), so a
   * provider answering Retry-After: 0 cannot make a tight loop. Throws when a limit is reached.
   */
  private async retryStep(
    spec: RequestSpec,
    hop: Hop,
    tally: Tally,
    o: Outcome,
    rule: PolicyRule,
  ): Promise<void> {
    const url = hop.url;
    if (o.kind === 'failure') {
      const what = o.deadline
        ? `no complete answer within ${this.limits.requestDeadlineMs / 1000} s`
        : `${o.failure === 'timeout' ? 'no answer in time' : 'request failed'}: ${errorMessage(o.err)}`;
      if (rule.action !== 'retry' || tally.failures >= this.limits.maxRetries)
        throw this.fail(
          rule.code,
          `${what}${tally.failures > 0 ? ` after ${tally.failures} retries` : ''}`,
          spec,
          url,
          {
            retriable: true,
            cause: o.err,
          },
        );
      return this.pause(spec, tally, this.backoffWait(tally), false, o.failure, {
        failure: o.failure,
        url: this.redact(url),
        message: `${o.deadline ? 'deadline' : o.failure} error, retrying`,
      });
    }

    const status = o.status;
    const limited = rule.action === 'rateLimited';
    const retryAfter = parseRetryAfter(o.headers['retry-after'], this.now());
    const failWith = (what: string): MeterflowError =>
      this.fail(rule.code, what, spec, url, { status, retriable: true });
    if (retryAfter !== undefined && retryAfter > this.limits.retryAfterMaxMs)
      throw failWith(
        `${limited ? 'rate limited' : statusText(o)} with Retry-After ${Math.round(retryAfter / 1000)} s, longer than ${this.limits.retryAfterMaxMs / 1000} s`,
      );
    if (limited && tally.rateLimited >= this.limits.maxRateLimitRetries)
      throw failWith(`rate limited ${tally.rateLimited + 1} times in a row`);
    if (!limited && tally.failures >= this.limits.maxRetries)
      throw failWith(`${statusText(o)} after ${tally.failures} retries`);
    const floor = limited || retryAfter !== undefined ? this.limits.retryFloorMs : this.limits.backoffBaseMs;
    const delay = Math.max(retryAfter ?? 0, this.backoff(tally.retries), floor);
    if (limited && tally.rateWaitMs + delay > this.limits.rateLimitMaxWaitMs)
      throw failWith(`still rate limited after waiting ${Math.round(tally.rateWaitMs / 1000)} s`);
    return this.pause(spec, tally, delay, limited, limited ? 'rate_limited' : `status_${status}`, {
      status,
      message: limited ? 'rate limited, waiting' : `status ${status}, retrying`,
    });
  }

  private backoffWait(tally: Tally): number {
    return Math.max(this.backoff(tally.retries), this.limits.backoffBaseMs);
  }

  /** Counts, logs and waits out one retry. */
  private async pause(
    spec: RequestSpec,
    tally: Tally,
    delay: number,
    limited: boolean,
    reason: string,
    fields: Record<string, unknown> & { message: string },
  ): Promise<void> {
    const { message, ...rest } = fields;
    this.opts.log?.warn(
      {
        event: limited ? 'http.rate_limited' : 'http.retry',
        connection: this.connectionId,
        endpoint: spec.endpoint,
        page: spec.page,
        attempt: tally.retries,
        delayMs: delay,
        ...rest,
      },
      message,
    );
    if (limited) {
      tally.rateLimited++;
      tally.rateWaitMs += delay;
      this.stats.rateLimited++;
    } else tally.failures++;
    this.stats.retries++;
    pollMetrics.retries.inc({ connection: this.connectionId, reason });
    await this.sleep(delay, spec.signal);
  }

  private async readLimited(
    body: Dispatcher.ResponseData['body'],
    headers: Record<string, string>,
    spec: RequestSpec,
    url: URL,
    status: number,
  ): Promise<string> {
    const max = this.limits.maxResponseBytes;
    const declared = Number(headers['content-length']);
    if (Number.isFinite(declared) && declared > max) {
      discard(body);
      throw this.fail(
        'POLL_RESPONSE_TOO_LARGE',
        `response of ${declared} bytes exceeds the limit of ${max} bytes`,
        spec,
        url,
        { status },
      );
    }
    const chunks: Buffer[] = [];
    let size = 0;
    for await (const chunk of body) {
      const b = chunk as Buffer;
      size += b.length;
      if (size > max) {
        discard(body);
        throw this.fail('POLL_RESPONSE_TOO_LARGE', `response exceeds the limit of ${max} bytes`, spec, url, {
          status,
        });
      }
      chunks.push(b);
    }
    return Buffer.concat(chunks).toString('utf8');
  }

  async close(): Promise<void> {
    if (this.ownsDispatcher) await this.dispatcher.close();
  }
}

/** Where the request goes next: a redirect may change both. */
interface Hop {
  url: URL;
  method: HttpMethod;
}

/** A response with its whole body. */
interface Answer {
  kind: 'answer';
  status: number;
  headers: Record<string, string>;
  text: string;
}

/** No response: the connection failed, or no (complete) answer came in time. */
interface Failure {
  kind: 'failure';
  failure: TransportFailure;
  err: unknown;
  /** The attempt ran out of requestDeadlineMs (rather than an idle timeout). */
  deadline: boolean;
}

type Outcome = Answer | Failure;

/** Everything one request has used up so far; the limits are checked in HttpClient.retryStep. */
class Tally {
  /** Retries of transport failures and retriable statuses (limit: maxRetries). */
  failures = 0;
  /** Retries after a 429 (limit: maxRateLimitRetries) and the time waited on them. */
  rateLimited = 0;
  rateWaitMs = 0;
  reauths = 0;
  redirects = 0;
  /** All retries: the backoff exponent. */
  get retries(): number {
    return this.failures + this.rateLimited;
  }
}

function statusText(r: Answer): string {
  const phrase = providerErrorPhrase(r.text);
  return `status ${r.status}${phrase ? ` (${phrase})` : ''}`;
}

/** At most `max` characters, anything outside printable ASCII as "?". */
function printable(s: string, max: number): string {
  return s.slice(0, max).replace(/[^\x20-\x7e]/g, '?');
}

function lower(h: Record<string, string> | undefined): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(h ?? {})) out[k.toLowerCase()] = v;
  return out;
}

/**
 * Drops a body we refuse. Destroying an undici body emits an AbortError on the stream; with no
 * listener that would surface as an uncaught exception after we already failed the request.
 */
function discard(body: Dispatcher.ResponseData['body']): void {
  body.on('error', () => {});
  body.destroy();
}
