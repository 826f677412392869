/**
 * `blockfarm kernels build` for real, on a small configuration: Debian's
 * linux-source-6.1, tinyconfig plus configs/boot.config (what booting in the
 * QEMU target needs) plus configs/smoke.config (no modules, no kallsyms).
 * The kernel is registered, boots, runs a raw-disk case, refuses cases whose
 * layers its config lacks (naming the option), and a panic on it - printed
 * with raw addresses, as a kernel without kallsyms does - comes back
 * symbolized with its System.map.
 *
 * The build lives in .cache/kernel-build/test-smoke and is incremental: the
 * first run (CI, from nothing) extracts the tarball and compiles everything;
 * later runs recompile nothing. Never the full fuzzing kernel here.
 */
import { readFileSync, rmSync } from 'node:fs';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { buildErrorLines, kernelBuildRoot, requestedOptions } from '../../infra/kernels/build.ts';
import { KernelConfig } from '../../infra/kernels/config.ts';
import { loadFetched } from '../../infra/kernels/store.ts';
import type { ExecPlan, PlanOp } from '../../worker/executor/protocol.ts';
import { validateCase } from '../../model/index.ts';
import { parseKernelLog } from '../../worker/kernel-log/parse.ts';
import { runCase } from '../../worker/run-case.ts';
import { createQemuTarget } from '../../worker/targets/qemu/factory.ts';
import type { QemuTarget } from '../../worker/targets/qemu/qemu-target.ts';
import { ROOT, blockfarm, lines } from '../qemu/helpers.ts';

const NAME = 'test-smoke';
const targets: QemuTarget[] = [];

afterAll(async () => {
  for (const t of targets) await t.close();
});

function fixture(name: string) {
  const v = validateCase(JSON.parse(readFileSync(path.join(ROOT, 'test/fixtures/kernels', name), 'utf8')));
  if (!v.ok) throw new Error(`${name} does not validate`);
  return v;
}

describe('build helpers', () => {
  it('reads what a fragment asks for, and picks the compiler errors out of make output', () => {
    expect([...requestedOptions('# a comment\nCONFIG_PVH=y\n# CONFIG_MODULES is not set\nCONFIG_CMDLINE="x y"\n')]).toEqual([
      ['PVH', 'y'],
      ['MODULES', 'n'],
      ['CMDLINE', 'x y'],
    ]);
    const tail = ['  CC      kernel/fork.o', "fs/x.c:3:1: error: unknown type name 'foo'", '    3 | foo bar;', 'make[2]: *** [scripts/Makefile.build:250: fs/x.o] Error 1', 'make: *** [Makefile:1992: .] Error 2'];
    expect(buildErrorLines(tail)).toEqual(["fs/x.c:3:1: error: unknown type name 'foo'"]);
  });
});

describe('blockfarm kernels build', () => {
  it('builds a small kernel from linux-source-6.1, registers it, boots it and runs a case; cases its config lacks are unsupported', async () => {
    const t0 = Date.now();
    const r = await blockfarm([
      'kernels', 'build', NAME, '--debian-source', '--base', 'tinyconfig', '--no-fuzz-config',
      '--config-fragment', 'infra/kernels/configs/smoke.config',
    ]);
    const secs = Math.round((Date.now() - t0) / 1000);
    console.log(`kernels build ${NAME}: ${secs} s (exit ${r.code})`);
    expect(r.code, r.stderr.slice(-3000)).toBe(0);
    expect(r.stderr).toMatch(/kernels build: configure: tinyconfig \+ boot\.config \+ smoke\.config/);
    expect(r.stderr).toMatch(/kernels build: built in \d+ s \(log: .*build\.log\)/);
    expect(r.stderr).toMatch(new RegExp(`kernels build: ${NAME} boots \\(`));
    const k = (await loadFetched(NAME))!;
    expect(lines(r.stdout)).toEqual([k.dir]);
    expect(k.info).toMatchObject({ origin: 'built', bzImage: 'bzImage', vmlinux: 'bzImage', modules: '', systemMap: 'System.map', config: 'config' });
    expect(k.info.release).toMatch(/^6\.1\.\d+/);
    const cfg = await KernelConfig.load(k.config);
    expect([cfg.get('PVH'), cfg.get('VIRTIO_BLK'), cfg.get('MODULES'), cfg.get('KALLSYMS')]).toEqual(['y', 'y', 'n', 'n']);

    const pass = await blockfarm(['run', 'test/fixtures/kernels/raw-disk-dio.json', '--target', `qemu:${NAME}`, '--json']);
    expect([pass.code, JSON.parse(pass.stdout).verdict], pass.stdout.slice(0, 2000) + pass.stderr.slice(-1000)).toEqual([0, 'pass']);

    const loop = await blockfarm(['run', 'test/fixtures/kernels/loop-on-raw.json', '--target', `qemu:${NAME}`, '--json']);
    expect(loop.code).toBe(3);
    expect(JSON.parse(loop.stdout).reason).toBe(`kernel ${NAME} lacks CONFIG_BLK_DEV_LOOP (needed by loop layer 'l'; not set in its config)`);
    const dust = await blockfarm(['run', 'test/fixtures/kernels/dm-dust-read.json', '--target', `qemu:${NAME}`, '--json']);
    expect([dust.code, JSON.parse(dust.stdout).reason]).toEqual([3, expect.stringMatching(/lacks CONFIG_BLK_DEV_DM \(needed by dm-dust layer 'x'/)]);
  }, 3_600_000);

  it('a panic on the kernel without kallsyms comes back symbolized with its System.map', async () => {
    let cases = 0;
    const t = await createQemuTarget(`qemu:${NAME}`, {
      // A test-only op that panics the guest in the first case.
      planHookForTests: (plan: ExecPlan) =>
        cases++ === 0 ? { ...plan, threads: [[{ id: 900, kind: 'exec', argvs: [['sh', '-c', 'echo c > /proc/sysrq-trigger']] } as PlanOp, ...(plan.threads[0] ?? [])], ...plan.threads.slice(1)] } : plan,
    });
    targets.push(t);
    const v = fixture('raw-disk-dio.json');
    const o = await runCase(t, v.value, v.info);
    expect(o.kind, JSON.stringify(o).slice(0, 800)).toBe('crash');
    if (o.kind !== 'crash') return;
    expect(o.title).toBe('kernel panic: sysrq triggered crash');
    // The console printed raw addresses; what the farm keeps names the functions. Without frame
    // pointers or ORC every frame is a guess ('? '), and the panic call ends sysrq_handle_crash, so its
    // return address is looked up one byte back (offset == size), as the kernel's own %pB does.
    expect(o.log).toMatch(/^\[[\s\d.]+\]\s+\? sysrq_handle_crash\+0x([0-9a-f]+)\/0x\1$/m);
    expect(o.log).toMatch(/^\[[\s\d.]+\]\s+\? write_sysrq_trigger\+0x[0-9a-f]+\/0x[0-9a-f]+$/m);
    expect(o.log).not.toMatch(/0xffffffff[0-9a-f]{8}\s*$/m);
    expect(parseKernelLog(o.log).find((r) => r.kind === 'panic')?.title).toBe('kernel panic: sysrq triggered crash');
  }, 900_000);

  it('--source with a patch that breaks the tree: the build fails in one line naming the step and the error; the tree given is not touched', async () => {
    const broken = 'test-broken-build';
    try {
      // A kernel developer's own tree: here the Debian tree the small build used, given with --source.
      const small = await loadFetched(NAME);
      const tree = small!.info.source!;
      const r = await blockfarm([
        'kernels', 'build', broken, '--source', tree, '--base', 'tinyconfig', '--no-fuzz-config',
        '--patch', 'test/fixtures/kernels/break-relocs.patch', '--no-boot-check',
      ]);
      expect(r.code, r.stderr.slice(-2000)).toBe(2);
      const failure = lines(r.stderr).filter((l) => l.startsWith('blockfarm kernels build:'));
      expect(failure).toEqual([expect.stringMatching(/^blockfarm kernels build: step 'build': make bzImage failed: .*relocs_64\.c:\d+:\d+: error: .*\(log: .*build\.log\)$/)]);
      expect(await loadFetched(broken)).toBeUndefined();
      expect(r.stderr).toMatch(/kernels build: source: copying .* to apply 1 patch\(es\)/);
      // The tree given is untouched: the patch went to this build's own copy.
      const shared = readFileSync(path.join(tree, 'arch/x86/tools/relocs_64.c'), 'utf8');
      expect(shared).not.toMatch(/blockfarm_broken_on_purpose/);
    } finally {
      rmSync(path.join(kernelBuildRoot(), broken), { recursive: true, force: true });
    }
  }, 1_800_000);
});

