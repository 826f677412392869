/**
 * The embedded farm of `blockfarm campaign`: a private redis-server (unless a
 * Redis URL is given) and local workers, in one process with the
 * coordinator. The data directory is locked for the duration.
 */
import { cpus } from 'node:os';
import type { Logger } from '../../infra/log.ts';
import { EmbeddedRedis } from '../../infra/redis/server.ts';
import { FarmWorker } from '../../worker/farm/farm-worker.ts';
import { targetKind } from '../../worker/farm/target-defaults.ts';
import { DataDir, DataDirLock } from './data-dir.ts';

export interface LocalFarmOptions {
  dataDir: string;
  /** An existing Redis; without it a private redis-server starts in <data dir>/redis. */
  redisUrl?: string;
  targets: string[];
  /** Batches at once per target on this machine; 0 for no local workers. @defaultValue model: cores - 1 (at least 1); others 1 */
  concurrency?: number;
  allowHost: boolean;
  namespace: string;
  log: Logger;
}

export function defaultConcurrency(target: string): number {
  return targetKind(target) === 'model' ? Math.max(1, cpus().length - 1) : 1;
}

export class LocalFarm {
  private redis: EmbeddedRedis | undefined;
  private readonly lock: DataDirLock;
  readonly workers: FarmWorker[] = [];
  url = '';

  constructor(readonly opts: LocalFarmOptions) {
    this.lock = new DataDirLock(opts.dataDir);
  }

  /** PID of the private redis-server, if one runs. */
  get redisPid(): number | undefined {
    return this.redis?.pid;
  }

  async start(): Promise<void> {
    await this.lock.acquire();
    try {
      if (this.opts.redisUrl) this.url = this.opts.redisUrl;
      else {
        this.redis = new EmbeddedRedis({ dir: new DataDir(this.opts.dataDir).redisDir });
        await this.redis.start();
        this.url = this.redis.url;
        this.opts.log.info({ redisPid: this.redis.pid, dir: new DataDir(this.opts.dataDir).redisDir }, 'private redis-server started');
      }
      for (const target of this.opts.targets) {
        const concurrency = this.opts.concurrency ?? defaultConcurrency(target);
        if (concurrency === 0) continue;
        const w = new FarmWorker({
          redisUrl: this.url,
          targets: [target],
          concurrency,
          allowHost: this.opts.allowHost,
          namespace: this.opts.namespace,
          dataDir: this.opts.dataDir,
          log: this.opts.log,
          shutdownGraceMs: 5000,
        });
        this.workers.push(w);
        await w.start();
      }
    } catch (err) {
      await this.stop();
      throw err;
    }
  }

  async stop(): Promise<void> {
    await Promise.all(this.workers.map((w) => w.close().catch(() => {})));
    if (this.redis) {
      await this.redis.stop();
      this.opts.log.info({ redisPid: this.redis.pid }, 'private redis-server stopped');
    }
    await this.lock.release();
  }
}
