/**
 * The CLI as users run it: real `node bin/blockfarm.js` processes, checked
 * by exit code, stdout and stderr. Fixtures: test/fixtures/cases.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const FIXTURES = 'test/fixtures/cases';
const VALID = `${FIXTURES}/write-read-disk.json`;

interface Ran {
  code: number | null;
  stdout: string;
  stderr: string;
}

function blockfarm(args: string[], env: Record<string, string> = {}): Promise<Ran> {
  return new Promise((resolve, reject) => {
    const base = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('BLOCKFARM_')));
    const child = spawn(process.execPath, ['bin/blockfarm.js', ...args], {
      cwd: ROOT,
      env: { ...base, BLOCKFARM_LOG_FORMAT: 'json', ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

const lines = (s: string) => s.split('\n').filter((l) => l.length > 0);
/** A Node stack trace frame: what users must never see for bad input. */
const STACK_FRAME = /^\s+at .+[(:]\d+/m;

const tempDirs: string[] = [];
function tempDir(): string {
  const d = mkdtempSync(join(tmpdir(), 'blockfarm-cli-'));
  tempDirs.push(d);
  return d;
}
afterAll(() => {
  for (const d of tempDirs) rmSync(d, { recursive: true, force: true });
});

describe.concurrent('blockfarm validate', () => {
  it('exits 0 and says ok for a valid case', async () => {
    const r = await blockfarm(['validate', VALID]);
    expect(r.code).toBe(0);
    expect(lines(r.stdout)).toEqual([`${VALID}: ok`]);
  });

  it('exits 2 with one FILE: path: message line per shape problem', async () => {
    const file = `${FIXTURES}/bad-shape.json`;
    const r = await blockfarm(['validate', file]);
    expect(r.code).toBe(2);
    const out = lines(r.stdout);
    expect(out).toContain(`${file}: seed: missing (expected number)`);
    expect(out).toContain(`${file}: stack.layers[0]: unknown field 'colour'`);
    expect(out.some((l) => l.startsWith(`${file}: program.threads[0].ops[0]`) && l.includes('op kind'))).toBe(true);
    for (const l of out) expect(l).toMatch(new RegExp(`^${file.replace(/[.[\]]/g, '\\$&')}: \\S+: .+`));
    expect(r.stderr).not.toMatch(STACK_FRAME);
  });

  it('exits 2 naming the path of each semantic problem', async () => {
    const file = `${FIXTURES}/bad-semantics.json`;
    const r = await blockfarm(['validate', file]);
    expect(r.code).toBe(2);
    const out = lines(r.stdout);
    expect(out.find((l) => l.startsWith(`${file}: stack.layers[1].members: `))).toMatch(/raid0/);
    expect(out.find((l) => l.startsWith(`${file}: program.threads[0].ops[0].target: `))).toMatch(/'nowhere'/);
    expect(out.find((l) => l.startsWith(`${file}: program.threads[0].ops[1].mustSucceed: `))).toMatch(/EINVAL/);
  });

  it('exits 2 with one clear line for a missing file', async () => {
    const r = await blockfarm(['validate', 'no/such/case.json']);
    expect(r.code).toBe(2);
    expect(lines(r.stdout)).toEqual(['no/such/case.json: cannot read: no such file or directory']);
    expect(r.stderr).not.toMatch(STACK_FRAME);
  });

  it('exits 2 with one clear line for bad JSON, with its line and column', async () => {
    const file = `${FIXTURES}/not-json.json`;
    const r = await blockfarm(['validate', file]);
    expect(r.code).toBe(2);
    const out = lines(r.stdout);
    expect(out).toHaveLength(1);
    expect(out[0]).toMatch(new RegExp(`^${file.replace(/\./g, '\\.')}: not valid JSON: .*line 4`));
    expect(r.stderr).not.toMatch(STACK_FRAME);
  });

  it('exits 2 when one of several files is invalid, and still reports the valid one', async () => {
    const r = await blockfarm(['validate', VALID, `${FIXTURES}/bad-shape.json`]);
    expect(r.code).toBe(2);
    expect(lines(r.stdout)[0]).toBe(`${VALID}: ok`);
  });
});

describe.concurrent('blockfarm run', () => {
  it('--json on one valid case prints one parseable object with verdict pass and exits 0', async () => {
    const r = await blockfarm(['run', VALID, '--target', 'model', '--json']);
    expect(r.code).toBe(0);
    const doc = JSON.parse(r.stdout) as Record<string, unknown>;
    expect(doc).toMatchObject({ verdict: 'pass', target: 'model', case: 'write-read-disk', divergences: [], notes: [] });
    expect(typeof doc.durationMs).toBe('number');
  });

  it('prints one human line per case: verdict, name, duration', async () => {
    const r = await blockfarm(['run', VALID, '--target', 'model']);
    expect(r.code).toBe(0);
    expect(lines(r.stdout)).toHaveLength(1);
    expect(r.stdout).toMatch(/^pass\s+write-read-disk\s+\d+ ms\s/);
  });

  it('keeps stdout pure JSON while debug logs go to stderr', async () => {
    const r = await blockfarm(['--verbose', 'run', VALID, '--json']);
    expect(r.code).toBe(0);
    expect(JSON.parse(r.stdout)).toMatchObject({ verdict: 'pass' });
    const logs = lines(r.stderr).map((l) => JSON.parse(l) as { level: number; msg: string });
    expect(logs.some((l) => l.level === 20 && l.msg === 'running case')).toBe(true);
  });

  it('exits 2 with one line for an unknown target, before touching the files', async () => {
    const r = await blockfarm(['run', VALID, '--target', 'nosuch', '--json']);
    expect(r.code).toBe(2);
    expect(r.stdout).toBe('');
    expect(lines(r.stderr)).toEqual([expect.stringContaining("unknown target 'nosuch'")]);
  });

  it('refuses the host target without --allow-host: one line, exit 2', async () => {
    const r = await blockfarm(['run', VALID, '--target', 'host']);
    expect(r.code).toBe(2);
    expect(r.stdout).toBe('');
    expect(lines(r.stderr)).toEqual([expect.stringContaining('pass --allow-host')]);
  });

  it('runs a directory as a report: results in name order, summary, worst exit code', async () => {
    const r = await blockfarm(['run', FIXTURES, '--json']);
    expect(r.code).toBe(2);
    const doc = JSON.parse(r.stdout) as { target: string; results: Array<{ file: string; verdict: string }>; summary: Record<string, number> };
    expect(doc.target).toBe('model');
    const files = doc.results.map((x) => x.file);
    expect(files).toEqual([...files].sort());
    expect(doc.results.find((x) => x.file === VALID)?.verdict).toBe('pass');
    expect(doc.results.filter((x) => x.verdict === 'invalid')).toHaveLength(3);
    expect(doc.summary).toMatchObject({ cases: 4, pass: 1, invalid: 3, divergence: 0, exitCode: 2 });
  });

  it('reports a missing file as invalid (exit 2), in JSON and as a clear line on stderr', async () => {
    const r = await blockfarm(['run', 'missing.json', '--json']);
    expect(r.code).toBe(2);
    expect(JSON.parse(r.stdout)).toMatchObject({ verdict: 'invalid', case: null, problems: [{ path: '(file)' }] });
    expect(r.stderr).toContain('missing.json: cannot read: no such file or directory');
  });
});

describe.concurrent('blockfarm doctor', () => {
  it('exits 0 with a readable table', async () => {
    const r = await blockfarm(['doctor']);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^target model: ready/m);
    expect(r.stdout).toMatch(/^target host: /m);
    expect(r.stdout).toMatch(/^target qemu:<kernel>: /m);
  });

  it('--json has one entry per target, each with its checks', async () => {
    const r = await blockfarm(['doctor', '--json']);
    expect(r.code).toBe(0);
    const doc = JSON.parse(r.stdout) as {
      targets: Array<{ name: string; built: boolean; status: string; checks: Array<{ what: string; status: string }> }>;
      modelWorks: boolean;
    };
    expect(doc.targets.map((t) => t.name)).toEqual(['model', 'host', 'qemu']);
    expect(doc.modelWorks).toBe(true);
    const model = doc.targets.find((t) => t.name === 'model');
    expect(model?.status).toBe('ready');
    expect(model?.checks.some((c) => c.what.startsWith('self-test') && c.status === 'ok')).toBe(true);
    const host = doc.targets.find((t) => t.name === 'host');
    expect(host?.checks.length).toBeGreaterThan(0);
    // The host target answers for itself: the tools and kernel features it uses.
    expect(host?.built).toBe(true);
    for (const what of ['losetup', 'mkfs.xfs', 'e2fsck', 'fio', 'kernel module dm_mod']) expect(host?.checks.map((c) => c.what)).toContain(what);
    for (const t of doc.targets) for (const c of t.checks) expect(['ok', 'missing', 'unknown']).toContain(c.status);
  });
});

// `blockfarm campaign` is the farm now (a private Redis, workers, a coordinator): its tests are in test/farm/cli.test.ts.

describe.concurrent('usage errors', () => {
  const usageErrors: Array<[string, string[]]> = [['frobnicate'], ['run'], ['validate'], ['run', VALID, '--no-such-option'], []].map((a) => [
    a.join(' ') || '(no command)',
    a,
  ]);
  it.each(usageErrors)('blockfarm %s exits 2, not 1 (which would mean a finding)', async (_label, args) => {
    const r = await blockfarm(args);
    expect(r.code).toBe(2);
    expect(r.stderr).not.toMatch(STACK_FRAME);
  });

  it('--help exits 0 and documents the exit codes', async () => {
    const r = await blockfarm(['--help']);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('1 finding');
  });
});
