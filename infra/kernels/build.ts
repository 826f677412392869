/**
 * `blockfarm kernels build NAME`: a kernel for the farm from a source tree
 * or from Debian's linux-source-6.1 package, in named steps:
 *
 *   source     the tree: --source DIR as it is (built out of tree, never
 *              written to), or Debian's tarball extracted once under the
 *              cache; with --patch, a private copy with the patches applied
 *   configure  base (defconfig) + configs/boot.config + configs/fuzz.config
 *              (+ --config-fragment files, last) merged with the tree's
 *              merge_config.sh, then olddefconfig; options the fragments ask
 *              for that did not survive (unmet dependencies) are reported
 *   build      make bzImage (and modules when CONFIG_MODULES=y), progress on
 *              stderr every few seconds, everything in build.log
 *   modules    make modules_install (stripped) into the build directory
 *
 * Layout under <cache>/kernel-build/:
 *   src/linux-source-6.1-<key>/   the extracted Debian tree (shared by builds without patches)
 *   <NAME>/out/                   the object tree (O=): a rebuild reuses it
 *   <NAME>/src/                   the patched copy, when --patch is given
 *   <NAME>/modroot/lib/modules/<release>/
 *   <NAME>/build.log              every step's commands and output
 *   <NAME>/last-build.json        what the last build did (steps, seconds), for the next one's progress
 *
 * A failed step throws KernelBuildError naming the step and the log's last
 * error lines.
 */
import { createHash } from 'node:crypto';
import { spawn } from 'node:child_process';
import { createWriteStream, type WriteStream } from 'node:fs';
import { access, mkdir, readFile, readdir, rename, rm, stat, writeFile } from 'node:fs/promises';
import { availableParallelism } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { KernelConfig } from './config.ts';
import { cacheRoot } from './paths.ts';
import { type MachineCheck, type ProbeEnv, checkFile, checkTool } from '../machine.ts';

const HERE = path.dirname(fileURLToPath(import.meta.url));
export const CONFIGS_DIR = path.join(HERE, 'configs');
/** The fragments every farm kernel gets, in order. */
export const FUZZ_FRAGMENTS: readonly string[] = [path.join(CONFIGS_DIR, 'boot.config'), path.join(CONFIGS_DIR, 'fuzz.config')];
export const DEBIAN_SOURCE_PACKAGE = 'linux-source-6.1';
export const DEBIAN_SOURCE_TARBALL = '/usr/src/linux-source-6.1.tar.xz';

export type BuildStep = 'source' | 'configure' | 'build' | 'modules';

export class KernelBuildError extends Error {
  override name = 'KernelBuildError';
  constructor(
    message: string,
    readonly step: BuildStep | 'input',
    /** Bad input (2): the tree, a patch, a fragment; else this machine (4). */
    readonly badInput: boolean,
  ) {
    super(message);
  }
}

export interface BuildKernelOptions {
  source: { kind: 'tree'; dir: string } | { kind: 'debian' };
  patches?: readonly string[];
  /** The user's fragments, merged after the farm's. */
  fragments?: readonly string[];
  /** defconfig (default), tinyconfig, or another make target that writes a .config. */
  base?: string;
  /** The farm's fragments (default FUZZ_FRAGMENTS); tests build a small kernel with other ones. */
  farmFragments?: readonly string[];
  /** DWARF for file:line in reports (default: none, much faster). */
  debugInfo?: boolean;
  /** make -j (default: the CPUs). */
  jobs?: number;
  env?: NodeJS.ProcessEnv;
  progress?: (line: string) => void;
  /** Seconds between progress lines. @defaultValue 10 */
  progressEverySec?: number;
}

export interface BuiltKernel {
  artifacts: { kernel: string; config: string; systemMap: string; modules?: string; debugVmlinux?: string };
  /** The tree it was built from. */
  source: string;
  log: string;
  ms: number;
  /** Seconds per step. */
  steps: Partial<Record<BuildStep, number>>;
  /** Options the fragments asked for that the final .config does not have. */
  dropped: string[];
}

export function kernelBuildRoot(env: NodeJS.ProcessEnv = process.env): string {
  return path.join(cacheRoot(env), 'kernel-build');
}

async function exists(p: string): Promise<boolean> {
  return access(p).then(
    () => true,
    () => false,
  );
}

async function fileKey(files: readonly string[]): Promise<string> {
  const h = createHash('sha256');
  for (const f of files) h.update(f).update('\0').update(await readFile(f)).update('\0');
  return h.digest('hex').slice(0, 16);
}

/** Runs one step's commands with their output into the log, and counts make's progress lines. */
class StepRunner {
  constructor(
    private readonly log: WriteStream,
    private readonly progress: (line: string) => void,
    private readonly everySec: number,
  ) {}

  note(line: string): void {
    this.log.write(`\n### ${new Date().toISOString()} ${line}\n`);
  }

  /** Run argv; resolves with the exit code; output goes to the log, make's "  CC  x.o" lines are counted. */
  run(step: BuildStep, argv: readonly string[], opts: { cwd?: string; expected?: number } = {}): Promise<{ code: number; tail: string[]; steps: number }> {
    this.note(`[${step}] ${argv.join(' ')}${opts.cwd ? ` (in ${opts.cwd})` : ''}`);
    return new Promise((resolve, reject) => {
      const child = spawn(argv[0]!, argv.slice(1), { cwd: opts.cwd, stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, LC_ALL: 'C' } });
      const tail: string[] = [];
      let steps = 0;
      let last = '';
      let partial = '';
      const t0 = Date.now();
      const timer = setInterval(() => {
        const secs = Math.round((Date.now() - t0) / 1000);
        const pct = opts.expected ? ` (~${Math.min(99, Math.round((100 * steps) / opts.expected))}% of the last build's)` : '';
        const made = steps ? `, ${steps} objects${pct}${last ? `, at ${last}` : ''}` : '';
        this.progress(`${step}: ${Math.floor(secs / 60)}m${String(secs % 60).padStart(2, '0')}s${made}`);
      }, this.everySec * 1000);
      const onData = (d: Buffer) => {
        this.log.write(d);
        const text = partial + d.toString();
        const lines = text.split('\n');
        partial = lines.pop() ?? '';
        for (const l of lines) {
          const m = /^\s{2}([A-Z][A-Z0-9_]*)\s+(\S+)/.exec(l);
          if (m) {
            steps++;
            last = m[2]!;
          }
          tail.push(l);
          if (tail.length > 400) tail.splice(0, tail.length - 400);
        }
      };
      child.stdout.on('data', onData);
      child.stderr.on('data', onData);
      child.on('error', (err) => {
        clearInterval(timer);
        reject(err);
      });
      child.on('close', (code) => {
        clearInterval(timer);
        if (partial) tail.push(partial);
        resolve({ code: code ?? 128, tail, steps });
      });
    });
  }
}

/** The lines of make's output that say why it failed. */
export function buildErrorLines(tail: readonly string[]): string[] {
  const errors = tail.filter((l) => /\berror\b|Error \d+|\*\*\*|undefined reference|No rule to make/i.test(l) && !/^make(?:\[\d+\])?: \*\*\* \[.*\] Error \d+$/.test(l.trim()));
  const picked = errors.length ? errors : tail.filter((l) => l.trim());
  return picked.slice(-3).map((l) => l.trim());
}

async function ensureDebianTarball(run: StepRunner): Promise<string> {
  if (await exists(DEBIAN_SOURCE_TARBALL)) return DEBIAN_SOURCE_TARBALL;
  const r = await run.run('source', ['apt-get', 'install', '-y', '-q', '--no-install-recommends', DEBIAN_SOURCE_PACKAGE]);
  if (r.code !== 0 || !(await exists(DEBIAN_SOURCE_TARBALL)))
    throw new KernelBuildError(`step 'source': apt-get install ${DEBIAN_SOURCE_PACKAGE} failed: ${buildErrorLines(r.tail).join(' / ')} (run infra/setup.sh as root)`, 'source', false);
  return DEBIAN_SOURCE_TARBALL;
}

/** Extract the tarball into `dest` (atomically), unless it is already there. */
async function extractOnce(run: StepRunner, tarball: string, dest: string, progress: (l: string) => void): Promise<string> {
  const stamp = path.join(dest, '.blockfarm-extracted');
  if (await exists(stamp)) return (await readFile(stamp, 'utf8')).trim();
  await mkdir(path.dirname(dest), { recursive: true });
  const tmp = `${dest}.tmp-${process.pid}`;
  await rm(tmp, { recursive: true, force: true });
  await mkdir(tmp, { recursive: true });
  progress(`source: extracting ${tarball}`);
  const r = await run.run('source', ['tar', '-xf', tarball, '-C', tmp]);
  if (r.code !== 0) {
    await rm(tmp, { recursive: true, force: true });
    throw new KernelBuildError(`step 'source': extracting ${tarball} failed: ${buildErrorLines(r.tail).join(' / ')}`, 'source', false);
  }
  // The tarball holds one top directory (linux-source-6.1/).
  const top = (await readdir(tmp)).filter((n) => !n.startsWith('.'));
  const tree = top.length === 1 ? top[0]! : '.';
  await writeFile(path.join(tmp, '.blockfarm-extracted'), `${tree}\n`);
  await rm(dest, { recursive: true, force: true });
  await rename(tmp, dest);
  return tree;
}

async function applyPatches(run: StepRunner, tree: string, patches: readonly string[]): Promise<void> {
  for (const p of patches) {
    const r = await run.run('source', ['patch', '-p1', '--forward', '--batch', '-d', tree, '-i', path.resolve(p)]);
    if (r.code !== 0) throw new KernelBuildError(`step 'source': patch ${p} does not apply: ${buildErrorLines(r.tail).join(' / ')}`, 'source', true);
  }
}

async function prepareSource(run: StepRunner, opts: BuildKernelOptions, buildDir: string, root: string, progress: (l: string) => void): Promise<string> {
  const patches = opts.patches ?? [];
  for (const p of patches) if (!(await exists(p))) throw new KernelBuildError(`--patch ${p}: no such file`, 'input', true);
  if (opts.source.kind === 'tree') {
    const dir = path.resolve(opts.source.dir);
    if (!(await exists(path.join(dir, 'Kconfig'))) || !(await exists(path.join(dir, 'Makefile'))) || !(await exists(path.join(dir, 'arch', 'x86'))))
      throw new KernelBuildError(`--source ${opts.source.dir}: not a Linux source tree (no Kconfig, Makefile and arch/x86)`, 'input', true);
    if (patches.length === 0) return dir;
    // Patching someone's tree in place would be rude: copy it (without .git) once per set of patches.
    const key = await fileKey(patches);
    const copy = path.join(buildDir, 'src');
    const stamp = path.join(copy, '.blockfarm-patched');
    if ((await exists(stamp)) && (await readFile(stamp, 'utf8')).trim() === `${dir} ${key}`) return copy;
    progress(`source: copying ${dir} to apply ${patches.length} patch(es)`);
    await rm(copy, { recursive: true, force: true });
    await mkdir(copy, { recursive: true });
    const r = await run.run('source', ['sh', '-c', 'tar -C "$1" --exclude=.git -cf - . | tar -C "$2" -xf -', 'copy', dir, copy]);
    if (r.code !== 0) throw new KernelBuildError(`step 'source': copying ${dir} failed: ${buildErrorLines(r.tail).join(' / ')}`, 'source', false);
    await applyPatches(run, copy, patches);
    await writeFile(stamp, `${dir} ${key}\n`);
    return copy;
  }
  const tarball = await ensureDebianTarball(run);
  const st = await stat(tarball);
  const tarKey = createHash('sha256').update(`${tarball}\0${st.size}\0${st.mtimeMs}`).digest('hex').slice(0, 12);
  if (patches.length === 0) {
    const dest = path.join(root, 'src', `${DEBIAN_SOURCE_PACKAGE}-${tarKey}`);
    return path.join(dest, await extractOnce(run, tarball, dest, progress));
  }
  const key = `${tarKey}-${await fileKey(patches)}`;
  const dest = path.join(buildDir, 'src');
  const stampFile = path.join(dest, '.blockfarm-patched');
  if ((await exists(stampFile)) && (await readFile(stampFile, 'utf8')).trim() === key) return path.join(dest, (await readFile(path.join(dest, '.blockfarm-extracted'), 'utf8')).trim());
  await rm(dest, { recursive: true, force: true });
  const tree = path.join(dest, await extractOnce(run, tarball, dest, progress));
  await applyPatches(run, tree, patches);
  await writeFile(stampFile, `${key}\n`);
  return tree;
}

/** CONFIG_X=y|m lines (and "is not set" lines) a fragment asks for. */
export function requestedOptions(text: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const line of text.split('\n')) {
    const m = /^CONFIG_(\w+)=(.*)$/.exec(line.trim());
    if (m) out.set(m[1]!, m[2]!.replace(/^"(.*)"$/, '$1'));
    const n = /^# CONFIG_(\w+) is not set$/.exec(line.trim());
    if (n) out.set(n[1]!, 'n');
  }
  return out;
}

export async function buildKernel(name: string, opts: BuildKernelOptions): Promise<BuiltKernel> {
  const env = opts.env ?? process.env;
  const progress = opts.progress ?? (() => {});
  const root = kernelBuildRoot(env);
  const buildDir = path.join(root, name);
  const out = path.join(buildDir, 'out');
  await mkdir(out, { recursive: true });
  const logPath = path.join(buildDir, 'build.log');
  const log = createWriteStream(logPath, { flags: 'a' });
  const run = new StepRunner(log, progress, opts.progressEverySec ?? 10);
  const t0 = performance.now();
  const steps: Partial<Record<BuildStep, number>> = {};
  const timed = async <T>(step: BuildStep, f: () => Promise<T>): Promise<T> => {
    const s = performance.now();
    try {
      return await f();
    } finally {
      steps[step] = Math.round((performance.now() - s) / 100) / 10;
    }
  };
  const lastPath = path.join(buildDir, 'last-build.json');
  const last = JSON.parse(await readFile(lastPath, 'utf8').catch(() => '{}')) as { objects?: number };
  try {
    const fragments = [...(opts.farmFragments ?? FUZZ_FRAGMENTS), ...(opts.fragments ?? [])].map((f) => path.resolve(f));
    for (const f of fragments) if (!(await exists(f))) throw new KernelBuildError(`--config-fragment ${f}: no such file`, 'input', true);
    run.note(`build ${name}: ${JSON.stringify({ source: opts.source, patches: opts.patches ?? [], fragments, base: opts.base ?? 'defconfig', debugInfo: Boolean(opts.debugInfo) })}`);

    const tree = await timed('source', () => prepareSource(run, opts, buildDir, root, progress));
    progress(`source: ${tree}`);

    // ---- configure
    const dropped = await timed('configure', async () => {
      progress(`configure: ${opts.base ?? 'defconfig'} + ${fragments.map((f) => path.basename(f)).join(' + ')}`);
      const debugFragment = path.join(buildDir, 'debug-info.config');
      await writeFile(
        debugFragment,
        opts.debugInfo
          ? '# CONFIG_DEBUG_INFO_NONE is not set\nCONFIG_DEBUG_INFO_DWARF_TOOLCHAIN_DEFAULT=y\n'
          : 'CONFIG_DEBUG_INFO_NONE=y\n# CONFIG_DEBUG_INFO_DWARF_TOOLCHAIN_DEFAULT is not set\n',
      );
      const all = [...fragments, debugFragment];
      const base = opts.base ?? 'defconfig';
      const baseRun = /\//.test(base)
        ? await run.run('configure', ['cp', path.resolve(base), path.join(out, '.config')])
        : await run.run('configure', ['make', '-C', tree, `O=${out}`, base]);
      if (baseRun.code !== 0) throw new KernelBuildError(`step 'configure': make ${base} failed: ${buildErrorLines(baseRun.tail).join(' / ')}`, 'configure', true);
      const merge = await run.run('configure', [path.join(tree, 'scripts', 'kconfig', 'merge_config.sh'), '-m', '-O', out, path.join(out, '.config'), ...all], { cwd: tree });
      if (merge.code !== 0) throw new KernelBuildError(`step 'configure': merge_config.sh failed: ${buildErrorLines(merge.tail).join(' / ')}`, 'configure', true);
      const old = await run.run('configure', ['make', '-C', tree, `O=${out}`, 'olddefconfig']);
      if (old.code !== 0) throw new KernelBuildError(`step 'configure': make olddefconfig failed: ${buildErrorLines(old.tail).join(' / ')}`, 'configure', true);
      const final = await KernelConfig.load(path.join(out, '.config'));
      const lost: string[] = [];
      for (const f of all) {
        for (const [opt, want] of requestedOptions(await readFile(f, 'utf8'))) {
          const got = final.get(opt);
          if (want === 'n' ? got !== 'n' : got !== want) lost.push(`CONFIG_${opt}=${want} (got ${got})`);
        }
      }
      if (lost.length) progress(`configure: ${lost.length} requested option(s) did not survive olddefconfig (unmet dependencies): ${lost.join(', ')}`);
      return lost;
    });
    const config = await KernelConfig.load(path.join(out, '.config'));
    const withModules = config.builtIn('MODULES');

    // ---- build
    const jobs = opts.jobs ?? availableParallelism();
    const targets = ['bzImage', ...(withModules ? ['modules'] : [])];
    progress(`build: make -j${jobs} ${targets.join(' ')} (log: ${logPath})`);
    const made = await timed('build', () => run.run('build', ['make', '-C', tree, `O=${out}`, `-j${jobs}`, ...targets], { expected: last.objects }));
    if (made.code !== 0) throw new KernelBuildError(`step 'build': make ${targets.join(' ')} failed: ${buildErrorLines(made.tail).join(' / ')} (log: ${logPath})`, 'build', true);

    // ---- modules
    let modules: string | undefined;
    const release = (await readFile(path.join(out, 'include', 'config', 'kernel.release'), 'utf8')).trim();
    if (withModules) {
      modules = await timed('modules', async () => {
        const modroot = path.join(buildDir, 'modroot');
        await rm(modroot, { recursive: true, force: true });
        const r = await run.run('modules', ['make', '-C', tree, `O=${out}`, `INSTALL_MOD_PATH=${modroot}`, 'INSTALL_MOD_STRIP=1', 'DEPMOD=/bin/true', 'modules_install']);
        if (r.code !== 0) throw new KernelBuildError(`step 'modules': make modules_install failed: ${buildErrorLines(r.tail).join(' / ')}`, 'modules', true);
        return path.join(modroot, 'lib', 'modules', release);
      });
    }
    const ms = Math.round(performance.now() - t0);
    await writeFile(lastPath, `${JSON.stringify({ at: new Date().toISOString(), objects: Math.max(made.steps, last.objects ?? 0), ms, steps, release }, null, 2)}\n`);
    const artifacts: BuiltKernel['artifacts'] = {
      kernel: path.join(out, 'arch', 'x86', 'boot', 'bzImage'),
      config: path.join(out, '.config'),
      systemMap: path.join(out, 'System.map'),
    };
    if (modules) artifacts.modules = modules;
    if (opts.debugInfo) artifacts.debugVmlinux = path.join(out, 'vmlinux');
    run.note(`done in ${ms} ms: ${JSON.stringify(steps)}`);
    return { artifacts, source: tree, log: logPath, ms, steps, dropped };
  } catch (err) {
    if (err instanceof KernelBuildError) run.note(`FAILED: ${err.message}`);
    if ((err as NodeJS.ErrnoException).code === 'ENOENT' && !(err instanceof KernelBuildError))
      throw new KernelBuildError(`a build tool is missing (${(err as Error).message}): run infra/setup.sh (make, gcc, bc, bison, flex, libelf-dev, libssl-dev)`, 'build', false);
    throw err;
  } finally {
    await new Promise<void>((r) => log.end(r));
  }
}

/** What `kernels build` needs from this machine, for `blockfarm doctor` (optional: the qemu target runs without own builds). */
export async function kernelBuildChecks(env: ProbeEnv): Promise<MachineCheck[]> {
  const tools = await Promise.all((['make', 'bc', 'bison', 'flex', 'perl'] as const).map((t) => checkTool(t, t, env, true)));
  const files = await Promise.all([
    checkFile('libelf headers (kernels build)', '/usr/include/libelf.h', 'libelf-dev', env),
    checkFile('openssl headers (kernels build)', '/usr/include/openssl/ssl.h', 'libssl-dev', env),
    checkFile(`Debian kernel source (kernels build --debian-source)`, DEBIAN_SOURCE_TARBALL, DEBIAN_SOURCE_PACKAGE, env),
  ]);
  return [...tools.map((c) => ({ ...c, what: `${c.what} (kernels build)` })), ...files.map((c) => ({ ...c, optional: true }))];
}
