/**
 * A private redis-server (the Debian package) for the embedded campaign and
 * the tests: started on a free 127.0.0.1 port with a random password, its
 * data (AOF + RDB), config and log under one directory, stopped by PID.
 *
 * Files in `dir`:
 *   redis.conf   written at start (mode 0600: it holds the password)
 *   redis.pid    the server's PID while it runs (written by us, not redis)
 *   redis.log    the server's log
 *   dump.rdb, appendonlydir/   the data, kept across runs (a campaign resumes)
 *
 * A server left behind by a killed parent (its PID file names a live
 * redis-server) is stopped before a new one starts, so a data directory
 * never has two servers writing it; callers hold a lock on the directory
 * (see DataDirLock in coordinator/farm/data-dir.ts) so that only one
 * campaign uses it at a time.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { promises as fsp, readFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { defaultProbeEnv, findExecutable } from '../machine.ts';
import { connectRedis } from './connection.ts';

export interface EmbeddedRedisOptions {
  /** Where the server keeps its config, log and data. */
  dir: string;
  /**
   * Keep the data in an append-only file (durable across a crash).
   * @defaultValue true
   */
  appendOnly?: boolean;
  /**
   * Memory cap for the server (redis `maxmemory`), 0 for none. Queues must not be evicted, so the policy is noeviction.
   * @defaultValue 0
   */
  maxMemoryBytes?: number;
  /** @defaultValue 15000 */
  startTimeoutMs?: number;
  /** Path of redis-server; found on PATH (and sbin) when left out. */
  binary?: string;
}

/** redis-server is not installed: the machine cannot run the embedded campaign. */
export class RedisServerMissing extends Error {
  constructor() {
    super('redis-server is not installed (Debian: apt-get install redis-server; infra/setup.sh installs it), or pass --redis URL to use a running Redis');
    this.name = 'RedisServerMissing';
  }
}

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      const port = typeof addr === 'object' && addr ? addr.port : 0;
      srv.close(() => resolve(port));
    });
  });
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

function cmdlineOf(pid: number): string {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').replace(/\0/g, ' ');
  } catch {
    return '';
  }
}

async function waitForExit(pid: number, ms: number): Promise<boolean> {
  const until = Date.now() + ms;
  while (Date.now() < until) {
    if (!isAlive(pid)) return true;
    await new Promise((r) => setTimeout(r, 50));
  }
  return !isAlive(pid);
}

async function tail(file: string, lines = 5): Promise<string> {
  try {
    return (await fsp.readFile(file, 'utf8')).trim().split('\n').slice(-lines).join(' / ');
  } catch {
    return '';
  }
}

export class EmbeddedRedis {
  private child: ChildProcess | undefined;
  private exited: Promise<void> | undefined;
  private _url = '';
  private _pid = 0;
  readonly opts: Required<Omit<EmbeddedRedisOptions, 'binary'>> & { binary?: string };

  constructor(opts: EmbeddedRedisOptions) {
    this.opts = { appendOnly: true, maxMemoryBytes: 0, startTimeoutMs: 15_000, ...opts };
  }

  /** redis://:password@127.0.0.1:port (holds the password: redact before logging). */
  get url(): string {
    return this._url;
  }

  get pid(): number {
    return this._pid;
  }

  get logFile(): string {
    return join(this.opts.dir, 'redis.log');
  }

  private get pidFile(): string {
    return join(this.opts.dir, 'redis.pid');
  }

  /** Stop a server that a killed parent left running on this directory. */
  private async stopLeftover(): Promise<void> {
    let pid: number;
    try {
      pid = Number((await fsp.readFile(this.pidFile, 'utf8')).trim());
    } catch {
      return;
    }
    if (Number.isInteger(pid) && pid > 0 && isAlive(pid) && cmdlineOf(pid).includes('redis-server')) {
      process.kill(pid, 'SIGTERM');
      if (!(await waitForExit(pid, 10_000))) process.kill(pid, 'SIGKILL');
    }
    await fsp.rm(this.pidFile, { force: true });
  }

  async start(): Promise<void> {
    const binary = this.opts.binary ?? (await findExecutable('redis-server', defaultProbeEnv()));
    if (!binary) throw new RedisServerMissing();
    await fsp.mkdir(this.opts.dir, { recursive: true, mode: 0o700 });
    await this.stopLeftover();
    let lastError: Error | undefined;
    for (let attempt = 0; attempt < 3; attempt++) {
      try {
        await this.startOnce(binary);
        return;
      } catch (err) {
        lastError = err as Error;
        await this.stop();
      }
    }
    throw lastError ?? new Error('redis-server did not start');
  }

  private async startOnce(binary: string): Promise<void> {
    const port = await freePort();
    const password = randomBytes(18).toString('base64url');
    const conf = [
      `port ${port}`,
      'bind 127.0.0.1',
      'protected-mode yes',
      `requirepass ${password}`,
      `dir ${this.opts.dir}`,
      'dbfilename dump.rdb',
      `appendonly ${this.opts.appendOnly ? 'yes' : 'no'}`,
      'appendfsync everysec',
      'save 300 1',
      `logfile ${this.logFile}`,
      'daemonize no',
      'loglevel notice',
      `maxmemory ${this.opts.maxMemoryBytes}`,
      'maxmemory-policy noeviction',
      '',
    ].join('\n');
    const confFile = join(this.opts.dir, 'redis.conf');
    await fsp.writeFile(confFile, conf, { mode: 0o600 });
    await fsp.chmod(confFile, 0o600);
    const child = spawn(binary, [confFile], { stdio: ['ignore', 'ignore', 'pipe'], detached: false });
    this.child = child;
    let stderr = '';
    child.stderr?.setEncoding('utf8').on('data', (d: string) => (stderr = (stderr + d).slice(-2000)));
    this.exited = new Promise((resolve) => child.once('exit', () => resolve()));
    const spawnError = new Promise<never>((_, reject) => child.once('error', reject));
    if (!child.pid) await spawnError;
    this._pid = child.pid!;
    await fsp.writeFile(this.pidFile, `${this._pid}\n`);
    this._url = `redis://:${encodeURIComponent(password)}@127.0.0.1:${port}`;
    const deadline = Date.now() + this.opts.startTimeoutMs;
    let exitedEarly = false;
    void this.exited.then(() => (exitedEarly = true));
    while (Date.now() < deadline) {
      if (exitedEarly) break;
      try {
        const c = await connectRedis(this._url, { timeoutMs: 1000 });
        c.disconnect();
        return;
      } catch {
        await new Promise((r) => setTimeout(r, 100));
      }
    }
    const why = (await tail(this.logFile)) || stderr.trim() || 'no log';
    throw new Error(`redis-server did not answer on 127.0.0.1:${port}${exitedEarly ? ' (it exited)' : ''}: ${why}`);
  }

  /** Stop the server by its PID (SIGTERM: it saves and exits; SIGKILL after 10 s). */
  async stop(): Promise<void> {
    const child = this.child;
    this.child = undefined;
    if (child && child.exitCode === null && child.signalCode === null) {
      child.kill('SIGTERM');
      const done = await Promise.race([this.exited!.then(() => true), new Promise<boolean>((r) => setTimeout(() => r(false), 10_000))]);
      if (!done) {
        child.kill('SIGKILL');
        await this.exited;
      }
    }
    await fsp.rm(this.pidFile, { force: true });
  }

  /** SIGKILL the server (tests: a Redis that dies). */
  kill(): void {
    this.child?.kill('SIGKILL');
  }
}
