/**
 * What every command gets: a logger (stderr) and writers for its results
 * (stdout) and its complaints (stderr). Made per invocation, never global.
 */
import type { Command } from 'commander';
import { createLogger, type Logger } from '../../infra/log.ts';

export interface CliContext {
  log: Logger;
  /** One line (or block) of command output on stdout. */
  out(text: string): void;
  /** One line for people on stderr: bad input, what could not be done. */
  err(text: string): void;
}

export function createCliContext(opts: { verbose?: boolean }): CliContext {
  return {
    log: createLogger({ name: 'blockfarm', ...(opts.verbose ? { level: 'debug' as const } : {}) }),
    out: (text) => void process.stdout.write(`${text}\n`),
    err: (text) => void process.stderr.write(`${text}\n`),
  };
}

/** What main hands each command's register function. */
export interface CommandHost {
  /** The context for this invocation (reads --verbose from the command's global options). */
  context(cmd: Command): CliContext;
  /** The process's exit code once the command returns. */
  setExitCode(code: number): void;
}
