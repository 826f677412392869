/**
 * The executor's built-in helpers (worker/executor/helpers.c), run the way
 * set-up steps run them: as `blockfarm-exec --helper ...`, and from a plan
 * step whose argv[0] is `blockfarm-exec` (the executor's own binary).
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { buildExecutor } from '../../worker/executor/build.ts';

let exe: string;
beforeAll(async () => {
  exe = await buildExecutor();
}, 120_000);

function run(args: string[], input = '') {
  const r = spawnSync(exe, args, { input, encoding: 'utf8' });
  return { code: r.status, out: r.stdout, err: r.stderr };
}

describe('executor helpers', () => {
  it('--calc evaluates left to right, with min and max', () => {
    expect(run(['--calc', '131072', '-', '2048']).out).toBe('129024\n');
    expect(run(['--calc', '1000', '/', '8', '*', '8', '*', '2']).out).toBe('2000\n');
    expect(run(['--calc', '7', 'min', '5', 'max', '6', '%', '4']).out).toBe('2\n');
    const bad = run(['--calc', '1', '^', '2']);
    expect(bad.code).toBe(2);
    expect(bad.err).toMatch(/unknown operator '\^'/);
    expect(run(['--calc', '1', '/', '0']).code).toBe(2);
    expect(run(['--calc', 'x']).code).toBe(2);
  });

  it('--field prints one field of the first line, or says there is none', () => {
    expect(run(['--field', '5', 'echo', '0 8 integrity 0 122880 -']).out).toBe('122880\n');
    const none = run(['--field', '9', 'echo', 'a b']);
    expect(none.code).toBe(1);
    expect(none.err).toMatch(/no field 9/);
    expect(run(['--field', '1', 'false']).code).toBe(1);
  });

  it('--if-exists runs the command only when the path exists', () => {
    expect(run(['--if-exists', '/nonexistent/x', 'false']).code).toBe(0);
    expect(run(['--if-exists', '/', 'false']).code).toBe(1);
  });

  it('--scsi-debug-dev gives up after its timeout when there is no scsi_debug disk', () => {
    const r = run(['--scsi-debug-dev', '30']);
    if (r.code === 0) expect(r.out).toMatch(/^\/dev\/sd[a-z]+\n$/);
    else expect(r.err).toMatch(/no scsi_debug disk appeared within 30 ms/);
  });

  it('--zero-devices zeroes a device whole and leaves no cached page of it; bad arguments are refused', () => {
    expect(run(['--zero-devices', '--zero']).code).toBe(2);
    expect(run(['--zero-devices', '--wipe', '/dev/null']).code).toBe(2);
    const missing = run(['--zero-devices', '--zero', '/nonexistent/dev']);
    expect(missing.code).toBe(1);
    expect(missing.err).toMatch(/\/nonexistent\/dev: No such file or directory/);
    if (process.getuid?.() !== 0) return void console.log('skipped the loop-device half: not root');
    const dir = mkdtempSync(join(tmpdir(), 'bf-zero-'));
    const file = join(dir, 'disk');
    writeFileSync(file, Buffer.alloc(1 << 20, 0xab));
    const dev = spawnSync('losetup', ['--find', '--show', file], { encoding: 'utf8' }).stdout.trim();
    try {
      expect(dev).toMatch(/^\/dev\/loop\d+$/);
      // Read it buffered first: its page cache now holds 0xab pages the zeroing must not leave visible.
      expect(readFileSync(dev)[4096]).toBe(0xab);
      const r = run(['--zero-devices', '--flush', dev, '--zero', dev]);
      expect(r.code, r.err).toBe(0);
      const after = readFileSync(dev);
      expect(after.length).toBe(1 << 20);
      expect(after.every((b) => b === 0)).toBe(true);
      expect(readFileSync(file).every((b) => b === 0)).toBe(true);
    } finally {
      spawnSync('losetup', ['-d', dev]);
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('a plan step whose argv[0] is blockfarm-exec runs the executor itself', () => {
    const plan = {
      version: 1, seed: 1, opTimeoutMs: 1000, geometry: [], threads: [], final: [], candidates: [], checks: [],
      setup: [
        { name: 'size', argv: ['blockfarm-exec', '--calc', '64', '*', '2048'], capture: 'sz' },
        { name: 'len', argv: ['blockfarm-exec', '--calc', '${sz}', '-', '8'], capture: 'len' },
      ],
    };
    const r = run([], JSON.stringify(plan));
    expect(r.code).toBe(0);
    const events = r.out.trim().split('\n').map((l) => JSON.parse(l) as { ev: string; captured?: string });
    expect(events.filter((e) => e.ev === 'setup').map((e) => e.captured)).toEqual(['131072', '131064']);
  });
});
