/**
 * A migration is a numbered, append-only list of DDL statements. Statements take the database
 * name (validated by the config schema, quoted with backticks) and must be idempotent on their
 * own (`IF NOT EXISTS`), so a migration interrupted half-way can simply run again.
 * Never edit an applied migration: add a new one.
 */
export interface Migration {
  /** Increasing integer; the order of application. */
  readonly version: number;
  readonly name: string;
  statements(db: string): string[];
}

export interface LatestViewSpec {
  /** Key columns: one row per distinct key. */
  keys: string[];
  /** Other columns, each the value of the row with the highest version. */
  columns: string[];
  /** Those of `columns` that are Nullable. */
  nullable?: string[];
  /** Version column of the table. */
  version: string;
  /** Expose max(version) under this name (omit to hide the version). */
  exposeVersionAs?: string;
}

/**
 * `SELECT keys, argMax(col, v) AS col ... GROUP BY keys`: the latest row per key without FINAL,
 * which works on 18.16 and current releases alike and is correct before merges have run.
 * The version is renamed to `_v` in a subquery first: an alias equal to a column name used inside
 * another aggregate (e.g. `max(version) AS version` next to `argMax(x, version)`) would make
 * ClickHouse nest the aggregates and refuse the query.
 */
export function latestViewSelect(qualifiedTable: string, spec: LatestViewSpec): string {
  const nullable = new Set(spec.nullable ?? []);
  const cols = spec.columns.map((c) =>
    // Aggregate functions skip NULL arguments, so argMax(x, v) would keep an older non-NULL value
    // when the latest row set x to NULL (a removed mapping, a cleared address). A tuple is never
    // NULL itself, so argMax(tuple(x), v).1 returns the latest value, NULL included.
    nullable.has(c) ? `argMax(tuple(${c}), _v).1 AS ${c}` : `argMax(${c}, _v) AS ${c}`,
  );
  if (spec.exposeVersionAs) cols.push(`max(_v) AS ${spec.exposeVersionAs}`);
  return (
    `SELECT ${[...spec.keys, ...cols].join(', ')} ` +
    `FROM (SELECT *, ${spec.version} AS _v FROM ${qualifiedTable}) ` +
    `GROUP BY ${spec.keys.join(', ')}`
  );
}
