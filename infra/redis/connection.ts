/**
 * Redis connections for the farm (coordinator, workers, the embedded
 * campaign). One URL names the server:
 *
 *   redis://[[user]:password@]host[:port][/db]      plain TCP
 *   rediss://[[user]:password@]host[:port][/db]     TLS (server certificate verified)
 *
 * AUTH: a user name and password in the URL (Redis 6 ACL users), or a
 * password alone (`redis://:secret@host`). So that a password need not sit in
 * argv (visible to every local user in ps), the URL may also come from the
 * environment (BLOCKFARM_REDIS_URL) and the password from
 * BLOCKFARM_REDIS_PASSWORD, which fills in a URL without one.
 *
 * TLS: `rediss://` verifies the server's certificate against the system CAs;
 * BLOCKFARM_REDIS_CA=FILE adds a CA bundle (a private CA), and
 * BLOCKFARM_REDIS_TLS_SERVERNAME overrides the name checked. There is no
 * switch to skip verification.
 *
 * Every connection error reaches people as ONE line naming the redacted URL
 * (RedisUnavailable), never a stack or ioredis's endless reconnect warnings.
 */
import { readFileSync } from 'node:fs';
import type { ConnectionOptions as TlsOptions } from 'node:tls';
import { Redis, type RedisOptions } from 'ioredis';

export const DEFAULT_REDIS_PORT = 6379;

/** A Redis server as parsed from a URL; `password` is never logged (see redactUrl). */
export interface RedisTarget {
  url: string;
  host: string;
  port: number;
  db: number;
  username?: string;
  password?: string;
  tls: boolean;
}

/** Redis is not reachable or refused us: one line for people. */
export class RedisUnavailable extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'RedisUnavailable';
  }
}

/** A URL that is not a Redis URL: one line for people (bad input). */
export class BadRedisUrl extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'BadRedisUrl';
  }
}

/** The URL with its password replaced by '***' (for logs and messages). */
export function redactUrl(url: string): string {
  try {
    const u = new URL(url);
    if (u.password) u.password = '***';
    return u.toString().replace(/\/$/, '');
  } catch {
    return url.replace(/\/\/([^@/]*)@/, '//***@');
  }
}

export function parseRedisUrl(url: string, env: NodeJS.ProcessEnv = process.env): RedisTarget {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    throw new BadRedisUrl(`'${redactUrl(url)}' is not a URL (expected redis://[user:password@]host[:port][/db] or rediss://...)`);
  }
  if (u.protocol !== 'redis:' && u.protocol !== 'rediss:')
    throw new BadRedisUrl(`'${redactUrl(url)}' is not a Redis URL: the scheme must be redis:// or rediss:// (TLS)`);
  if (!u.hostname) throw new BadRedisUrl(`'${redactUrl(url)}' names no host`);
  const port = u.port ? Number(u.port) : DEFAULT_REDIS_PORT;
  const dbText = u.pathname.replace(/^\//, '');
  const db = dbText ? Number(dbText) : 0;
  if (!Number.isInteger(db) || db < 0 || db > 15) throw new BadRedisUrl(`'${redactUrl(url)}': the database must be a number 0..15, not '${dbText}'`);
  const password = u.password ? decodeURIComponent(u.password) : env.BLOCKFARM_REDIS_PASSWORD || undefined;
  const username = u.username ? decodeURIComponent(u.username) : undefined;
  return {
    url,
    host: u.hostname.replace(/^\[|\]$/g, ''),
    port,
    db,
    ...(username ? { username } : {}),
    ...(password ? { password } : {}),
    tls: u.protocol === 'rediss:',
  };
}

function tlsOptions(t: RedisTarget, env: NodeJS.ProcessEnv): TlsOptions | undefined {
  if (!t.tls) return undefined;
  const opts: TlsOptions = { servername: env.BLOCKFARM_REDIS_TLS_SERVERNAME || t.host };
  const caFile = env.BLOCKFARM_REDIS_CA;
  if (caFile) {
    try {
      opts.ca = readFileSync(caFile);
    } catch (err) {
      throw new BadRedisUrl(`BLOCKFARM_REDIS_CA=${caFile}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
    }
  }
  return opts;
}

export interface ConnectOptions {
  /**
   * BullMQ workers and QueueEvents block on Redis and need
   * maxRetriesPerRequest null; plain clients fail a command after one retry.
   * @defaultValue false
   */
  blocking?: boolean;
  /** Name shown by CLIENT LIST (e.g. the worker id). */
  connectionName?: string;
  /** @defaultValue process.env */
  env?: NodeJS.ProcessEnv;
}

/** ioredis options for a URL (no connection is made). */
export function redisOptions(t: RedisTarget, opts: ConnectOptions = {}): RedisOptions {
  const env = opts.env ?? process.env;
  const tls = tlsOptions(t, env);
  return {
    host: t.host,
    port: t.port,
    db: t.db,
    ...(t.username ? { username: t.username } : {}),
    ...(t.password ? { password: t.password } : {}),
    ...(tls ? { tls } : {}),
    ...(opts.connectionName ? { connectionName: opts.connectionName } : {}),
    connectTimeout: 5000,
    maxRetriesPerRequest: opts.blocking ? null : 1,
    // Reconnect for ever, at most every 2 s: a Redis restart must not kill a farm. Watchdogs above decide when to give up.
    retryStrategy: (times: number) => Math.min(200 * times, 2000),
    // Let BullMQ wait for a reconnect rather than fail commands at once.
    enableOfflineQueue: true,
  };
}

/** The one-line reason for a connection error. */
export function describeRedisError(err: unknown): string {
  const e = err as NodeJS.ErrnoException & { errors?: unknown[] };
  if (e?.errors?.length) return describeRedisError(e.errors[0]);
  const msg = String(e?.message ?? err);
  if (/NOAUTH|WRONGPASS|invalid password|invalid username-password/i.test(msg))
    return 'authentication failed (check the user and password in the URL or BLOCKFARM_REDIS_PASSWORD)';
  if (e?.code === 'ECONNREFUSED') return 'connection refused (is redis-server running there?)';
  if (e?.code === 'ENOTFOUND' || e?.code === 'EAI_AGAIN') return `unknown host (${e.code})`;
  if (e?.code === 'ETIMEDOUT' || /timed? ?out/i.test(msg)) return 'no answer within 5 s (connect timeout)';
  if (/certificate|self[- ]signed|SSL|TLS|wrong version number/i.test(msg)) return `TLS failed: ${msg}`;
  return msg.split('\n')[0] ?? msg;
}

/**
 * Connect and PING once, or throw RedisUnavailable after `timeoutMs`. The
 * client returned keeps reconnecting on its own afterwards.
 */
export async function connectRedis(url: string, opts: ConnectOptions & { timeoutMs?: number } = {}): Promise<Redis> {
  const target = parseRedisUrl(url, opts.env);
  const options = redisOptions(target, opts);
  // The first connection fails at its first error (a refused or unknown host is not worth retrying at start);
  // once up, the client reconnects for ever like any other.
  const client = new Redis({ ...options, lazyConnect: true, retryStrategy: () => null });
  let lastError: unknown;
  const onError = (err: unknown) => (lastError = err);
  client.on('error', onError);
  // Later errors (a Redis restart) are for watchdogs to judge (RedisWatchdog); without a listener ioredis prints each one.
  client.on('error', () => {});
  const timeoutMs = opts.timeoutMs ?? 5000;
  try {
    await withTimeout(
      (async () => {
        await client.connect();
        await client.ping();
      })(),
      timeoutMs,
    );
    client.options.retryStrategy = options.retryStrategy;
    return client;
  } catch (err) {
    client.disconnect();
    const why = err instanceof TimeoutError ? (lastError ? describeRedisError(lastError) : `no answer within ${timeoutMs / 1000} s`) : describeRedisError(lastError ?? err);
    throw new RedisUnavailable(`cannot reach Redis at ${redactUrl(url)}: ${why}`);
  } finally {
    client.off('error', onError);
  }
}

class TimeoutError extends Error {}

function withTimeout<T>(p: Promise<T>, ms: number): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const t = setTimeout(() => reject(new TimeoutError()), ms);
    p.then(
      (v) => {
        clearTimeout(t);
        resolve(v);
      },
      (e: unknown) => {
        clearTimeout(t);
        reject(e);
      },
    );
  });
}

/**
 * Watches a client and calls `onDown` once when it has not been connected for
 * `graceMs` (a dead or unreachable Redis), with the last error's one-line reason.
 */
export class RedisWatchdog {
  private downSince: number | undefined;
  private lastError: string | undefined;
  private readonly timer: NodeJS.Timeout;
  private fired = false;

  constructor(
    private readonly client: Redis,
    private readonly url: string,
    private readonly graceMs: number,
    private readonly onDown: (err: RedisUnavailable) => void,
  ) {
    client.on('error', this.onError);
    client.on('close', this.onClose);
    client.on('ready', this.onReady);
    this.timer = setInterval(() => this.check(), Math.min(1000, Math.max(100, graceMs / 4)));
    this.timer.unref();
  }

  private onError = (err: unknown) => {
    this.lastError = describeRedisError(err);
  };

  private onClose = () => {
    this.downSince ??= Date.now();
  };

  private onReady = () => {
    this.downSince = undefined;
  };

  private check(): void {
    if (this.fired || this.downSince === undefined) return;
    if (Date.now() - this.downSince < this.graceMs) return;
    this.fired = true;
    this.onDown(new RedisUnavailable(`lost Redis at ${redactUrl(this.url)} for ${Math.round(this.graceMs / 1000)} s: ${this.lastError ?? 'connection closed'}`));
  }

  stop(): void {
    clearInterval(this.timer);
    this.client.off('error', this.onError);
    this.client.off('close', this.onClose);
    this.client.off('ready', this.onReady);
  }
}
