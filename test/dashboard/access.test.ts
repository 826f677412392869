/**
 * Who may see the dashboard: bound off loopback without a token it refuses
 * to start (one line, exit 2); with a token every request needs it (pages,
 * API, /metrics, the queue UI, downloads, the script), as a Bearer header
 * or as the cookie a first visit with ?token= sets. `blockfarm dashboard`
 * as a real process against a real Redis.
 */
import type { Redis } from 'ioredis';
import { beforeAll, describe, expect, it } from 'vitest';
import { DashboardServer } from '../../coordinator/dashboard/server.ts';
import { type Proc, blockfarm, messageLines, quietLog, useFarmRedis, waitFor } from '../farm/helpers/farm.ts';
import { type TestRedis, startTestRedis, uniqueNamespace } from '../farm/helpers/redis.ts';

const TOKEN = 'test-token-0123456789abcdef';
let redis: TestRedis;
let client: Redis;

useFarmRedis((r, c) => {
  redis = r;
  client = c;
});

describe('blockfarm dashboard: binding', () => {
  it('refuses a non-loopback bind without a token: one line, exit 2', async () => {
    const p = blockfarm(['dashboard', '--redis', redis.url, '--host', '0.0.0.0', '--port', '0'], { BLOCKFARM_DASHBOARD_TOKEN: '' });
    const { code } = await p.exited;
    expect(code).toBe(2);
    const lines = messageLines(p.stderr());
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(/^blockfarm dashboard: refusing to serve the dashboard on 0\.0\.0\.0 without a token: pass --token TOKEN or set BLOCKFARM_DASHBOARD_TOKEN/);
  });

  it('refuses a short token, a bad port and a missing Redis URL as bad input', async () => {
    const cases = [
      [['--host', '0.0.0.0', '--token', 'short', '--redis', redis.url], /at least 16 characters/],
      [['--port', '70000', '--redis', redis.url], /--port: '70000' is not a TCP port/],
      [[], /--redis URL \(or BLOCKFARM_REDIS_URL\) is required/],
    ] as const;
    // In parallel: each is a whole CLI start.
    const runs = cases.map(([args]) => blockfarm(['dashboard', ...args]));
    for (const [i, [args, msg]] of cases.entries()) {
      expect((await runs[i]!.exited).code, args.join(' ')).toBe(2);
      expect(messageLines(runs[i]!.stderr()), args.join(' ')).toEqual([expect.stringMatching(msg)]);
    }
  });
});

describe('blockfarm dashboard: the token', () => {
  let proc: Proc;
  let base: string;

  beforeAll(async () => {
    const ns = uniqueNamespace('dash-access');
    proc = blockfarm(['dashboard', '--redis', redis.url, '--namespace', ns, '--host', '0.0.0.0', '--port', '0'], { BLOCKFARM_DASHBOARD_TOKEN: TOKEN });
    const port = await waitFor('the dashboard to listen', async () => /dashboard: http:\/\/0\.0\.0\.0:(\d+)\//.exec(proc.stdout())?.[1], 60_000);
    base = `http://127.0.0.1:${port}`;
  }, 90_000);

  const paths = ['/', '/signatures', '/workers', '/api/overview', '/api/signatures', '/metrics', '/queues/', '/queues/api/queues', '/static/live.js', '/signatures/x-000000000000/files/repro.c'];

  it('answers 401 to every request without the token, or with a wrong one', async () => {
    for (const p of paths) {
      const r = await fetch(`${base}${p}`, { redirect: 'manual' });
      expect(r.status, p).toBe(401);
      expect(await r.text(), p).toMatch(/^401: this dashboard needs its token/);
      const wrong = await fetch(`${base}${p}`, { headers: { authorization: `Bearer ${TOKEN.replace('0', '1')}` }, redirect: 'manual' });
      expect(wrong.status, p).toBe(401);
      const wrongCookie = await fetch(`${base}${p}`, { headers: { cookie: 'blockfarm_dashboard_token=nope' }, redirect: 'manual' });
      expect(wrongCookie.status, p).toBe(401);
    }
    expect((await fetch(`${base}/?token=wrong-token-0123456789`, { redirect: 'manual' })).status).toBe(401);
  });

  it('serves with Authorization: Bearer', async () => {
    for (const p of paths.filter((x) => !x.includes('/files/'))) {
      const r = await fetch(`${base}${p}`, { headers: { authorization: `Bearer ${TOKEN}` }, redirect: 'manual' });
      expect(r.status, p).toBe(200);
    }
  });

  it('a browser: ?token= once sets a cookie and drops the token from the address', async () => {
    const first = await fetch(`${base}/signatures?sort=count&token=${TOKEN}`, { redirect: 'manual' });
    expect(first.status).toBe(303);
    expect(first.headers.get('location')).toBe('/signatures?sort=count');
    const cookie = first.headers.get('set-cookie') ?? '';
    expect(cookie).toMatch(/^blockfarm_dashboard_token=[^;]+; Path=\/; HttpOnly; SameSite=Strict$/);
    const next = await fetch(`${base}/signatures?sort=count`, { headers: { cookie: cookie.split(';')[0]! }, redirect: 'manual' });
    expect(next.status).toBe(200);
    expect(await next.text()).toContain('<h1>Signatures</h1>');
  });

  it('stops on SIGTERM with exit 0', async () => {
    proc.child.kill('SIGTERM');
    expect((await proc.exited).code).toBe(0);
  });
});

describe('a Redis that goes away', () => {
  it('gets a prompt one-line 500 from the API, not a hung request', async () => {
    const gone = await startTestRedis();
    const server = new DashboardServer({ redisUrl: gone.url, dataDir: '/nonexistent-blockfarm-data', namespace: uniqueNamespace('dash-gone'), port: 0, log: quietLog() });
    const base = await server.start();
    try {
      expect((await fetch(`${base}/api/overview`)).status).toBe(200);
      await gone.kill();
      const t0 = Date.now();
      const r = await fetch(`${base}/api/overview`);
      expect(r.status).toBe(500);
      expect(await r.text()).toMatch(/^the dashboard could not read the farm: .+\n$/);
      expect(Date.now() - t0).toBeLessThan(10_000);
    } finally {
      await server.close();
      await gone.stop();
    }
  }, 60_000);
});
