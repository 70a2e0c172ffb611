/**
 * The HTTP core every connector uses: undici with a keep-alive Agent and timeouts, the request
 * budget, authentication, the error policy table (retry, rate limit, re-auth, fail), a response
 * size limit enforced while streaming, and same-origin redirects only. Every error is a
 * MeterflowError naming connection, endpoint, page and a URL without credentials.
 */
import { pollMetrics } from '../../lib/metrics.js';
import { Agent, request, type Dispatcher } from 'undici';
import { errorMessage, MeterflowError, type ErrorCode } from '../../lib/errors.js';
import type { Logger } from '../../lib/log.js';
import { baseUrlOf, type ConnectionConfig } from '../../schemas/connection.js';
import { createAuthenticator, maxReauths, providerErrorPhrase, type Authenticator } from './auth.js';
import { acceptHeader, parseBody, type BodyFormat } from './body.js';
import { defaultSleep, RequestBudget } from './budget.js';
import { HTTP_DEFAULTS, type HttpLimits } from './defaults.js';
import {
  backoffDelay,
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
    Pick<HttpLimits, 'rateLimitMaxWaitMs' | 'retryAfterMaxMs' | 'maxRedirects' | 'connectTimeoutMs'>
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
    this.sleep = opts.sleep ?? defaultSleep;
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

  /** Sends a request through budget, auth and the error policy; returns the successful response. */
  private backoff(attempt: number): number {
    return backoffDelay(attempt, {
      baseMs: this.limits.backoffBaseMs,
      maxMs: this.limits.backoffMaxMs,
      random: this.opts.random,
    });
  }

  /** Logs, counts and waits out the backoff before retrying a transient failure. */
  private async pauseForRetry(
    spec: RequestSpec,
    attempt: number,
    reason: string,
    fields: Record<string, unknown>,
    message: string,
  ): Promise<void> {
    const delay = this.backoff(attempt);
    this.opts.log?.warn(
      {
        event: 'http.retry',
        connection: this.connectionId,
        endpoint: spec.endpoint,
        page: spec.page,
        attempt,
        delayMs: delay,
        ...fields,
      },
      message,
    );
    this.stats.retries++;
    pollMetrics.retries.inc({ connection: this.connectionId, reason });
    await this.sleep(delay, spec.signal);
  }

  async send(spec: RequestSpec): Promise<HttpResponse> {
    let url = this.resolve(spec.url, spec.query);
    let method: HttpMethod = spec.method ?? 'GET';
    const format = spec.format ?? 'json';
    let attempt = 0;
    let reauths = 0;
    let redirects = 0;
    let rateWait = 0;
    for (;;) {
      spec.signal?.throwIfAborted();
      await this.budget.acquire({ endpoint: spec.endpoint, page: spec.page }, spec.signal);
      const headers: Record<string, string> = {
        accept: acceptHeader(format),
        ...lower(this.opts.defaultHeaders),
        ...lower(spec.headers),
      };
      let body: string | undefined;
      if (spec.json !== undefined && method !== 'GET') {
        body = JSON.stringify(spec.json);
        headers['content-type'] ??= 'application/json';
      } else if (spec.form !== undefined) {
        body = new URLSearchParams(spec.form).toString();
        headers['content-type'] = 'application/x-www-form-urlencoded';
      }
      const target = { url: new URL(url), headers };
      if (spec.auth !== false) await this.auth.apply(target);
      this.stats.requests++;
      const started = this.now();
      let status: number;
      let resHeaders: Record<string, string>;
      let text: string;
      try {
        const res = await request(target.url, {
          method,
          headers: target.headers,
          body,
          dispatcher: this.dispatcher,
          signal: spec.signal,
        });
        status = res.statusCode;
        resHeaders = flattenHeaders(res.headers);
        text = await this.readLimited(res.body, resHeaders, spec, url, status);
      } catch (err) {
        if (spec.signal?.aborted) throw spec.signal.reason;
        if (err instanceof MeterflowError) throw err;
        const failure = transportFailure(err);
        const rule = classify({ failure }, this.policy);
        if (rule.action === 'retry' && attempt < this.limits.maxRetries) {
          await this.pauseForRetry(
            spec,
            attempt,
            failure,
            { failure, url: this.redact(url) },
            `${failure} error, retrying`,
          );
          attempt++;
          continue;
        }
        throw this.fail(
          rule.code,
          `${failure === 'timeout' ? 'no answer in time' : 'request failed'}: ${errorMessage(err)}${attempt > 0 ? ` after ${attempt} retries` : ''}`,
          spec,
          url,
          {
            retriable: true,
            cause: err,
          },
        );
      }
      this.opts.onResponse?.({ status, headers: resHeaders }, this.budget);
      pollMetrics.requests.inc({
        connection: this.connectionId,
        endpoint: spec.endpoint,
        status: String(status),
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
          status,
          ms: this.now() - started,
          url: this.redact(url),
        },
        'response',
      );

      if (status >= 300 && status < 400 && resHeaders.location) {
        const next = new URL(resHeaders.location, url);
        if (!sameOrigin(next, this.baseUrl)) {
          throw this.fail(
            'POLL_FOREIGN_ORIGIN',
            `redirect to another origin ${next.origin} refused`,
            spec,
            url,
            { status },
          );
        }
        if (++redirects > this.limits.maxRedirects)
          throw this.fail('POLL_HTTP_STATUS', `more than ${this.limits.maxRedirects} redirects`, spec, url, {
            status,
          });
        if (status === 303) method = 'GET';
        url = next;
        continue;
      }

      if (spec.acceptStatus?.(status) || (status >= 200 && status < 300)) {
        return {
          status,
          headers: resHeaders,
          text,
          contentType: resHeaders['content-type'] ?? '',
          url: this.redact(url),
          endpoint: spec.endpoint,
          page: spec.page,
          receivedAt: this.now(),
          format,
        };
      }
      const rule = classify({ status }, this.policy);
      const phrase = providerErrorPhrase(text);
      const statusText = `status ${status}${phrase ? ` (${phrase})` : ''}`;
      switch (rule.action) {
        case 'success':
          return {
            status,
            headers: resHeaders,
            text,
            contentType: resHeaders['content-type'] ?? '',
            url: this.redact(url),
            endpoint: spec.endpoint,
            page: spec.page,
            receivedAt: this.now(),
            format,
          };
        case 'reauth':
          if (spec.auth !== false && reauths < this.maxReauth && (await this.auth.onUnauthorized())) {
            reauths++;
            this.stats.reauths++;
            this.opts.log?.info(
              { event: 'http.reauth', connection: this.connectionId, endpoint: spec.endpoint },
              'credentials rejected, re-authenticating',
            );
            continue;
          }
          throw this.fail('POLL_AUTH', `credentials rejected: ${statusText}`, spec, url, { status });
        case 'rateLimited': {
          const ra = parseRetryAfter(resHeaders['retry-after'], this.now());
          if (ra !== undefined && ra > this.limits.retryAfterMaxMs) {
            throw this.fail(
              'POLL_HTTP_STATUS',
              `rate limited with Retry-After ${Math.round(ra / 1000)} s, longer than ${this.limits.retryAfterMaxMs / 1000} s`,
              spec,
              url,
              { status, retriable: true },
            );
          }
          const delay = ra ?? this.backoff(attempt);
          if (rateWait + delay > this.limits.rateLimitMaxWaitMs) {
            throw this.fail(
              'POLL_HTTP_STATUS',
              `still rate limited after waiting ${Math.round(rateWait / 1000)} s`,
              spec,
              url,
              { status, retriable: true },
            );
          }
          rateWait += delay;
          if (ra === undefined) attempt++;
          this.stats.retries++;
          this.stats.rateLimited++;
          pollMetrics.retries.inc({ connection: this.connectionId, reason: 'rate_limited' });
          this.opts.log?.warn(
            {
              event: 'http.rate_limited',
              connection: this.connectionId,
              endpoint: spec.endpoint,
              page: spec.page,
              delayMs: delay,
            },
            'rate limited, waiting',
          );
          await this.sleep(delay, spec.signal);
          continue;
        }
        case 'retry':
          if (attempt < this.limits.maxRetries) {
            await this.pauseForRetry(
              spec,
              attempt,
              `status_${status}`,
              { status },
              `status ${status}, retrying`,
            );
            attempt++;
            continue;
          }
          throw this.fail(rule.code, `${statusText} after ${attempt} retries`, spec, url, {
            status,
            retriable: true,
          });
        case 'fail':
          throw this.fail(rule.code, statusText, spec, url, { status });
      }
    }
  }

  /** Sends and parses the body in the expected format. */
  async fetch(spec: RequestSpec): Promise<{ res: HttpResponse; body: unknown }> {
    const res = await this.send(spec);
    const body = parseBody(res.format, res.contentType, res.text, {
      connection: this.connectionId,
      endpoint: spec.endpoint,
      url: res.url,
      page: spec.page,
    });
    return { res, body };
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
      body.destroy();
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
        body.destroy();
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

function lower(h: Record<string, string> | undefined): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(h ?? {})) out[k.toLowerCase()] = v;
  return out;
}
