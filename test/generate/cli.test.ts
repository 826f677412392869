/** `blockfarm generate` as users run it: a real process, files out, statistics, exit codes. */
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { validateCase } from '../../model/index.ts';
import { generateCase } from '../../coordinator/generate/index.ts';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));

function blockfarm(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('BLOCKFARM_')));
    const child = spawn(process.execPath, ['bin/blockfarm.js', ...args], { cwd: ROOT, env: { ...env, BLOCKFARM_LOG_FORMAT: 'json' }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

const dirs: string[] = [];
afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

describe.concurrent('blockfarm generate', () => {
  it('writes one valid case file per case, the same as the API, with statistics', async () => {
    const out = mkdtempSync(join(tmpdir(), 'blockfarm-gen-'));
    dirs.push(out);
    const r = await blockfarm(['generate', '--seed', '17', '--count', '12', '--out', out, '--target-kinds', 'host']);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/wrote 12 case\(s\) of campaign seed 17 \(host\)/);
    expect(r.stdout).toMatch(/scenario\s+cases\s+share/);
    const files = readdirSync(out).sort();
    expect(files).toHaveLength(12);
    for (let i = 0; i < 12; i++) {
      const c = JSON.parse(readFileSync(join(out, `gen-11-${i}.json`), 'utf8'));
      expect(validateCase(c).ok).toBe(true);
      expect(c).toEqual(generateCase(17, i, { supports: { layerKinds: ['disk', 'fs', 'file', 'loop'], fsTypes: ['ext4', 'xfs', 'btrfs'] } }));
    }
  });

  it('without --out prints one case per line, statistics on stderr', async () => {
    const r = await blockfarm(['generate', '--seed', '5', '--count', '3']);
    expect(r.code).toBe(0);
    const lines = r.stdout.trim().split('\n');
    expect(lines).toHaveLength(3);
    for (const l of lines) expect(validateCase(JSON.parse(l)).ok).toBe(true);
    expect(r.stderr).toMatch(/\(3 cases\)/);
  });

  it('exits 2 on bad options, with one line per problem and no stack trace', async () => {
    const r = await blockfarm(['generate', '--seed', 'x', '--count', '0', '--target-kinds', 'mainframe']);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/--seed must be an integer/);
    expect(r.stderr).toMatch(/--count must be an integer from 1/);
    expect(r.stderr).toMatch(/--target-kinds must be one of host, qemu, all/);
    expect(r.stderr).not.toMatch(/^\s+at /m);
    const missing = await blockfarm(['generate', '--count', '3']);
    expect(missing.code).toBe(2);
  });
});
