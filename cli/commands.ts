/**
 * The CLI's commands, one entry each: a summary, the --help text, and run(argv) → exit code.
 */
import type { Command } from './args.js';
import { checkCommand } from './check.js';
import { connectionsCommand } from './connections.js';
import { demoCommand } from './demo.js';
import { mappingCommand } from './mapping.js';
import { migrateCommand } from './migrate.js';
import { quarantineCommand } from './quarantine.js';
import { reconcileCommand } from './reconcile.js';
import { reportCommand } from './report.js';
import { replayCommand } from './replay.js';
import { runCommand } from './run.js';
import { statusCommand } from './status.js';
import { backfillCommand, syncCommand } from './sync.js';

export const COMMANDS = {
  run: runCommand,
  sync: syncCommand,
  backfill: backfillCommand,
  replay: replayCommand,
  quarantine: quarantineCommand,
  status: statusCommand,
  report: reportCommand,
  check: checkCommand,
  connections: connectionsCommand,
  mapping: mappingCommand,
  reconcile: reconcileCommand,
  migrate: migrateCommand,
  demo: demoCommand,
} satisfies Record<string, Command>;

export type CommandName = keyof typeof COMMANDS;
