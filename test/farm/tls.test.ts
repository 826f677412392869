/**
 * Redis over TLS with AUTH (rediss://): a real redis-server with a TLS port
 * and a certificate from a throw-away CA made with openssl. A worker process
 * and a coordinator run a campaign through it; without the CA the connection
 * is refused (the certificate is verified, never skipped). Skipped, with the
 * reason, where openssl or a TLS-capable redis-server is missing.
 */
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Coordinator } from '../../coordinator/farm/coordinator.ts';
import { RedisUnavailable, connectRedis } from '../../infra/redis/connection.ts';
import { freePort } from '../../infra/redis/server.ts';
import { blockfarm, killAll, messageLines, quietLog, removeDir, tempDir } from './helpers/farm.ts';
import { uniqueNamespace } from './helpers/redis.ts';

const PASSWORD = 'tls-test-password';

function missing(): string | undefined {
  try {
    execFileSync('openssl', ['version'], { stdio: 'ignore' });
  } catch {
    return 'openssl is not installed';
  }
  try {
    const help = execFileSync('redis-server', ['--version'], { encoding: 'utf8' });
    if (!help) return 'redis-server is not installed';
  } catch {
    return 'redis-server is not installed';
  }
  return undefined;
}

const why = missing();
let dir = '';
let server: ChildProcess | undefined;
let url = '';
let ca = '';

beforeAll(async () => {
  if (why) return;
  dir = tempDir('tls');
  const run = (args: string[]) => execFileSync('openssl', args, { cwd: dir, stdio: 'ignore' });
  run(['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'ca.key', '-out', 'ca.pem', '-days', '2', '-subj', '/CN=blockfarm-test-ca']);
  run(['req', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'server.key', '-out', 'server.csr', '-subj', '/CN=localhost']);
  writeFileSync(join(dir, 'ext.cnf'), 'subjectAltName=DNS:localhost,IP:127.0.0.1\n');
  run(['x509', '-req', '-in', 'server.csr', '-CA', 'ca.pem', '-CAkey', 'ca.key', '-CAcreateserial', '-out', 'server.pem', '-days', '2', '-extfile', 'ext.cnf']);
  ca = join(dir, 'ca.pem');
  const port = await freePort();
  server = spawn('redis-server', [
    '--port', '0', '--tls-port', String(port), '--bind', '127.0.0.1',
    '--tls-cert-file', join(dir, 'server.pem'), '--tls-key-file', join(dir, 'server.key'), '--tls-ca-cert-file', ca, '--tls-auth-clients', 'no',
    '--requirepass', PASSWORD, '--save', '', '--appendonly', 'no', '--dir', dir,
  ], { stdio: 'ignore' });
  url = `rediss://:${PASSWORD}@localhost:${port}`;
  const until = Date.now() + 15_000;
  for (;;) {
    try {
      (await connectRedis(url, { env: { BLOCKFARM_REDIS_CA: ca }, timeoutMs: 1000 })).disconnect();
      break;
    } catch (err) {
      if (Date.now() > until) throw err;
      await new Promise((r) => setTimeout(r, 200));
    }
  }
}, 60_000);

afterAll(async () => {
  await killAll();
  if (server && server.exitCode === null) {
    server.kill('SIGTERM');
    await new Promise((r) => server!.once('exit', r));
  }
  if (dir && existsSync(dir)) removeDir(dir);
});

describe.skipIf(why !== undefined)(`Redis over TLS with AUTH${why ? ` (skipped: ${why})` : ''}`, () => {
  it('runs a campaign through rediss:// with a private CA', async () => {
    const ns = uniqueNamespace('tls');
    const env = { BLOCKFARM_REDIS_CA: ca };
    const prev = process.env.BLOCKFARM_REDIS_CA;
    process.env.BLOCKFARM_REDIS_CA = ca;
    try {
      const w = blockfarm(['worker', '--namespace', ns, '--target', 'model'], { ...env, BLOCKFARM_REDIS_URL: url });
      const data = tempDir('tls-data');
      const c = new Coordinator({ redisUrl: url, namespace: ns, log: quietLog(), dataDir: data, targets: ['model'], budget: { cases: 40 }, generator: 'builtin', seeds: false, seed: 1 });
      const summary = await c.run();
      expect(summary.targets[0]!.counts).toMatchObject({ executed: 40, pass: 40 });
      w.child.kill('SIGTERM');
      expect((await w.exited).code).toBe(0);
      removeDir(data);
    } finally {
      if (prev === undefined) delete process.env.BLOCKFARM_REDIS_CA;
      else process.env.BLOCKFARM_REDIS_CA = prev;
    }
  }, 120_000);

  it('refuses a server whose certificate it cannot verify, in one line', async () => {
    await expect(connectRedis(url, { env: {}, timeoutMs: 3000 })).rejects.toThrow(RedisUnavailable);
    const p = blockfarm(['worker', '--redis', url, '--target', 'model']);
    expect((await p.exited).code).toBe(4);
    expect(messageLines(p.stderr())).toEqual([expect.stringMatching(/^blockfarm worker: cannot reach Redis at rediss:\/\/:\*\*\*@localhost:\d+: TLS failed: self-signed certificate in certificate chain$/)]);
  }, 60_000);

  it('refuses a wrong password, in one line', async () => {
    const p = blockfarm(['worker', '--redis', url.replace(PASSWORD, 'wrong'), '--target', 'model'], { BLOCKFARM_REDIS_CA: ca });
    expect((await p.exited).code).toBe(4);
    expect(messageLines(p.stderr())).toEqual([expect.stringMatching(/authentication failed/)]);
  }, 60_000);
});
