/**
 * The triage commands as users run them (node bin/blockfarm.js): triage,
 * report, minimize, bisect, repro, on a data directory filled through the
 * API with a finding of the TEST-ONLY planted-bug target (the CLI itself can
 * only run real targets: model and host here; qemu once it is built).
 */
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fileFinding, processSignature } from '../../coordinator/triage/index.ts';
import { DirSignatureStore } from '../../coordinator/triage/store.ts';
import { signaturesRoot } from '../../coordinator/triage/files.ts';
import { PlantedBugExecutor, plantedCase } from './helpers/planted-bug.ts';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));

interface Ran {
  code: number | null;
  stdout: string;
  stderr: string;
}

function blockfarm(args: string[], env: Record<string, string> = {}): Promise<Ran> {
  return new Promise((resolve, reject) => {
    const base = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('BLOCKFARM_')));
    const child = spawn(process.execPath, ['bin/blockfarm.js', ...args], { cwd: ROOT, env: { ...base, BLOCKFARM_LOG_FORMAT: 'json', BLOCKFARM_LOG_LEVEL: 'warn', ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

const dir = mkdtempSync(join(tmpdir(), 'blockfarm-triage-cli-'));
const data = join(dir, 'data');
let sigId = '';
let minimizedFile = '';
const root = process.getuid?.() === 0 && existsSync('/dev/loop-control') && existsSync('/usr/include/liburing.h');

beforeAll(async () => {
  const { theCase } = plantedCase(40, 29);
  const ex = new PlantedBugExecutor();
  const store = new DirSignatureStore(signaturesRoot(data));
  const f = await fileFinding(store, { outcome: await ex.run(theCase), theCase, target: 'qemu:6.1.0-21-amd64', kernelVersion: '6.1.90-1', at: Date.now() - 3 * 3600_000 });
  const p = await processSignature(store, data, f!.record.id, { executor: ex, minimize: { confirmRuns: 2 } });
  sigId = p.record.id;
  minimizedFile = join(dir, 'min.json');
  writeFileSync(minimizedFile, readFileSync(join(p.report.dir, 'minimized.json')));
}, 60_000);
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('blockfarm triage / report', () => {
  it('lists the signatures with status, count, kernels and reproduction rate', async () => {
    const r = await blockfarm(['triage', '--data-dir', data]);
    expect(r.code, r.stderr).toBe(0);
    const [head, row] = r.stdout.trim().split('\n');
    expect(head).toMatch(/^signature +status +count +kernels +repro +last seen +title$/);
    expect(row).toMatch(new RegExp(`^${sigId} +new +1 +6\\.1\\.0-21-amd64 +2/2 +3h ago +wrong data \\(garbage\\) from read via io_uring O_DIRECT on loop \\(ext4\\)$`));
    const j = await blockfarm(['triage', '--data-dir', data, '--json']);
    expect((JSON.parse(j.stdout) as { signatures: Array<{ id: string }> }).signatures.map((s) => s.id)).toEqual([sigId]);
  });

  it('changes the status of a signature named by a prefix, and refuses what does not make sense', async () => {
    const prefix = sigId.slice(0, 20);
    const ok = await blockfarm(['triage', '--data-dir', data, '--set-status', `${prefix}=reported`, '--note', 'sent to linux-block']);
    expect(ok.code, ok.stderr).toBe(0);
    expect(ok.stdout.trim()).toBe(`${sigId}: reported`);
    expect((await blockfarm(['triage', '--data-dir', data, '--status', 'reported'])).stdout).toContain(sigId);
    expect((await blockfarm(['triage', '--data-dir', data, '--set-status', `${prefix}=fixed`])).code).toBe(2);
    expect((await blockfarm(['triage', '--data-dir', data, '--set-status', `${prefix}=gone`])).code).toBe(2);
    expect((await blockfarm(['triage', '--data-dir', data, '--set-status', 'no-such=new'])).code).toBe(2);
  });

  it('prints the report', async () => {
    const r = await blockfarm(['report', sigId.slice(0, 24), '--data-dir', data]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/^# wrong data \(garbage\) from read via io_uring O_DIRECT on loop \(ext4\)\n/);
    expect(r.stdout).toMatch(/## The minimized case/);
    const j = await blockfarm(['report', sigId, '--data-dir', data, '--json', '--rewrite']);
    expect((JSON.parse(j.stdout) as { signature: { status: string } }).signature.status).toBe('reported');
    const bad = await blockfarm(['report', '../../etc', '--data-dir', data]);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/no signature/);
  });
});

describe('blockfarm minimize / bisect / repro', () => {
  it('minimize: a case without a finding on the model is left alone (exit 0)', async () => {
    const r = await blockfarm(['minimize', minimizedFile, '--target', 'model', '--runs', '2']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/no finding on model in 2 runs; nothing to minimize/);
    expect((await blockfarm(['minimize', minimizedFile, '--target', 'host'])).code).toBe(2);
    expect((await blockfarm(['minimize', minimizedFile, '--target', 'model', '--runs', 'x'])).code).toBe(2);
  });

  it('bisect: needs two kernels; the model against itself agrees', async () => {
    expect((await blockfarm(['bisect', minimizedFile, '--kernels', 'model'])).code).toBe(2);
    const r = await blockfarm(['bisect', minimizedFile, '--kernels', 'model,model', '--runs', '1', '--json']);
    expect(r.code, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout)).toMatchObject({ found: false, message: expect.stringMatching(/agree \(both clean\)/) });
    const c = await blockfarm(['bisect', minimizedFile, '--kernels', 'model', '--cross', '--runs', '2']);
    expect(c.code, c.stderr).toBe(0);
    expect(c.stdout).toMatch(/model +2 +0 +0 +clean/);
  });

  it('repro: runs the minimized case on a target and records the rate', async () => {
    const r = await blockfarm(['repro', sigId, '--target', 'model', '--runs', '2', '--data-dir', data]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/on model: shown in 0 of 2 runs of the minimized case/);
    const rec = JSON.parse(readFileSync(join(data, 'reports', sigId, 'signature.json'), 'utf8')) as { reproduction: { runs: number; reproduced: number }; retests: Record<string, unknown> };
    expect(rec.reproduction).toMatchObject({ runs: 2, reproduced: 0 });
    expect(Object.keys(rec.retests)).toEqual(['model']);
    expect((await blockfarm(['repro', sigId, '--standalone', '--data-dir', data])).code).toBe(2);
  });

  it('bisect without --kernels takes the fetched kernels of a flavour, and says so when there are too few', async () => {
    const r = await blockfarm(['bisect', minimizedFile, '--flavour', 'rt-amd64'], { BLOCKFARM_CACHE: join(dir, 'empty-cache') });
    expect(r.code).toBe(3);
    expect(r.stderr).toMatch(/no rt-amd64 kernels fetched; bisection needs two: fetch more with 'blockfarm kernels fetch ID'/);
    const bad = await blockfarm(['bisect', minimizedFile, '--flavour', 'arm64']);
    expect(bad.code).toBe(2);
  });

  it.skipIf(!root)('repro --standalone runs repro.sh on this kernel; bisect across model and host', async () => {
    const r = await blockfarm(['repro', sigId, '--standalone', '--allow-host', '--data-dir', data]);
    expect(r.code, r.stdout + r.stderr).toBe(0);
    expect(r.stdout).toMatch(/RESULT: every op did what the model allows/);
    const b = await blockfarm(['bisect', minimizedFile, '--kernels', 'model,host', '--allow-host', '--runs', '1']);
    expect(b.code, b.stderr).toBe(0);
    expect(b.stdout).toMatch(/model and host agree \(both clean\)/);
  }, 120_000);
});
