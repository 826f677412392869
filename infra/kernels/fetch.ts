/**
 * `blockfarm kernels fetch ID [--dbg]`: download linux-image-ID with
 * `apt-get download`, unpack it with dpkg-deb, build the module indexes with
 * depmod (the package ships none), extract the ELF vmlinux from the bzImage
 * (vmlinux.ts), and with --dbg also the vmlinux with debug info from
 * linux-image-ID-dbg. Modules the case language needs that Debian's config
 * leaves out (dm-dust) are then built out of tree against the kernel's
 * headers (extra-modules.ts), also for a kernel fetched before. Everything happens in a scratch directory beside the
 * final one and is renamed into place at the end, so an interrupted fetch
 * leaves nothing that looks fetched, and two fetches of one kernel at once
 * both end with the same complete result.
 */
import { createHash, randomBytes } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { mkdir, readdir, rename, rm, stat } from 'node:fs/promises';
import path from 'node:path';
import { spawn } from 'node:child_process';
import { candidateVersions } from './catalog.ts';
import { kernelIdProblem, packageName, upstreamOf } from './id.ts';
import { kernelsDir } from './paths.ts';
import { ExtraModuleError, buildExtraModules, ensureExtraModules } from './extra-modules.ts';
import { ToolMissingError, lastLine, runTool } from './proc.ts';
import { type ExtraModuleRecord, type FetchedKernel, type KernelInfo, kernelDir, loadFetched, writeKernelInfo } from './store.ts';
import { VmlinuxError, extractVmlinux } from './vmlinux.ts';

/** A fetch that cannot be done; the message is one line for people. */
export class KernelFetchError extends Error {
  override name = 'KernelFetchError';
}

export interface FetchOptions {
  /** Also fetch the -dbg package's vmlinux (about 860 MB to download). */
  dbg?: boolean;
  /** Fetch again even when the kernel is there. */
  force?: boolean;
  /** Build the modules Debian's config leaves out (extra-modules.ts). @defaultValue true */
  extraModules?: boolean;
  /** Progress lines for people. */
  progress?: (line: string) => void;
  env?: NodeJS.ProcessEnv;
}

async function sha256(file: string): Promise<string> {
  const h = createHash('sha256');
  for await (const chunk of createReadStream(file)) h.update(chunk as Buffer);
  return h.digest('hex');
}

/** apt-get download into `dir`; returns the .deb's path. */
async function aptDownload(pkg: string, dir: string): Promise<string> {
  // Running as root, apt would drop to _apt, which cannot write our cache directory.
  const r = await runTool('apt-get', ['-q', '-o', 'APT::Sandbox::User=root', 'download', pkg], { cwd: dir });
  if (r.code !== 0) throw new KernelFetchError(`apt-get download ${pkg} failed: ${lastLine(r)}`);
  const debs = (await readdir(dir)).filter((f) => f.startsWith(`${pkg}_`) && f.endsWith('.deb'));
  if (debs.length !== 1) throw new KernelFetchError(`apt-get download ${pkg} left no .deb in ${dir}`);
  return path.join(dir, debs[0]!);
}

async function exists(p: string): Promise<boolean> {
  return stat(p).then(
    () => true,
    () => false,
  );
}

/** The vmlinux with debug info, out of the -dbg .deb, without unpacking its 5 GB of module debug files. */
async function extractDbgVmlinux(deb: string, id: string, out: string): Promise<void> {
  const dir = path.dirname(out);
  const member = `./usr/lib/debug/boot/vmlinux-${id}`;
  await new Promise<void>((resolve, reject) => {
    const dpkg = spawn('dpkg-deb', ['--fsys-tarfile', deb], { stdio: ['ignore', 'pipe', 'pipe'] });
    const tar = spawn('tar', ['-x', '-C', dir, '--strip-components=5', member], { stdio: ['pipe', 'ignore', 'pipe'] });
    let err = '';
    dpkg.stderr.on('data', (d: Buffer) => (err += d.toString()));
    tar.stderr.on('data', (d: Buffer) => (err += d.toString()));
    dpkg.stdout.pipe(tar.stdin);
    tar.stdin.on('error', () => {});
    dpkg.on('error', reject);
    tar.on('error', reject);
    tar.on('close', (code) => (code === 0 ? resolve() : reject(new KernelFetchError(`extracting ${member} from ${path.basename(deb)} failed: ${err.trim().split('\n').pop() ?? `exit ${code}`}`))));
  });
  const extracted = path.join(dir, `vmlinux-${id}`);
  if (!(await exists(extracted))) throw new KernelFetchError(`${path.basename(deb)} has no ${member}`);
  await rename(extracted, out);
}

async function fetchDbg(k: FetchedKernel, opts: FetchOptions): Promise<FetchedKernel> {
  const pkg = packageName(k.info.id, true);
  const versions = await candidateVersions([pkg]);
  const v = versions.get(pkg);
  if (!v) throw new KernelFetchError(`no package ${pkg} in the apt archive (run 'apt-get update'?)`);
  const scratch = path.join(k.dir, `.dbg-${process.pid}-${randomBytes(4).toString('hex')}`);
  await mkdir(scratch, { recursive: true });
  try {
    opts.progress?.(`downloading ${pkg} ${v} (large)`);
    const deb = await aptDownload(pkg, scratch);
    opts.progress?.(`extracting the debug vmlinux`);
    await extractDbgVmlinux(deb, k.info.id, path.join(k.dir, 'vmlinux-dbg'));
  } finally {
    await rm(scratch, { recursive: true, force: true });
  }
  await writeKernelInfo(k.dir, { ...k.info, dbg: { packageVersion: v, vmlinux: 'vmlinux-dbg' } });
  return (await loadFetched(k.info.id, opts.env))!;
}

export async function fetchKernel(id: string, opts: FetchOptions = {}): Promise<FetchedKernel> {
  const problem = kernelIdProblem(id);
  if (problem) throw new KernelFetchError(problem);
  const env = opts.env ?? process.env;
  let have = opts.force ? undefined : await loadFetched(id, env);
  if (!have) have = await fetchImage(id, opts, env);
  else {
    opts.progress?.(`${id} is already fetched (${have.dir})`);
    if (opts.extraModules !== false) {
      try {
        have = await ensureExtraModules(have, { env, progress: opts.progress });
      } catch (err) {
        throw extraModuleFailure(id, err);
      }
    }
  }
  if (opts.dbg && !have.dbgVmlinux) have = await fetchDbg(have, opts);
  return have;
}

/** The kernel itself is usable without its extra modules: say so, and how to try again. */
function extraModuleFailure(id: string, err: unknown): Error {
  if (!(err instanceof ExtraModuleError || err instanceof ToolMissingError)) return err as Error;
  return new KernelFetchError(`${id} is fetched, but ${err.message} ('blockfarm kernels fetch ${id}' tries again)`);
}

async function fetchImage(id: string, opts: FetchOptions, env: NodeJS.ProcessEnv): Promise<FetchedKernel> {
  const pkg = packageName(id);
  const versions = await candidateVersions([pkg]);
  const v = versions.get(pkg);
  if (!v) throw new KernelFetchError(`unknown kernel '${id}': no package ${pkg} in the apt archive (see 'blockfarm kernels list'; run 'apt-get update'?)`);
  await mkdir(kernelsDir(env), { recursive: true });
  const scratch = path.join(kernelsDir(env), `.tmp-${id}-${process.pid}-${randomBytes(4).toString('hex')}`);
  await mkdir(scratch);
  let extraError: unknown;
  try {
    opts.progress?.(`downloading ${pkg} ${v}`);
    const deb = await aptDownload(pkg, scratch);
    const debSha256 = await sha256(deb);
    opts.progress?.('unpacking');
    const root = path.join(scratch, 'root');
    const x = await runTool('dpkg-deb', ['-x', deb, root]);
    if (x.code !== 0) throw new KernelFetchError(`dpkg-deb -x ${path.basename(deb)} failed: ${lastLine(x)}`);
    await rm(deb);
    const modules = path.join(root, 'lib', 'modules', id);
    if (!(await exists(modules))) throw new KernelFetchError(`${pkg} has no lib/modules/${id}: not a kernel image package?`);
    opts.progress?.('depmod');
    const d = await runTool('depmod', ['-b', root, id]);
    if (d.code !== 0) throw new KernelFetchError(`depmod -b ${root} ${id} failed: ${lastLine(d)}`);
    const bzImage = path.join('root', 'boot', `vmlinuz-${id}`);
    if (!(await exists(path.join(scratch, bzImage)))) throw new KernelFetchError(`${pkg} has no boot/vmlinuz-${id}`);
    opts.progress?.('extracting vmlinux');
    try {
      await extractVmlinux(path.join(scratch, bzImage), path.join(scratch, 'vmlinux'));
    } catch (err) {
      if (err instanceof VmlinuxError) throw new KernelFetchError(`${id}: ${err.message.replace(`${scratch}/`, '')}`);
      throw err;
    }
    // Before the rename, so that a fetched kernel has them from the start; a failure leaves the kernel usable without them.
    let extraModules: ExtraModuleRecord[] = [];
    if (opts.extraModules !== false) {
      const t = { id, packageVersion: v, dir: scratch, modulesRoot: root, modulesDir: modules, config: path.join(root, 'boot', `config-${id}`) };
      try {
        extraModules = await buildExtraModules(t, { env, progress: opts.progress });
      } catch (err) {
        if (!(err instanceof ExtraModuleError || err instanceof ToolMissingError)) throw err;
        extraError = err;
      }
    }
    const info: KernelInfo = {
      id,
      package: pkg,
      packageVersion: v,
      upstream: upstreamOf(v),
      fetchedAt: new Date().toISOString(),
      debSha256,
      vmlinux: 'vmlinux',
      bzImage,
      config: path.join('root', 'boot', `config-${id}`),
      modules: path.join('root', 'lib', 'modules', id),
      ...(extraModules.length ? { extraModules } : {}),
    };
    await writeKernelInfo(scratch, info);
    const final = kernelDir(id, env);
    if (opts.force) await rm(final, { recursive: true, force: true });
    try {
      await rename(scratch, final);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      // Someone else finished the same fetch first (or left a broken directory): keep a complete one.
      if (code !== 'ENOTEMPTY' && code !== 'EEXIST') throw err;
      if (!(await loadFetched(id, env))) {
        await rm(final, { recursive: true, force: true });
        await rename(scratch, final);
      }
    }
  } finally {
    await rm(scratch, { recursive: true, force: true });
  }
  const k = await loadFetched(id, env);
  if (!k) throw new KernelFetchError(`${id}: fetched, but ${kernelDir(id, env)} is incomplete`);
  opts.progress?.(`fetched ${id} (${k.info.upstream}) into ${k.dir}`);
  if (extraError) throw extraModuleFailure(id, extraError);
  return k;
}
