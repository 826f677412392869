/**
 * A real Redis for the farm tests, never a mock: a `redis:7` container via
 * testcontainers when a container runtime answers, otherwise Debian's
 * `redis-server` started on a free port (infra/redis/server.ts: spawned,
 * tracked by PID, killed after). BLOCKFARM_TEST_REDIS=server|container forces one.
 */
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { EmbeddedRedis } from '../../../infra/redis/server.ts';

export interface TestRedis {
  url: string;
  kind: 'container' | 'redis-server';
  /** The redis-server PID (redis-server kind only). */
  pid?: number;
  /** Kill Redis at once (a Redis that dies). */
  kill(): Promise<void>;
  stop(): Promise<void>;
}

function containerRuntimeLikely(): boolean {
  if (process.env.DOCKER_HOST) return true;
  const sockets = ['/var/run/docker.sock', `${process.env.XDG_RUNTIME_DIR ?? '/run/user/0'}/podman/podman.sock`, '/run/podman/podman.sock'];
  return sockets.some((s) => existsSync(s));
}

async function fromContainer(): Promise<TestRedis | undefined> {
  try {
    const { GenericContainer, Wait } = await import('testcontainers');
    const c = await new GenericContainer('redis:7-alpine').withExposedPorts(6379).withWaitStrategy(Wait.forLogMessage('Ready to accept connections')).start();
    return {
      url: `redis://${c.getHost()}:${c.getMappedPort(6379)}`,
      kind: 'container',
      kill: async () => {
        await c.stop({ timeout: 0 });
      },
      stop: async () => {
        await c.stop();
      },
    };
  } catch {
    return undefined;
  }
}

async function fromServer(): Promise<TestRedis> {
  const dir = mkdtempSync(join(tmpdir(), 'blockfarm-test-redis-'));
  const r = new EmbeddedRedis({ dir, appendOnly: false });
  await r.start();
  return {
    url: r.url,
    kind: 'redis-server',
    pid: r.pid,
    kill: async () => {
      r.kill();
      await r.stop();
    },
    stop: async () => {
      await r.stop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

export async function startTestRedis(): Promise<TestRedis> {
  const force = process.env.BLOCKFARM_TEST_REDIS;
  if (force !== 'server' && (force === 'container' || containerRuntimeLikely())) {
    const c = await fromContainer();
    if (c) return c;
    if (force === 'container') throw new Error('BLOCKFARM_TEST_REDIS=container but no container runtime answered');
  }
  return fromServer();
}

/** A namespace no other test uses (queues and keys are all under it). */
export function uniqueNamespace(label: string): string {
  return `t-${label}-${process.pid}-${Math.random().toString(36).slice(2, 8)}`;
}
