/**
 * Logging for every process of the farm (CLI, coordinator, workers): pino
 * JSON lines on stderr, or pino-pretty's readable lines when stderr is a
 * terminal. stdout is reserved for command results, so `--json` output stays
 * parseable whatever the log level.
 *
 * Environment:
 * - BLOCKFARM_LOG_LEVEL: trace, debug, info (default), warn, error, fatal, silent.
 * - BLOCKFARM_LOG_FORMAT: `json` forces JSON lines even on a terminal; `pretty` forces pretty.
 *
 * There is no process-wide logger: callers create one and pass it on (or
 * derive children with `log.child({...})`).
 */
import { pino, type Logger } from 'pino';
import pretty from 'pino-pretty';

export type { Logger };

export const LOG_LEVELS = ['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

export interface LoggerOptions {
  /** Wins over BLOCKFARM_LOG_LEVEL (the CLI's --verbose sets 'debug'). */
  level?: LogLevel;
  /** Process name in every line ('cli', 'worker', ...). */
  name?: string;
  /** Defaults to process.env. */
  env?: NodeJS.ProcessEnv;
  /** Defaults to whether stderr is a terminal. */
  stderrIsTty?: boolean;
}

function isLogLevel(s: string): s is LogLevel {
  return (LOG_LEVELS as readonly string[]).includes(s);
}

/** The level to use: the explicit option, else the environment, else info. An unknown name in the environment falls back to info. */
export function resolveLogLevel(opts: Pick<LoggerOptions, 'level' | 'env'> = {}): LogLevel {
  if (opts.level) return opts.level;
  const fromEnv = (opts.env ?? process.env).BLOCKFARM_LOG_LEVEL?.trim().toLowerCase();
  return fromEnv && isLogLevel(fromEnv) ? fromEnv : 'info';
}

export function resolveLogFormat(opts: Pick<LoggerOptions, 'env' | 'stderrIsTty'> = {}): 'json' | 'pretty' {
  const fromEnv = (opts.env ?? process.env).BLOCKFARM_LOG_FORMAT?.trim().toLowerCase();
  if (fromEnv === 'json' || fromEnv === 'pretty') return fromEnv;
  return (opts.stderrIsTty ?? process.stderr.isTTY === true) ? 'pretty' : 'json';
}

export function createLogger(opts: LoggerOptions = {}): Logger {
  const level = resolveLogLevel(opts);
  const base = { level, name: opts.name ?? 'blockfarm', base: { pid: process.pid } };
  // Synchronous writes: a CLI that sets its exit code and returns must not lose its last lines.
  const log =
    resolveLogFormat(opts) === 'pretty'
      ? pino(base, pretty({ destination: 2, sync: true, ignore: 'pid,hostname', translateTime: 'HH:MM:ss.l' }))
      : pino(base, pino.destination({ fd: 2, sync: true }));
  const asked = (opts.env ?? process.env).BLOCKFARM_LOG_LEVEL?.trim();
  if (!opts.level && asked && !isLogLevel(asked.toLowerCase()))
    log.warn(`BLOCKFARM_LOG_LEVEL=${asked} is not a level (${LOG_LEVELS.join(', ')}); using info`);
  return log;
}
