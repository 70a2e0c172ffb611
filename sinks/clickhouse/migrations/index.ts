/** Every migration, in order. Append only. */
import { migration001 } from './001_initial.js';
import type { Migration } from './types.js';

export type { Migration } from './types.js';

export const MIGRATIONS: readonly Migration[] = [migration001];
