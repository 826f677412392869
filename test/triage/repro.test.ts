/**
 * The standalone reproducers.
 * - repro.c compiles with gcc (-Wall -Wextra, no warnings) for every seed case
 *   (dm, md, scsi_debug, snapshots, remounts included), its repro.sh passes
 *   bash -n, and its embedded pattern (the executor's C code) equals
 *   model/pattern.ts.
 * - On this machine's kernel (root and loop devices; skipped with the reason
 *   otherwise): repro.c exits 0 on a case the kernel handles as the model
 *   allows, and 1, naming the op and the offset, when the backing image is
 *   corrupted between the write and the read (fault injection the model is
 *   not told about, as test/host/host-target.test.ts does).
 * - repro.c's tables follow the path a real run took (its observation), so a
 *   seed where the kernel picks block sizes and either-way outcomes is
 *   checked to the end; without one they follow the model's predictions and
 *   stop checking, saying why, where the kernel takes another allowed path.
 * - repro.sh sets the stack up, runs, checks and tears down leaving no loop
 *   device or mount of its own behind: on success, on a finding, when a
 *   set-up step fails and when it is killed half-way.
 * - report folders: every file, readable report.md, safe names.
 */
import { type ChildProcess, execFileSync, spawn, spawnSync } from 'node:child_process';
import { closeSync, existsSync, mkdtempSync, openSync, readFileSync, readdirSync, rmSync, writeFileSync, writeSync, fsyncSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Case, type CaseInput, type StackInfo, patternBytes, validateCase } from '../../model/index.ts';
import { loadSeedCases } from '../../corpus/seeds.ts';
import { generateReproC } from '../../coordinator/triage/repro-c.ts';
import { generateReproSh, shQuote } from '../../coordinator/triage/repro-sh.ts';
import { signatureDir, signaturesRoot } from '../../coordinator/triage/files.ts';
import { writeReport } from '../../coordinator/triage/report.ts';
import { minimize } from '../../coordinator/triage/minimize.ts';
import { signatureOf } from '../../coordinator/triage/signature.ts';
import { MemorySignatureStore } from '../../coordinator/triage/store.ts';
import { PlantedBugExecutor, plantedCase } from './helpers/planted-bug.ts';
import { TargetExecutor, observationOf } from '../../coordinator/triage/executor.ts';
import { buildExecutor } from '../../worker/executor/build.ts';
import { HostTarget } from '../../worker/targets/host/host-target.ts';

const MiB = 1024 * 1024;
const hasGcc = spawnSync('gcc', ['--version']).status === 0;
const hasUring = existsSync('/usr/include/liburing.h');
const compileSkip = !hasGcc ? 'gcc is not installed' : !hasUring ? 'liburing-dev is not installed' : undefined;
if (compileSkip) console.log(`skipping the repro.c compile tests: ${compileSkip}`);
const root = process.getuid?.() === 0;
const loops = existsSync('/dev/loop-control');
const hostSkip = compileSkip ?? (!root ? 'not root' : !loops ? 'no /dev/loop-control' : undefined);
if (hostSkip) console.log(`skipping the reproducer runs on this kernel: ${hostSkip}`);

const work = mkdtempSync(join(tmpdir(), 'blockfarm-repro-test-'));
afterAll(() => rmSync(work, { recursive: true, force: true }));

function built(input: unknown): { c: Case; info: StackInfo } {
  const v = validateCase(input);
  if (!v.ok) throw new Error(v.issues.map((i) => `${i.path}: ${i.message}`).join('; '));
  return { c: v.value, info: v.info };
}

let n = 0;
function compile(source: string): string {
  const dir = join(work, `c${n++}`);
  execFileSync('mkdir', ['-p', dir]);
  writeFileSync(join(dir, 'repro.c'), source);
  const r = spawnSync('gcc', ['-O2', '-Wall', '-Wextra', '-Wno-unused-parameter', '-o', join(dir, 'repro'), join(dir, 'repro.c'), '-luring', '-lpthread'], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`gcc failed:\n${r.stderr}`);
  expect(r.stderr).toBe('');
  return join(dir, 'repro');
}

/** A raw disk: a write, an fsync, a pause (where a test may damage the image), an O_DIRECT read back. */
const rawInput: CaseInput = {
  format: 'blockfarm-case/1',
  name: 'raw-write-read',
  seed: 77,
  stack: { layers: [{ id: 'd0', kind: 'disk', size: 16 * MiB }] },
  program: {
    threads: [
      {
        ops: [
          { kind: 'write', id: 1, target: 'd0', offset: 1 * MiB, length: 65536, direct: true },
          { kind: 'fsync', id: 2, target: 'd0' },
          { kind: 'sleep', id: 3, ms: 1500 },
          { kind: 'read', id: 4, target: 'd0', offset: 1 * MiB, length: 65536, direct: true, via: 'io_uring', vectors: 2 },
        ],
      },
    ],
  },
};

/** ext4 with a file, written through two threads and a mapping, remounted: mkfs, mount, commands, fsck and teardown in repro.sh. */
const fsInput: CaseInput = {
  format: 'blockfarm-case/1',
  name: 'ext4-file',
  seed: 78,
  stack: {
    layers: [
      { id: 'd0', kind: 'disk', size: 64 * MiB },
      { id: 'fs0', kind: 'fs', on: 'd0', type: 'ext4' },
      { id: 'f', kind: 'file', on: 'fs0', name: 'data', size: 0 },
    ],
  },
  program: {
    threads: [
      {
        ops: [
          { kind: 'write', id: 1, target: 'f', offset: 0, length: 12288 },
          { kind: 'fsync', id: 2, target: 'f' },
          { kind: 'barrier', id: 3, name: 'b' },
          { kind: 'read', id: 4, target: 'f', offset: 0, length: 16384, via: 'pvec', vectors: 3 },
          { kind: 'barrier', id: 9, name: 'c' },
          { kind: 'remount', id: 10, target: 'fs0' },
          { kind: 'read', id: 11, target: 'f', offset: 4096, length: 8192, direct: true },
        ],
      },
      { ops: [{ kind: 'sleep', id: 5, ms: 10 }, { kind: 'barrier', id: 6, name: 'b' }, { kind: 'mmap-read', id: 7, target: 'f', offset: 0, length: 8192 }, { kind: 'sleep', id: 8, ms: 1500 }, { kind: 'barrier', id: 12, name: 'c' }] },
    ],
  },
};

describe.skipIf(compileSkip)('repro.c', () => {
  it('compiles without warnings for every seed case, and its repro.sh is valid shell', () => {
    const seeds = loadSeedCases();
    for (const { file, caseJson } of seeds) {
      const { c, info } = built(caseJson);
      const exe = compile(generateReproC(c, info, { header: [`seed ${file}`] }));
      const sh = join(exe, '..', 'repro.sh');
      writeFileSync(sh, generateReproSh(c, info, { header: [`seed ${file}`] }));
      expect(spawnSync('bash', ['-n', sh], { encoding: 'utf8' }).stderr, file).toBe('');
    }
    expect(seeds.length).toBeGreaterThanOrEqual(18);
  }, 300_000);

  it("embeds the executor's pattern code, equal to model/pattern.ts", () => {
    const { c, info } = built(rawInput);
    const exe = compile(generateReproC(c, info, { header: ['pattern'] }));
    for (const [seed, op, addr, len] of [[0, 1, 0, 64], [77, 1, 1048576, 300], [0xffffffff, 2147483647, 2 ** 40 + 3, 50], [5, 9, -13, 40], [1234, 7, 4093, 600]] as const) {
      const out = execFileSync(exe, ['--pattern', String(seed), String(op), String(addr), String(len)], { encoding: 'utf8' }).trim();
      expect(out, `${seed}/${op}/${addr}`).toBe(Buffer.from(patternBytes(seed, op, addr, len)).toString('hex'));
    }
  });

  it('refuses bad arguments with its usage', () => {
    const { c, info } = built(rawInput);
    const exe = compile(generateReproC(c, info, { header: ['usage'] }));
    const r = spawnSync(exe, ['bogus=/dev/null'], { encoding: 'utf8' });
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/usage: .* d0=PATH/);
    expect(spawnSync(exe, [], { encoding: 'utf8' }).status).toBe(2);
  });
});

// ---------------------------------------------------------------- on this kernel

/** Loop devices backed by files under `dir`, and mounts under it. */
function leftovers(dir: string): string[] {
  const out: string[] = [];
  for (const name of readdirSync('/sys/block').filter((x) => x.startsWith('loop'))) {
    let backing = '';
    try {
      backing = readFileSync(`/sys/block/${name}/loop/backing_file`, 'utf8').trim();
    } catch {
      continue;
    }
    if (backing.startsWith(dir)) out.push(`loop ${name} -> ${backing}`);
  }
  for (const line of readFileSync('/proc/self/mountinfo', 'utf8').split('\n')) {
    const point = line.split(' ')[4];
    if (point?.startsWith(dir)) out.push(`mount ${point}`);
  }
  return out;
}

interface Ran {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Run a command; `onLine(line, child)` sees stdout as it comes. */
function run(cmd: string, args: string[], env: Record<string, string> = {}, onLine?: (line: string, child: ChildProcess) => void): Promise<Ran> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    let partial = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => {
      stdout += d;
      partial += d;
      const lines = partial.split('\n');
      partial = lines.pop()!;
      for (const l of lines) onLine?.(l, child);
    });
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

/** Overwrite `len` bytes of a file at `off` with a pattern no op writes, durably. */
function damage(file: string, off: number, len: number): void {
  const fd = openSync(file, 'r+');
  writeSync(fd, Buffer.alloc(len, 0x3c), 0, len, off);
  fsyncSync(fd);
  closeSync(fd);
}

describe.skipIf(hostSkip)('reproducers on this kernel', () => {
  let base = '';
  beforeAll(() => {
    base = mkdtempSync('/var/tmp/blockfarm-repro-host-');
  });
  afterAll(() => {
    expect(leftovers(base)).toEqual([]);
    rmSync(base, { recursive: true, force: true });
  });

  it('repro.c exits 0 when the kernel does what the model allows, 1 with the op and offset when the image is damaged under it', async () => {
    const { c, info } = built(rawInput);
    const exe = compile(generateReproC(c, info, { header: ['raw'] }));
    const img = join(base, 'raw.img');
    execFileSync('truncate', ['-s', String(16 * MiB), img]);
    const dev = execFileSync('losetup', ['--find', '--show', img], { encoding: 'utf8' }).trim();
    try {
      const clean = await run(exe, [`d0=${dev}`]);
      expect(clean.code, clean.stdout + clean.stderr).toBe(0);
      expect(clean.stdout).toMatch(/op 4 \(thread 0\) read d0 .*: ok, 65536 bytes/);
      expect(clean.stdout).toMatch(/RESULT: every op did what the model allows/);

      const bad = 1 * MiB + 8192;
      const hit = await run(exe, [`d0=${dev}`], {}, (line) => {
        // Between the fsync and the read (op 3 sleeps 1.5 s): damage the image behind the loop device.
        if (line.startsWith('op 2 ')) damage(img, bad, 512);
      });
      expect(hit.code, hit.stdout + hit.stderr).toBe(1);
      expect(hit.stdout).toMatch(new RegExp(`op 4 .*\\n  DIVERGENCE: at offset ${bad} of 'd0' the model allows op 1's data; got bytes no op wrote`));
      expect(hit.stdout).toMatch(/expected: ([0-9a-f]{2} ){16}\n {4}got: {6}(3c ){16}/);
      expect(hit.stdout).toMatch(/RESULT: \d divergences? from what the model allows/);
    } finally {
      execFileSync('losetup', ['-d', dev]);
    }
  }, 60_000);

  async function reproSh(input: CaseInput, opts: { onLine?: (line: string, child: ChildProcess, tmp: string) => void; edit?: (sh: string) => string } = {}): Promise<Ran & { tmp: string }> {
    const { c, info } = built(input);
    const dir = mkdtempSync(join(base, 'r-'));
    const tmp = mkdtempSync(join(base, 't-'));
    writeFileSync(join(dir, 'repro.c'), generateReproC(c, info, { header: [c.name] }));
    const sh = generateReproSh(c, info, { header: [c.name] });
    writeFileSync(join(dir, 'repro.sh'), opts.edit ? opts.edit(sh) : sh, { mode: 0o755 });
    expect(leftovers(tmp)).toEqual([]);
    const r = await run(join(dir, 'repro.sh'), [], { REPRO_TMP: tmp }, (l, ch) => opts.onLine?.(l, ch, tmp));
    expect(leftovers(tmp), r.stderr).toEqual([]);
    expect(readdirSync(tmp)).toEqual([]);
    return { ...r, tmp };
  }

  it('repro.sh sets up ext4, runs, checks with fsck and leaves nothing attached or mounted', async () => {
    const r = await reproSh(fsInput);
    expect(r.code, r.stdout + r.stderr).toBe(0);
    expect(r.stderr).toMatch(/mkfs fs0/);
    expect(r.stderr).toMatch(/check: fsck fs0/);
    expect(r.stdout).toMatch(/op 7 \(thread 1\) mmap-read f \[0, \+8192\): ok, 8192 bytes/);
    // The remount runs the layer's own commands, with the work directory repro.sh passed in.
    // (in this order; the other thread's lines may come in between)
    expect(r.stdout).toMatch(/op 10 runs: umount \/.*\/mnt-fs0\n(?:.*\n)*?  op 10 runs: mount -t ext4 -o defaults \/dev\/loop\d+ \/.*\/mnt-fs0\n(?:.*\n)*?op 10 \(thread 0\) remount fs0 \(cycle, ext4\): ok, 0/);
    expect(r.stdout).toMatch(/op 11 \(thread 0\) read f \[4096, \+8192\) psync O_DIRECT: ok, 8192 bytes/);
    expect(r.stdout).toMatch(/final: 'f' is 12288 bytes/);
  }, 120_000);

  it('repro.sh exits 1 on the damaged image and still tears down', async () => {
    const r = await reproSh(rawInput, {
      onLine: (line, _child, tmp) => {
        if (!line.startsWith('op 2 ')) return;
        const [w] = readdirSync(tmp);
        damage(join(tmp, w!, 'disk-d0.img'), 1 * MiB, 4096);
      },
    });
    expect(r.code, r.stdout + r.stderr).toBe(1);
    expect(r.stdout).toMatch(/DIVERGENCE: at offset 1048576 of 'd0'/);
  }, 60_000);

  it('repro.sh undoes what it built when a set-up step fails', async () => {
    // Make the mount fail (an unknown option) after the loop device and mkfs succeeded.
    const r = await reproSh(fsInput, { edit: (sh) => sh.replace('-o defaults', '-o no_such_option_xyz') });
    expect(r.code).toBe(3);
    expect(r.stderr).toMatch(/set-up step failed: mount fs0/);
  }, 120_000);

  it('steered by a run on this kernel, repro.c checks a seed with kernel-chosen block sizes and either-way outcomes to the end', async () => {
    const seed = loadSeedCases().find((x) => x.file.endsWith('s1-loop-dio-xfs-block-sizes.json'))!;
    const { c, info } = built(seed.caseJson);
    const ex = new TargetExecutor(new HostTarget({ workRoot: join(base, 'host'), executor: buildExecutor }));
    const o = await ex.run(c);
    const observation = observationOf(o);
    expect(o.kind, JSON.stringify(o)).toBe('pass');
    expect(observation).toBeDefined();
    const dir = mkdtempSync(join(base, 's-'));
    const tmp = mkdtempSync(join(base, 't-'));
    writeFileSync(join(dir, 'repro.c'), generateReproC(c, info, { header: ['steered'], observation: observation! }));
    writeFileSync(join(dir, 'repro.sh'), generateReproSh(c, info, { header: ['steered'] }), { mode: 0o755 });
    const r = await run(join(dir, 'repro.sh'), [], { REPRO_TMP: tmp });
    expect(r.code, r.stdout + r.stderr).toBe(0);
    expect(r.stdout).not.toMatch(/nothing is checked/);
    expect(r.stdout).toMatch(/loauto: logical block size \d+/);
    expect(r.stdout).toMatch(/RESULT: every op did what the model allows/);
    expect(leftovers(tmp)).toEqual([]);
  }, 300_000);

  it('repro.sh tears down when it is killed half-way', async () => {
    const r = await reproSh(fsInput, {
      onLine: (line, child) => {
        if (line.startsWith('op 7 ')) child.kill('SIGTERM');
      },
    });
    expect(r.code).toBe(143);
  }, 120_000);
});

describe('report folders', () => {
  it('holds the report, the cases and the reproducers; report.md reads well', async () => {
    const { theCase, planted } = plantedCase(60, 23);
    const ex = new PlantedBugExecutor();
    const m = await minimize(ex, theCase, { confirmRuns: 2 });
    const store = new MemorySignatureStore();
    const sig = signatureOf(m.originalOutcome!, theCase);
    const { record } = await store.record({ signature: sig, target: 'qemu:6.1.0-21-amd64', kernel: '6.1.0-21-amd64', kernelVersion: '6.1.90-1', theCase });
    const data = mkdtempSync(join(work, 'data-'));
    const dir = signatureDir(signaturesRoot(data), record.id);
    const files = await writeReport(dir, { record, original: theCase, minimized: m.minimized, minimize: m, outcome: m.outcome!, kernelLog: '[  1.0] loop0: detected capacity change from 0 to 2048\n' });
    expect(files.reproUnsupported).toBeUndefined();
    expect(readdirSync(dir).sort()).toEqual(['case.json', 'console.log', 'minimized.json', 'report.json', 'report.md', 'repro.c', 'repro.sh']);
    const md = readFileSync(join(dir, 'report.md'), 'utf8');
    expect(md.split('\n')[0]).toBe(`# ${record.title}`);
    expect(md).toMatch(/\*\*Warning\.\*\* .*crash the machine/);
    expect(md).toContain('6.1.0-21-amd64 (6.1.90-1)');
    expect(md).toMatch(/Minimized:\*\* \d+ ops, 3 threads, 6 layers → 3 ops, 1 thread, 1 layer/);
    expect(md).toMatch(new RegExp(`\\n0 +${planted.read} +read +d0 +0 +4096 +io_uring\\+buffered`));
    expect(md).toMatch(/the model allowed: /);
    expect(md).toMatch(/## Kernel log/);
    const json = JSON.parse(readFileSync(join(dir, 'report.json'), 'utf8')) as { signature: { id: string }; files: string[] };
    expect(json.signature.id).toBe(record.id);
    expect(JSON.parse(readFileSync(join(dir, 'minimized.json'), 'utf8'))).toEqual(m.minimized);
    if (!compileSkip) compile(readFileSync(join(dir, 'repro.c'), 'utf8'));
    expect(spawnSync('bash', ['-n', join(dir, 'repro.sh')]).status).toBe(0);
  });

  it('never lets a signature id name a path elsewhere', () => {
    for (const bad of ['../x', '/etc', 'a/../../b', '..', 'x y', 'A', 'a\nb', '-a']) expect(() => signatureDir('/data/signatures', bad), bad).toThrow(/not a signature id/);
    expect(signatureDir('/data/signatures', 'wrong-data-0123456789ab')).toBe('/data/signatures/wrong-data-0123456789ab');
  });

  it('quotes every shell word', () => {
    for (const s of ["it's", 'a b', '$(reboot)', '`x`', '"q"', '\\', 'a;b', '', '*', '~root', 'x\ny']) {
      const r = spawnSync('bash', ['-c', `printf '%s' ${shQuote(s)}`], { encoding: 'utf8' });
      expect(r.stdout, s).toBe(s);
    }
  });
});
