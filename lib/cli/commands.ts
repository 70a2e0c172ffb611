/**
 * The CLI's commands, one entry each: a summary, the --help text, and run(argv) → exit code.
 */
import type { Command } from './args.js';
import { demoCommand } from './demo.js';
import { migrateCommand } from './migrate.js';
import { quarantineCommand } from './quarantine.js';
import { replayCommand } from './replay.js';
import { runCommand } from './run.js';
import { statusCommand } from './status.js';

export const COMMANDS = {
  run: runCommand,
  replay: replayCommand,
  quarantine: quarantineCommand,
  status: statusCommand,
  migrate: migrateCommand,
  demo: demoCommand,
} satisfies Record<string, Command>;

export type CommandName = keyof typeof COMMANDS;
