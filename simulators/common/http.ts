/**
 * Tiny HTTP plumbing shared by the provider simulators: a node:http server on 127.0.0.1 with a
 * random port, a path-template router, request counting and the generic fault layer
 * (429 storms, 5xx bursts, slow responses, HTML error pages, malformed JSON, oversized bodies).
 */
import { createServer } from 'node:http';
import type { IncomingHttpHeaders, IncomingMessage, Server, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface RunningServer {
  /** Base URL without trailing slash, e.g. http://127.0.0.1:43121 */
  url: string;
  port: number;
  server: Server;
  close(): Promise<void>;
}

/** Start a node:http server on 127.0.0.1, random port. */
export async function startHttpServer(
  listener: (req: IncomingMessage, res: ServerResponse) => void,
  host = '127.0.0.1',
): Promise<RunningServer> {
  const server = createServer(listener);
  server.keepAliveTimeout = 5_000;
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const port = (server.address() as AddressInfo).port;
  let closed: Promise<void> | null = null;
  return {
    url: `http://${host}:${port}`,
    port,
    server,
    close: () => {
      closed ??= new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      });
      return closed;
    },
  };
}

// ---------------------------------------------------------------------------------------------
// Requests, responses, routing

export interface SimRequest {
  method: string;
  url: URL;
  path: string;
  query: URLSearchParams;
  headers: IncomingHttpHeaders;
  body: Buffer;
  params: Record<string, string>;
  /** Route's endpoint name, e.g. 'meters.list'. */
  endpoint: string;
}

export interface SimResponse {
  status: number;
  headers?: Record<string, string>;
  body?: string | Buffer;
}

export function header(req: SimRequest, name: string): string | undefined {
  const v = req.headers[name.toLowerCase()];
  return Array.isArray(v) ? v[0] : v;
}

export function json(status: number, body: unknown, headers: Record<string, string> = {}): SimResponse {
  return {
    status,
    headers: { 'content-type': 'application/json; charset=utf-8', ...headers },
    body: JSON.stringify(body),
  };
}

export function text(
  status: number,
  body: string,
  contentType: string,
  headers: Record<string, string> = {},
): SimResponse {
  return { status, headers: { 'content-type': contentType, ...headers }, body };
}

export type RouteHandler = (req: SimRequest) => SimResponse | Promise<SimResponse>;

export interface Route {
  method: string;
  /** Path template with :params, e.g. /plug/meters/:id */
  path: string;
  /** Endpoint name used in stats and fault filters. */
  endpoint: string;
  handler: RouteHandler;
}

interface CompiledRoute extends Route {
  re: RegExp;
  names: string[];
}

function compile(route: Route): CompiledRoute {
  const names: string[] = [];
  const re = new RegExp(
    '^' +
      route.path
        .split('/')
        .map((seg) => {
          if (seg.startsWith(':')) {
            names.push(seg.slice(1));
            return '([^/]+)';
          }
          return seg.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
        })
        .join('/') +
      '/?$',
  );
  return { ...route, re, names };
}

// ---------------------------------------------------------------------------------------------
// Stats

export interface SimStats {
  total: number;
  byEndpoint: Record<string, number>;
  byStatus: Record<string, number>;
  /** Faults injected, by fault name. */
  faults: Record<string, number>;
}

export class StatsCounter {
  private s: SimStats = { total: 0, byEndpoint: {}, byStatus: {}, faults: {} };
  request(endpoint: string): void {
    this.s.total++;
    this.s.byEndpoint[endpoint] = (this.s.byEndpoint[endpoint] ?? 0) + 1;
  }
  status(status: number): void {
    const k = String(status);
    this.s.byStatus[k] = (this.s.byStatus[k] ?? 0) + 1;
  }
  fault(name: string): void {
    this.s.faults[name] = (this.s.faults[name] ?? 0) + 1;
  }
  snapshot(): SimStats {
    return structuredClone(this.s);
  }
  reset(): void {
    this.s = { total: 0, byEndpoint: {}, byStatus: {}, faults: {} };
  }
}

// ---------------------------------------------------------------------------------------------
// Faults

/**
 * When a fault fires. All fields optional: with none given the fault fires on every request.
 * - count: fire on this many matching requests, then stop (default: unlimited);
 * - after: let this many matching requests pass first (e.g. "expire mid-run");
 * - endpoints: only requests to these endpoint names match (default: all endpoints).
 */
export interface FaultTrigger {
  count?: number;
  after?: number;
  endpoints?: string[];
}

/** A fault switch: true (always), false/undefined (off) or a trigger with extra settings. */
export type FaultSwitch<Extra extends object = object> = boolean | (FaultTrigger & Extra);

/** Faults every simulator supports, applied before/after the route handler. */
export interface CommonFaults {
  /** 429 with Retry-After (seconds). */
  rateLimit?: FaultSwitch<{ retryAfterSeconds?: number }>;
  /** 5xx burst (default status 503). */
  serverError?: FaultSwitch<{ status?: number }>;
  /** Delay every matching response by ms. */
  slow?: FaultSwitch<{ delayMs: number }>;
  /** Nginx-like HTML error page with status 200 or 502 (default 502). */
  htmlError?: FaultSwitch<{ status?: 200 | 502 }>;
  /** JSON body truncated mid-way (status 200). */
  malformedJson?: FaultSwitch;
  /** A 200 JSON answer replaced by `{}`: the item array (and everything else) is absent. */
  emptyObject?: FaultSwitch;
  /** A 200 JSON answer whose arrays (the body itself or its top-level fields) are emptied: a listing that finds nothing. */
  emptyList?: FaultSwitch;
  /** Response padded with whitespace to `bytes` (default 32 MiB), Content-Length set. */
  oversized?: FaultSwitch<{ bytes?: number }>;
  /**
   * Usage endpoints: every `every`-th record (default 10) of a response is made invalid (a
   * non-numeric or negative value, an end before its start, a timestamp without offset or an
   * impossible date, a missing field — provider-specific variants, cycled).
   */
  invalidRecords?: FaultSwitch<{ every?: number }>;
  /** Usage endpoints: every `every`-th record (default 10) is repeated right after itself. */
  duplicateRecords?: FaultSwitch<{ every?: number }>;
}

type AnyFaults = Record<string, FaultSwitch<Record<string, unknown>> | undefined>;

/** The emptyObject / emptyList faults on a 200 JSON answer (bad-input modes for "found nothing"). */
function emptied<F extends CommonFaults>(
  out: SimResponse,
  f: FaultController<F>,
  endpoint: string,
): SimResponse {
  if (f.take('emptyObject', endpoint)) return { ...out, body: '{}' };
  if (!f.take('emptyList', endpoint)) return out;
  const text = typeof out.body === 'string' ? out.body : (out.body?.toString('utf8') ?? '');
  const v = JSON.parse(text) as unknown;
  const body = Array.isArray(v)
    ? []
    : Object.fromEntries(Object.entries(v as object).map(([k, x]) => [k, Array.isArray(x) ? [] : x]));
  return { ...out, body: JSON.stringify(body) };
}

/** Holds the current fault switches and their firing counters. */
export class FaultController<F extends object> {
  private faults: F;
  private readonly seen = new Map<string, number>();
  private readonly fired = new Map<string, number>();

  constructor(
    initial: F | undefined,
    private readonly stats: StatsCounter,
  ) {
    this.faults = { ...(initial ?? ({} as F)) };
  }

  /** Replace all switches (counters restart). `set({})` turns everything off. */
  set(faults: F): void {
    this.faults = { ...faults };
    this.seen.clear();
    this.fired.clear();
  }

  get(): F {
    return { ...this.faults };
  }

  /** True if the fault is configured at all (without consuming it). */
  enabled(name: keyof F & string): boolean {
    const sw = (this.faults as AnyFaults)[name];
    return sw !== undefined && sw !== false;
  }

  /**
   * Decide whether fault `name` fires for a request to `endpoint`; consumes one firing.
   * Returns the switch's settings object ({} for `true`) or undefined.
   */
  take<K extends keyof F & string>(
    name: K,
    endpoint: string,
  ): Exclude<F[K], boolean | undefined> | Record<string, never> | undefined {
    const sw = (this.faults as AnyFaults)[name];
    if (sw === undefined || sw === false) return undefined;
    const trig: FaultTrigger = sw === true ? {} : sw;
    if (trig.endpoints && !trig.endpoints.includes(endpoint)) return undefined;
    const seen = (this.seen.get(name) ?? 0) + 1;
    this.seen.set(name, seen);
    if (trig.after !== undefined && seen <= trig.after) return undefined;
    const fired = this.fired.get(name) ?? 0;
    if (trig.count !== undefined && fired >= trig.count) return undefined;
    this.fired.set(name, fired + 1);
    this.stats.fault(name);
    return (sw === true ? {} : sw) as Exclude<F[K], boolean | undefined>;
  }
}

export const HTML_ERROR_PAGE = (status: number): string =>
  `<!DOCTYPE html>\n<html>\n<head><title>${status} Bad Gateway</title></head>\n<body>\n<center><h1>${status} Bad Gateway</h1></center>\n<hr><center>nginx/1.24.0</center>\n</body>\n</html>\n`;

// ---------------------------------------------------------------------------------------------
// The simulator server

export interface SimServerOptions<F extends CommonFaults> {
  routes: Route[];
  faults: FaultController<F>;
  stats: StatsCounter;
  /** Endpoint names that the generic faults never touch (e.g. none by default). */
  faultExempt?: string[];
  /** Maximum request body size in bytes (default 1 MiB). */
  maxBodyBytes?: number;
}

async function readBody(req: IncomingMessage, limit: number): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const c of req) {
    const b = c as Buffer;
    size += b.length;
    if (size > limit) throw new Error('request body too large');
    chunks.push(b);
  }
  return Buffer.concat(chunks);
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

async function writePadded(res: ServerResponse, body: Buffer, total: number): Promise<void> {
  res.write(body);
  let left = total - body.length;
  const chunk = Buffer.alloc(64 * 1024, 0x20);
  while (left > 0 && !res.destroyed) {
    const piece = left >= chunk.length ? chunk : chunk.subarray(0, left);
    left -= piece.length;
    if (!res.write(piece)) {
      await new Promise<void>((resolve) => {
        const done = (): void => {
          res.off('drain', done);
          res.off('close', done);
          resolve();
        };
        res.on('drain', done);
        res.on('close', done);
      });
    }
  }
  res.end();
}

/** Start a simulator: routing, stats, generic faults. */
export async function startSimServer<F extends CommonFaults>(
  opts: SimServerOptions<F>,
): Promise<RunningServer> {
  const routes = opts.routes.map(compile);
  const exempt = new Set(opts.faultExempt ?? []);
  const maxBody = opts.maxBodyBytes ?? 1024 * 1024;
  let base = '';

  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const url = new URL(req.url ?? '/', base);
    const method = (req.method ?? 'GET').toUpperCase();
    let matched: { route: CompiledRoute; params: Record<string, string> } | undefined;
    let pathMatched = false;
    for (const r of routes) {
      const m = r.re.exec(url.pathname);
      if (!m) continue;
      pathMatched = true;
      if (r.method !== method) continue;
      const params: Record<string, string> = {};
      r.names.forEach((n, i) => (params[n] = decodeURIComponent(m[i + 1] ?? '')));
      matched = { route: r, params };
      break;
    }
    const endpoint = matched?.route.endpoint ?? 'unmatched';
    opts.stats.request(endpoint);

    let out: SimResponse;
    let padTo: number | undefined;
    const f = opts.faults;
    const faultable = matched !== undefined && !exempt.has(endpoint);

    const body = await readBody(req, maxBody).catch(() => null);
    if (body === null) {
      out = json(413, { error: 'payload_too_large', error_description: 'request body too large' });
    } else if (!matched) {
      out = pathMatched
        ? json(405, {
            error: 'method_not_allowed',
            error_description: `${method} not allowed on ${url.pathname}`,
          })
        : json(404, { error: 'not_found', error_description: `no such endpoint: ${url.pathname}` });
    } else {
      const slow = faultable ? f.take('slow', endpoint) : undefined;
      if (slow && 'delayMs' in slow) await sleep(Number(slow.delayMs));
      const rl = faultable ? f.take('rateLimit', endpoint) : undefined;
      const se = rl ? undefined : faultable ? f.take('serverError', endpoint) : undefined;
      const he = rl || se ? undefined : faultable ? f.take('htmlError', endpoint) : undefined;
      if (rl) {
        const ra = 'retryAfterSeconds' in rl ? Number(rl.retryAfterSeconds) : 1;
        out = json(
          429,
          { error: 'rate_limited', error_description: 'Too many requests, retry later' },
          { 'retry-after': String(ra) },
        );
      } else if (se) {
        const st = 'status' in se && se.status !== undefined ? Number(se.status) : 503;
        out = json(st, {
          error: 'server_error',
          error_description: 'The server encountered a temporary error',
        });
      } else if (he) {
        const st = 'status' in he && he.status !== undefined ? Number(he.status) : 502;
        out = text(st, HTML_ERROR_PAGE(502), 'text/html; charset=utf-8');
      } else {
        const sreq: SimRequest = {
          method,
          url,
          path: url.pathname,
          query: url.searchParams,
          headers: req.headers,
          body,
          params: matched.params,
          endpoint,
        };
        try {
          out = await matched.route.handler(sreq);
        } catch (err) {
          out = json(500, {
            error: 'simulator_bug',
            error_description: String((err as Error)?.stack ?? err),
          });
        }
        const ct = out.headers?.['content-type'] ?? '';
        if (faultable && out.status < 300 && ct.includes('json')) out = emptied(out, f, endpoint);
        if (faultable && out.status < 300 && ct.includes('json') && f.take('malformedJson', endpoint)) {
          const s = typeof out.body === 'string' ? out.body : (out.body?.toString('utf8') ?? '');
          out = { ...out, body: s.slice(0, Math.max(1, Math.floor(s.length * 0.6))) + ',"trunc' };
        }
        const ov = faultable && out.status < 300 ? f.take('oversized', endpoint) : undefined;
        if (ov) padTo = 'bytes' in ov && ov.bytes !== undefined ? Number(ov.bytes) : 32 * 1024 * 1024;
      }
    }

    opts.stats.status(out.status);
    const buf = typeof out.body === 'string' ? Buffer.from(out.body, 'utf8') : (out.body ?? Buffer.alloc(0));
    const headers: Record<string, string> = { ...(out.headers ?? {}) };
    const length = padTo !== undefined ? Math.max(padTo, buf.length) : buf.length;
    headers['content-length'] = String(length);
    res.writeHead(out.status, headers);
    if (method === 'HEAD') {
      res.end();
      return;
    }
    if (padTo !== undefined && length > buf.length) await writePadded(res, buf, length);
    else res.end(buf);
  };

  const server = await startHttpServer((req, res) => {
    handle(req, res).catch((err: unknown) => {
      if (!res.headersSent) {
        res.writeHead(500, { 'content-type': 'text/plain' });
        res.end(String(err));
      } else res.destroy();
    });
  });
  base = server.url;
  return server;
}

/** Parse an integer query parameter; undefined if absent, NaN if invalid. */
export function intParam(q: URLSearchParams, name: string): number | undefined {
  const v = q.get(name);
  if (v === null || v === '') return undefined;
  return /^-?\d+$/.test(v) ? Number(v) : Number.NaN;
}

export type JsonRecord = Record<string, unknown>;

/**
 * Apply the record-level faults (invalidRecords, duplicateRecords) to the records of one response.
 * `corruptors` are the provider's ways of making a record invalid; they are used in turn.
 */
export function applyRecordFaults<F extends CommonFaults>(
  records: JsonRecord[],
  faults: FaultController<F>,
  endpoint: string,
  corruptors: Array<(r: JsonRecord) => JsonRecord>,
): JsonRecord[] {
  if (records.length === 0) return records;
  let out = records;
  const inv = faults.take('invalidRecords', endpoint);
  if (inv && corruptors.length > 0) {
    const every = 'every' in inv && typeof inv.every === 'number' && inv.every > 0 ? inv.every : 10;
    let k = 0;
    out = out.map((r, i) =>
      (i + 1) % every === 0
        ? (corruptors[k++ % corruptors.length] as (r: JsonRecord) => JsonRecord)({ ...r })
        : r,
    );
  }
  const dup = faults.take('duplicateRecords', endpoint);
  if (dup) {
    const every = 'every' in dup && typeof dup.every === 'number' && dup.every > 0 ? dup.every : 10;
    out = out.flatMap((r, i) => ((i + 1) % every === 0 ? [r, { ...r }] : [r]));
  }
  return out;
}

/** What every simulator hands back besides its own extras: its address, shutdown, stats and faults. */
export interface SimulatorHandle<F extends CommonFaults> {
  url: string;
  close(): Promise<void>;
  stats(): SimStats;
  resetStats(): void;
  setFaults(faults: F): void;
}

export function simulatorHandle<F extends CommonFaults>(
  server: RunningServer,
  stats: StatsCounter,
  faults: FaultController<F>,
): SimulatorHandle<F> {
  return {
    url: server.url,
    close: () => server.close(),
    stats: () => stats.snapshot(),
    resetStats: () => stats.reset(),
    setFaults: (f) => faults.set(f),
  };
}
