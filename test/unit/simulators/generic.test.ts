import { describe, it, expect, afterEach } from 'vitest';
import { XMLParser } from 'fast-xml-parser';
import { startGenericJsonSimulator } from '../../../simulators/generic-json.js';
import type { GenericJsonOptions, GenericJsonSimulator } from '../../../simulators/generic-json.js';
import { startGenericXmlCsvSimulator } from '../../../simulators/generic-xml-csv.js';
import type { GenericXmlCsvOptions, GenericXmlCsvSimulator } from '../../../simulators/generic-xml-csv.js';

const closers: Array<() => Promise<void>> = [];
afterEach(async () => {
  await Promise.all(closers.splice(0).map((c) => c()));
});

async function startA(o: GenericJsonOptions = {}): Promise<GenericJsonSimulator> {
  const s = await startGenericJsonSimulator({ sites: 6, ...o });
  closers.push(() => s.close());
  return s;
}
async function startB(o: GenericXmlCsvOptions = {}): Promise<GenericXmlCsvSimulator> {
  const s = await startGenericXmlCsvSimulator({ buildings: 7, ...o });
  closers.push(() => s.close());
  return s;
}

/** The fields the tests read from provider A and token bodies. */
interface ABody {
  meta: { offset: number; limit: number; total: number };
  data: Array<{ meter_id: string; read_at: string; value: number }>;
  error: string;
  access_token: string;
  refresh_token: string;
}

const getJson = async (url: string): Promise<{ status: number; body: ABody }> => {
  const r = await fetch(url);
  return { status: r.status, body: (await r.json()) as ABody };
};

/** Naive RFC 4180 line splitter, enough for the simulator's output. */
function parseCsv(text: string): Array<Record<string, string>> {
  const rows: string[][] = [];
  let cell = '';
  let row: string[] = [];
  let q = false;
  for (let i = 0; i < text.length; i++) {
    const c = text[i]!;
    if (q) {
      if (c === '"' && text[i + 1] === '"') {
        cell += '"';
        i++;
      } else if (c === '"') q = false;
      else cell += c;
    } else if (c === '"') q = true;
    else if (c === ',') {
      row.push(cell);
      cell = '';
    } else if (c === '\n') {
      row.push(cell.replace(/\r$/, ''));
      rows.push(row);
      row = [];
      cell = '';
    } else cell += c;
  }
  const [head, ...rest] = rows;
  return rest.map((r) => Object.fromEntries(head!.map((h, i) => [h, r[i] ?? ''])));
}

const xml = new XMLParser({
  parseTagValue: false,
  isArray: (name) => ['Building', 'Meter', 'Record'].includes(name),
});

describe('generic provider A (JSON, offset/limit, api_key, local readings)', () => {
  it('requires the api_key query parameter', async () => {
    const a = await startA();
    expect((await getJson(`${a.url}/api/sites`)).status).toBe(401);
    expect((await getJson(`${a.url}/api/sites?api_key=wrong`)).status).toBe(401);
    expect((await getJson(`${a.url}/api/sites?api_key=${a.apiKey}`)).status).toBe(200);
  });

  it('pages with offset/limit and a consistent total; deterministic from the seed', async () => {
    const a = await startA({ seed: 9 });
    const b = await startA({ seed: 9 });
    expect(a.truth().meters.map((m) => m.meter_id)).toEqual(b.truth().meters.map((m) => m.meter_id));
    const ids: string[] = [];
    let total = -1;
    for (let offset = 0; ; offset += 4) {
      const r = await getJson(`${a.url}/api/meters?api_key=${a.apiKey}&offset=${offset}&limit=4`);
      if (total < 0) total = r.body.meta.total;
      expect(r.body.meta).toEqual({ offset, limit: 4, total });
      if (r.body.data.length === 0) break;
      ids.push(...r.body.data.map((m) => m.meter_id));
    }
    expect(ids).toEqual(a.truth().meters.map((m) => m.meter_id));
    expect(total).toBe(ids.length);
  });

  it('gives local readings without offset; DST days have 23 and 25 hourly readings', async () => {
    const a = await startA({ gapRate: 0 });
    const m = a.truth().meters[0]!;
    const url = (d: string): string =>
      `${a.url}/api/meters/${m.meter_id}/readings?api_key=${a.apiKey}&from=${d}&to=${d}`;
    const spring = (await getJson(url('2024-03-31'))).body.data;
    const autumn = (await getJson(url('2024-10-27'))).body.data;
    expect(spring).toHaveLength(23);
    expect(spring.map((r) => r.read_at)).not.toContain('2024-03-31T03:00:00');
    expect(autumn).toHaveLength(25);
    expect(autumn.filter((r) => r.read_at === '2024-10-27T03:00:00')).toHaveLength(2);
    for (const r of spring) expect(r.read_at).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d$/);
    expect(spring.map((r) => r.value)).toEqual(
      a
        .truth()
        .readings(m.meter_id, '2024-03-31', '2024-03-31')
        .map((r) => r.value),
    );
  });

  it('limits the range to 31 days, both ends inclusive', async () => {
    const a = await startA();
    const m = a.truth().meters[0]!.meter_id;
    expect(
      (
        await getJson(
          `${a.url}/api/meters/${m}/readings?api_key=${a.apiKey}&from=2024-01-01&to=2024-01-31&limit=1`,
        )
      ).status,
    ).toBe(200);
    expect(
      (await getJson(`${a.url}/api/meters/${m}/readings?api_key=${a.apiKey}&from=2024-01-01&to=2024-02-01`))
        .status,
    ).toBe(400);
    expect(
      (
        await getJson(
          `${a.url}/api/meters/${m}/readings?api_key=${a.apiKey}&from=2024-01-01T00:00:00&to=2024-01-02`,
        )
      ).status,
    ).toBe(400);
  });

  it('differences of readings equal consumption, with a replacement and a rollover handled', async () => {
    const a = await startA({ gapRate: 0 });
    const rep = a.truth().meters.find((m) => m.reset?.kind === 'replacement')!;
    const rol = a.truth().meters.find((m) => m.reset?.kind === 'rollover')!;
    expect(rep).toBeDefined();
    expect(rol).toBeDefined();
    for (const m of [rep, rol]) {
      const day = new Date(m.reset!.at + 3 * 3600_000).toISOString().slice(0, 10);
      const rs = a.truth().readings(m.meter_id, day, day);
      let sum = 0;
      let drops = 0;
      for (let i = 1; i < rs.length; i++) {
        const d = rs[i]!.value - rs[i - 1]!.value;
        if (d < 0) {
          drops++;
          if (m.reset!.kind === 'rollover') sum += d + 10 ** m.register_digits;
          else sum += rs[i]!.value; // new meter counts from 0; the old meter's last hour is not observable
        } else sum += d;
      }
      expect(drops).toBe(1);
      const truth = a.truth().consumption(m.meter_id, rs[0]!.at, rs[rs.length - 1]!.at);
      if (m.reset!.kind === 'rollover') expect(sum).toBeCloseTo(truth, 2);
      else expect(sum).toBeLessThan(truth);
    }
  });

  it('duplicates across pages and a meter inserted while paging', async () => {
    const a = await startA();
    const page = async (offset: number): Promise<string[]> =>
      (await getJson(`${a.url}/api/meters?api_key=${a.apiKey}&offset=${offset}&limit=3`)).body.data.map(
        (m) => m.meter_id,
      );
    a.setFaults({ duplicateAcrossPages: { count: 1 } });
    const p0 = await page(0);
    const p1 = await page(3);
    expect(p1[0]).toBe(p0[2]);
    a.setFaults({ shiftDuringPaging: { count: 1 } });
    const before = a.truth().meters.length;
    const q0 = await page(0);
    const q1 = await page(3);
    expect(q1[0]).toBe(q0[2]);
    expect(a.truth().meters).toHaveLength(before + 1);
    expect(a.stats().faults.shiftDuringPaging).toBe(1);
  });
});

describe('generic provider B (XML/CSV, cursor/Link, Basic/OAuth2)', () => {
  it('Basic auth', async () => {
    const b = await startB();
    expect((await fetch(`${b.url}/v2/buildings`)).status).toBe(401);
    const bad = 'Basic ' + Buffer.from(`${b.credentials.username}:nope`).toString('base64');
    const r = await fetch(`${b.url}/v2/buildings`, { headers: { authorization: bad } });
    expect(r.status).toBe(401);
    expect(r.headers.get('www-authenticate')).toMatch(/^Basic/);
  });

  it('OAuth2 password grant, refresh and expiry', async () => {
    const b = await startB({ auth: 'oauth2-password' });
    const c = b.credentials;
    const tok = async (form: Record<string, string>): Promise<{ status: number; body: ABody }> => {
      const r = await fetch(`${b.url}/oauth/token`, { method: 'POST', body: new URLSearchParams(form) });
      return { status: r.status, body: (await r.json()) as ABody };
    };
    expect(
      (
        await tok({
          grant_type: 'password',
          username: c.username,
          password: 'x',
          client_id: c.clientId,
          client_secret: c.clientSecret,
        })
      ).body.error,
    ).toBe('invalid_grant');
    const t1 = await tok({
      grant_type: 'password',
      username: c.username,
      password: c.password,
      client_id: c.clientId,
      client_secret: c.clientSecret,
    });
    expect(t1.body).toMatchObject({ token_type: 'Bearer', expires_in: 900 });
    const use = (t: string): Promise<Response> =>
      fetch(`${b.url}/v2/meters`, { headers: { authorization: `Bearer ${t}` } });
    expect((await use(t1.body.access_token)).status).toBe(200);
    b.expireTokens();
    expect((await use(t1.body.access_token)).status).toBe(401);
    const t2 = await tok({
      grant_type: 'refresh_token',
      refresh_token: t1.body.refresh_token,
      client_id: c.clientId,
      client_secret: c.clientSecret,
    });
    expect((await use(t2.body.access_token)).status).toBe(200);
    expect(
      (
        await tok({
          grant_type: 'refresh_token',
          refresh_token: t1.body.refresh_token,
          client_id: c.clientId,
          client_secret: c.clientSecret,
        })
      ).status,
    ).toBe(400);
  });

  it('cursor pagination in XML and CSV covers every meter once', async () => {
    const b = await startB({ pagination: 'cursor' });
    const auth = {
      authorization:
        'Basic ' + Buffer.from(`${b.credentials.username}:${b.credentials.password}`).toString('base64'),
    };
    const xmlIds: string[] = [];
    let token: string | undefined;
    do {
      const r = await fetch(`${b.url}/v2/meters?page_size=4${token ? `&page_token=${token}` : ''}`, {
        headers: auth,
      });
      const doc = xml.parse(await r.text()) as {
        Meters: { Meter?: Array<{ Id: string }>; NextPageToken?: string };
      };
      xmlIds.push(...(doc.Meters.Meter ?? []).map((m) => m.Id));
      token = doc.Meters.NextPageToken;
    } while (token);
    const csvIds: string[] = [];
    let next: string | null = null;
    do {
      const r: Response = await fetch(
        `${b.url}/v2/meters?page_size=4&format=csv${next ? `&page_token=${next}` : ''}`,
        { headers: auth },
      );
      expect(r.headers.get('content-type')).toMatch(/text\/csv/);
      csvIds.push(...parseCsv(await r.text()).map((x) => x.id!));
      next = r.headers.get('x-next-page-token');
    } while (next);
    const truth = b.truth().meters.map((m) => m.id);
    expect(xmlIds).toEqual(truth);
    expect(csvIds).toEqual(truth);
    expect(
      (await fetch(`${b.url}/v2/meters?page_size=5&page_token=${'x'.repeat(8)}`, { headers: auth })).status,
    ).toBe(400);
  });

  it('Link header pagination and daily records across a DST change with offsets', async () => {
    const b = await startB({ pagination: 'link', gapRate: 0 });
    const auth = {
      authorization:
        'Basic ' + Buffer.from(`${b.credentials.username}:${b.credentials.password}`).toString('base64'),
      accept: 'text/csv',
    };
    const m = b.truth().meters.find((x) => x.time_zone === 'Europe/Berlin' && x.medium === 'Electricity')!;
    let url: string | null =
      `${b.url}/v2/consumption?meter_id=${m.id}&granularity=daily&start_date=2024-03-01&end_date=2024-04-01&page_size=10`;
    const rows: Array<Record<string, string>> = [];
    while (url) {
      const r: Response = await fetch(url, { headers: auth });
      expect(r.status).toBe(200);
      rows.push(...parseCsv(await r.text()));
      const link = r.headers.get('link');
      url = link ? /<([^>]+)>;\s*rel="next"/.exec(link)![1]! : null;
    }
    expect(rows).toHaveLength(31);
    const dst = rows.find((r) => r.period_start!.startsWith('2024-03-31'))!;
    expect(dst.period_start).toBe('2024-03-31T00:00:00+01:00');
    expect(dst.period_end).toBe('2024-04-01T00:00:00+02:00');
    const truth = b.truth().consumption(m.id, 'daily', '2024-03-01', '2024-04-01');
    expect(rows.map((r) => Number(r.consumption))).toEqual(truth.map((t) => t.consumption));
    const day = b.truth().day(m.id, '2024-03-31');
    expect(day.n).toBe(92);
    const monthly = b.truth().consumption(m.id, 'monthly', '2024-03-01', '2024-04-01')[0]!;
    expect(monthly.consumption).toBeCloseTo(
      truth.reduce((s, t) => s + t.consumption, 0),
      2,
    );
  });

  it('faults: foreign Link origin, repeated cursor, DOCTYPE with external entity, CSV injection', async () => {
    const b = await startB({ pagination: 'link' });
    const auth = {
      authorization:
        'Basic ' + Buffer.from(`${b.credentials.username}:${b.credentials.password}`).toString('base64'),
    };
    b.setFaults({ foreignNextLink: { count: 1 } });
    const r1 = await fetch(`${b.url}/v2/buildings?page_size=2`, { headers: auth });
    expect(new URL(/<([^>]+)>/.exec(r1.headers.get('link')!)![1]!).origin).not.toBe(b.url);
    b.setFaults({ repeatedCursor: { count: 1 } });
    const first = await fetch(`${b.url}/v2/buildings?page_size=2`, { headers: auth });
    const nextUrl = /<([^>]+)>/.exec(first.headers.get('link')!)![1]!;
    const second = await fetch(nextUrl, { headers: auth });
    expect(/<([^>]+)>/.exec(second.headers.get('link')!)![1]).toBe(nextUrl);
    b.setFaults({ xmlDoctype: { count: 1 } });
    const x = await (await fetch(`${b.url}/v2/buildings?page_size=2&format=xml`, { headers: auth })).text();
    expect(x).toMatch(/<!DOCTYPE Buildings \[/);
    expect(x).toMatch(/<!ENTITY xxe SYSTEM "file:\/\/\/etc\/passwd">/);
    expect(x).toMatch(/&xxe;/);
    b.setFaults({ csvInjection: true });
    const rows = parseCsv(
      await (await fetch(`${b.url}/v2/buildings?page_size=4&format=csv`, { headers: auth })).text(),
    );
    expect(rows.map((r) => r.name![0])).toEqual(['=', '+', '-', '@']);
  });

  it('invalid records in consumption and readings', async () => {
    const b = await startB({ gapRate: 0 });
    const auth = {
      authorization:
        'Basic ' + Buffer.from(`${b.credentials.username}:${b.credentials.password}`).toString('base64'),
    };
    const m = b.truth().meters.find((x) => x.medium === 'Electricity')!;
    b.setFaults({ invalidRecords: { every: 2 } });
    const rows = parseCsv(
      await (
        await fetch(
          `${b.url}/v2/consumption?meter_id=${m.id}&granularity=daily&start_date=2024-05-01&end_date=2024-05-09&format=csv`,
          { headers: auth },
        )
      ).text(),
    );
    expect(rows).toHaveLength(8);
    expect(Date.parse(rows[1]!.period_end!)).toBeLessThan(Date.parse(rows[1]!.period_start!));
    expect(rows[3]!.consumption).toBe('n/a');
    expect(rows[5]!.currency).toBe('');
    expect(rows[7]!.period_start).toMatch(/T00:00:00$/);
    const a = await startA({ gapRate: 0 });
    a.setFaults({ invalidRecords: { every: 3 } });
    const data = (
      await getJson(
        `${a.url}/api/meters/${a.truth().meters[0]!.meter_id}/readings?api_key=${a.apiKey}&from=2024-05-01&to=2024-05-01`,
      )
    ).body.data as unknown as Array<Record<string, unknown>>;
    expect(data[2]!.value).toBe('n/a');
    expect(data[5]!.read_at).toBe('2024-02-30T25:00:00');
    expect(data[8]!.value).toBeLessThan(0);
    expect(data[11]).not.toHaveProperty('meter_id');
  });
});
