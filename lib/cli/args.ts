/**
 * Argument parsing shared by the commands: node's parseArgs with our usage error.
 */
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { MeterflowError } from '../errors.js';

export interface Command {
  summary: string;
  help: string;
  run(argv: string[]): Promise<number>;
}

export function parse<T extends ParseArgsConfig['options']>(
  argv: string[],
  options: T,
  allowPositionals = true,
) {
  try {
    return parseArgs({ args: argv, options, allowPositionals, strict: true });
  } catch (err) {
    throw new MeterflowError('CLI_USAGE', (err as Error).message);
  }
}
