/** Every migration, in order. Append only. */
import { migration001 } from './001_initial.js';
import { migration002 } from './002_canonical_units.js';
import { migration003 } from './003_quarantine_status.js';
import { migration004 } from './004_connection_version.js';
import type { Migration } from './types.js';

export type { Migration } from './types.js';

export const MIGRATIONS: readonly Migration[] = [migration001, migration002, migration003, migration004];
