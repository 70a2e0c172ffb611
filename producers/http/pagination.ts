/**
 * Pagination styles: offset/limit, page/size (with an optional total), cursor/next token (a body
 * field holding a token or a next URL) and RFC 8288 Link headers. Pages are yielded as they
 * arrive. A cursor, next URL or page of items seen before in the same listing stops with
 * POLL_PAGINATION_LOOP, and so does a listing longer than connection.http.maxPages; a next URL on
 * another origin than the base URL is refused with POLL_FOREIGN_ORIGIN before anything
 * (credentials included) is sent there. An absent item array is POLL_RESPONSE_SCHEMA.
 */
import { createHash } from 'node:crypto';
import { MeterflowError } from '../../lib/errors.js';
import type { PaginationConfig } from '../../schemas/connection.js';
import type { BodyFormat } from './body.js';
import type { HttpClient, HttpResponse, QueryValue } from './client.js';
import { getArray, getPath, getString } from './paths.js';
import { sameOrigin } from './url.js';

export interface PageRequest {
  /** Path relative to the base URL, or an absolute URL on the base URL's origin. */
  url: string;
  query?: Record<string, QueryValue>;
  headers?: Record<string, string>;
  endpoint: string;
  format?: BodyFormat;
  pagination: PaginationConfig;
  /** Dot path of the item array in the parsed body ("" = the body is the array). */
  itemsPath: string;
  signal?: AbortSignal | undefined;
  /** Overrides connection.http.maxPages. */
  maxPages?: number;
}

export interface Page {
  res: HttpResponse;
  body: unknown;
  items: unknown[];
  /** request_page of the envelopes: offset, page number or page index. */
  label: string;
  index: number;
  /** The listing's size as the provider states it (offset: total items; page: total pages), if configured. */
  total: number | undefined;
}

/** Parses an RFC 8288 Link header into rel → URL (first occurrence wins). */
export function parseLinkHeader(value: string | undefined): Map<string, string> {
  const out = new Map<string, string>();
  if (!value) return out;
  const re = /<([^>]*)>\s*((?:;\s*[^;,]+)*)/g;
  let m: RegExpExecArray | null;
  while ((m = re.exec(value)) !== null) {
    const target = m[1]!;
    const relMatch = /;\s*rel\s*=\s*(?:"([^"]*)"|([^\s;,]+))/i.exec(m[2] ?? '');
    const rels = (relMatch?.[1] ?? relMatch?.[2] ?? '').toLowerCase().split(/\s+/).filter(Boolean);
    for (const rel of rels) if (!out.has(rel)) out.set(rel, target);
  }
  return out;
}

function num(v: unknown): number | undefined {
  const n = typeof v === 'number' ? v : typeof v === 'string' && v.trim() !== '' ? Number(v) : NaN;
  return Number.isFinite(n) ? n : undefined;
}

/** A digest of a page's items, item by item (no second copy of a large page). */
function itemsDigest(items: unknown[]): string {
  const h = createHash('sha1');
  for (const it of items) h.update(JSON.stringify(it) ?? 'undefined').update('\n');
  return h.digest('hex');
}

/** What one listing has seen, first in first out beyond `max` entries so memory stays bounded. */
class Seen {
  private readonly keys = new Set<string>();
  constructor(private readonly max: number) {}
  /** False when `key` was seen before; records it otherwise. */
  add(key: string): boolean {
    if (this.keys.has(key)) return false;
    this.keys.add(key);
    if (this.keys.size > this.max) this.keys.delete(this.keys.values().next().value!);
    return true;
  }
}

function shapeOf(v: unknown): string {
  if (v === undefined) return 'absent';
  if (Array.isArray(v)) return 'an array';
  return `a ${typeof v}`;
}

export async function* paginate(http: HttpClient, req: PageRequest): AsyncGenerator<Page> {
  const p = req.pagination;
  const maxPages = req.maxPages ?? http.maxPages;
  const where = (label: string): Record<string, unknown> => ({
    connection: http.connectionId,
    endpoint: req.endpoint,
    page: label,
  });
  let url: string | URL = req.url;
  let query: Record<string, QueryValue> = { ...req.query };
  let offset = 0;
  let pageNo = p.type === 'page' ? p.firstPage : 0;
  // Cursors and next URLs, and digests of the pages' items: a provider cycling A,B,A,B (or
  // handing out ever-new cursors over the same pages) is caught on the first repeat.
  const seen = new Seen(http.maxPageDigests);
  const loop = (label: string, url: string, what: string): MeterflowError =>
    new MeterflowError(
      'POLL_PAGINATION_LOOP',
      `connection ${http.connectionId}, endpoint ${req.endpoint}, page ${label}: ${what}`,
      { context: { ...where(label), url } },
    );

  for (let index = 0; index < maxPages; index++) {
    if (p.type === 'offset') query = { ...query, [p.offsetParam]: offset, [p.limitParam]: p.limit };
    if (p.type === 'page') query = { ...query, [p.pageParam]: pageNo, [p.sizeParam]: p.size };
    const label = p.type === 'offset' ? String(offset) : p.type === 'page' ? String(pageNo) : String(index);
    const { res, body } = await http.fetch({
      url,
      query,
      headers: req.headers,
      endpoint: req.endpoint,
      page: label,
      format: req.format ?? 'json',
      signal: req.signal,
    });
    const items = getArray(body, req.itemsPath);
    if (items === undefined) {
      const found = shapeOf(getPath(body, req.itemsPath));
      throw new MeterflowError(
        'POLL_RESPONSE_SCHEMA',
        `connection ${http.connectionId}, endpoint ${req.endpoint}, page ${label}: no item array at "${req.itemsPath}" (${found === 'absent' ? 'the key is absent' : `found ${found}`}; an empty list must be [] or null) (${res.url})`,
        {
          context: { ...where(label), url: res.url, itemsPath: req.itemsPath },
        },
      );
    }
    const total =
      p.type === 'offset' && p.totalPath
        ? num(getPath(body, p.totalPath))
        : p.type === 'page' && p.totalPagesPath
          ? num(getPath(body, p.totalPagesPath))
          : undefined;
    yield { res, body, items, label, index, total };

    // A provider that ignores the page parameter, or cycles through pages, serves items it
    // already served. Items, not the whole body: a body may echo the page number.
    if (p.type !== 'none' && items.length > 0 && !seen.add(`items:${itemsDigest(items)}`))
      throw loop(label, res.url, 'the provider returned a page of items it returned before');

    switch (p.type) {
      case 'none':
        return;
      case 'offset': {
        if (items.length === 0) return;
        offset += items.length;
        if (total !== undefined ? offset >= total : items.length < p.limit) return;
        break;
      }
      case 'page': {
        if (total !== undefined) {
          if (pageNo + 1 - p.firstPage >= total) return;
        } else if (items.length < p.size) return;
        if (items.length === 0) return;
        pageNo++;
        break;
      }
      case 'cursor': {
        const fromHeader = p.nextHeader ? res.headers[p.nextHeader.toLowerCase()]?.trim() : undefined;
        const next =
          (p.nextPath !== undefined ? getString(body, p.nextPath) : undefined) ??
          (fromHeader ? fromHeader : undefined);
        if (next === undefined) return;
        if (!seen.add(`cursor:${next}`)) throw loop(label, res.url, 'cursor repeated; stopping');
        if (/^https?:\/\//i.test(next) || next.startsWith('/')) {
          url = checkedNext(http, req.endpoint, label, next, res.url);
          query = {};
        } else {
          query = { ...query, [p.cursorParam]: next };
        }
        break;
      }
      case 'link': {
        const nextRaw = parseLinkHeader(res.headers.link).get('next');
        if (!nextRaw) return;
        const next = checkedNext(http, req.endpoint, label, nextRaw, res.url);
        const key = http.redact(next);
        seen.add(`url:${res.url}`);
        if (key === res.url || !seen.add(`url:${key}`))
          throw loop(label, res.url, `Link rel="next" repeats ${key}`);
        url = next;
        query = {};
        break;
      }
    }
  }
  throw new MeterflowError(
    'POLL_PAGINATION_LOOP',
    `connection ${http.connectionId}, endpoint ${req.endpoint}: more than ${maxPages} pages`,
    {
      context: { connection: http.connectionId, endpoint: req.endpoint },
    },
  );
}

/** Resolves a next URL against the current one and refuses other origins. */
function checkedNext(http: HttpClient, endpoint: string, label: string, next: string, current: string): URL {
  let u: URL;
  try {
    u = new URL(next, current);
  } catch (cause) {
    throw new MeterflowError(
      'POLL_RESPONSE_MALFORMED',
      `connection ${http.connectionId}, endpoint ${endpoint}, page ${label}: next page URL does not parse`,
      {
        cause,
        context: { connection: http.connectionId, endpoint, page: label },
      },
    );
  }
  if (!sameOrigin(u, http.baseUrl)) {
    throw new MeterflowError(
      'POLL_FOREIGN_ORIGIN',
      `connection ${http.connectionId}, endpoint ${endpoint}, page ${label}: next page is on ${u.origin}, not on the base URL's origin ${new URL(http.baseUrl).origin}; refused`,
      { context: { connection: http.connectionId, endpoint, page: label, origin: u.origin } },
    );
  }
  return u;
}
