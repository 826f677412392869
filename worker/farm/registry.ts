/**
 * Worker registration and heartbeats (keys documented in ./protocol.ts): a
 * worker beats every HEARTBEAT_MS; its hash expires WORKER_TTL_MS after the
 * last beat, so a killed worker disappears on its own.
 */
import type { Redis } from 'ioredis';
import { HEARTBEAT_MS, PROTOCOL_VERSION, WORKER_TTL_MS, keys } from './protocol.ts';

export interface WorkerInfo {
  id: string;
  host: string;
  pid: number;
  targets: string[];
  concurrency: number;
  startedAt: number;
  beatAt: number;
  version: number;
}

export class WorkerHeartbeat {
  private timer: NodeJS.Timeout | undefined;
  private readonly startedAt = Date.now();

  constructor(
    private readonly redis: Redis,
    private readonly ns: string,
    private readonly info: Omit<WorkerInfo, 'startedAt' | 'beatAt' | 'version'>,
    private readonly everyMs = HEARTBEAT_MS,
    private readonly ttlMs = WORKER_TTL_MS,
  ) {}

  async beat(): Promise<void> {
    const now = Date.now();
    const key = keys.worker(this.ns, this.info.id);
    await this.redis
      .multi()
      .hset(key, {
        id: this.info.id,
        host: this.info.host,
        pid: String(this.info.pid),
        targets: JSON.stringify(this.info.targets),
        concurrency: String(this.info.concurrency),
        startedAt: String(this.startedAt),
        beatAt: String(now),
        version: String(PROTOCOL_VERSION),
      })
      .pexpire(key, this.ttlMs)
      .zadd(keys.workers(this.ns), now, this.info.id)
      .exec();
  }

  async start(onError: (err: Error) => void): Promise<void> {
    await this.beat();
    this.timer = setInterval(() => void this.beat().catch(onError), this.everyMs);
    this.timer.unref();
  }

  async stop(): Promise<void> {
    clearInterval(this.timer);
    try {
      await this.redis.multi().del(keys.worker(this.ns, this.info.id)).zrem(keys.workers(this.ns), this.info.id).exec();
    } catch {
      // Redis gone: the hash expires on its own.
    }
  }
}

/** Live workers (their hash has not expired); dead entries are pruned from the set. */
export async function liveWorkers(redis: Redis, ns: string): Promise<WorkerInfo[]> {
  const ids = await redis.zrange(keys.workers(ns), '0', '-1');
  if (!ids.length) return [];
  const pipe = redis.pipeline();
  for (const id of ids) pipe.hgetall(keys.worker(ns, id));
  const rows = (await pipe.exec()) ?? [];
  const out: WorkerInfo[] = [];
  const dead: string[] = [];
  rows.forEach(([err, h], i) => {
    const r = h as Record<string, string> | null;
    if (err || !r || !r.id) {
      dead.push(ids[i]!);
      return;
    }
    out.push({
      id: r.id,
      host: r.host ?? '',
      pid: Number(r.pid),
      targets: JSON.parse(r.targets ?? '[]') as string[],
      concurrency: Number(r.concurrency),
      startedAt: Number(r.startedAt),
      beatAt: Number(r.beatAt),
      version: Number(r.version),
    });
  });
  if (dead.length) await redis.zrem(keys.workers(ns), ...dead);
  return out;
}
