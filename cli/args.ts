/**
 * Argument parsing shared by the commands: node's parseArgs with our usage error.
 */
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { MeterflowError } from '../lib/errors.js';

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

/** The `--timeout` option of the commands that read topics. */
export const timeoutOption = { timeout: { type: 'string' } } as const;

/**
 * One overall deadline for a command: connecting, offsets, group joins and reads all race the
 * returned signal, which aborts with CLI_TIMEOUT after `--timeout` seconds (default given).
 */
export function commandDeadline(
  command: string,
  value: string | undefined,
  defaultSeconds: number,
): { signal: AbortSignal; clear: () => void } {
  const seconds = value === undefined ? defaultSeconds : Number(value);
  if (!Number.isFinite(seconds) || seconds <= 0)
    throw new MeterflowError('CLI_USAGE', `--timeout must be a positive number of seconds, not "${value}"`);
  const controller = new AbortController();
  const timer = setTimeout(() => {
    controller.abort(
      new MeterflowError('CLI_TIMEOUT', `${command} did not finish within ${seconds} s (--timeout)`, {
        context: { command, seconds },
      }),
    );
    // The command has failed, but kafkajs keeps retrying a broker that does not answer (minutes
    // of request timeouts) and cannot be cancelled: leave a second for the error to be printed,
    // then end the process with the exit code main set.
    setTimeout(() => process.exit(), 1_000).unref();
  }, seconds * 1_000);
  return { signal: controller.signal, clear: () => clearTimeout(timer) };
}
