/**
 * The guest image: one uncompressed cpio initramfs per kernel, holding
 *
 *   /init                     the agent (agent/agent.c, static), PID 1
 *   /usr/bin/blockfarm-exec   the native executor (static)
 *   /usr/{bin,sbin}/...       this machine's tools (contents.ts) and, under
 *   /usr/lib{,64}/...         /usr/lib, their ldd libraries; /bin, /sbin,
 *                             /lib, /lib64 are links into /usr as on bookworm
 *   /lib/modules/<ID>/        the modules the farm needs and their
 *                             dependencies, depmod-ed for this subset (with
 *                             updates/ for those built out of tree: the
 *                             kernel's modules.dep lists them like the others)
 *   /etc/blockfarm/modules    what the agent loads at boot
 *   /etc/blockfarm/manifest.json   what the image holds (GuestManifest)
 *
 * Images are cached under <cache>/guest/<ID>-<key>/ where the key hashes
 * every input (kernel package, out-of-tree modules, executor, agent source, tools and libraries,
 * module lists, this file), so a change to any of them builds a new image
 * and an unchanged machine reuses the old one.
 */
import { createHash, randomBytes } from 'node:crypto';
import { constants, createReadStream } from 'node:fs';
import { access, copyFile, mkdir, readFile, readdir, readlink, realpath, rename, rm, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { FetchedKernel } from '../kernels/store.ts';
import { cacheRoot } from '../kernels/paths.ts';
import { lastLine, runTool, ToolMissingError } from '../kernels/proc.ts';
import { type CpioEntry, writeCpio } from './cpio.ts';
import { GUEST_ETC, GUEST_TOOLS, ON_DEMAND_MODULES, PRELOAD_MODULES } from './contents.ts';
import { markInUse, removeUnlessUsed } from './in-use.ts';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const AGENT_SOURCE = path.join(HERE, 'agent', 'agent.c');
const AGENT_CFLAGS = ['-O2', '-Wall', '-Wextra', '-Werror', '-std=gnu11', '-static'];
/** Bump when the image layout changes in a way the inputs do not show. */
const LAYOUT_VERSION = 1;
const SEARCH_DIRS = ['/usr/local/sbin', '/usr/local/bin', '/usr/sbin', '/usr/bin', '/sbin', '/bin'];
/** Libraries glibc opens at run time (pthread cancellation unwinds through libgcc_s). */
const EXTRA_LIBS = ['/usr/lib/x86_64-linux-gnu/libgcc_s.so.1'];

export class GuestBuildError extends Error {
  override name = 'GuestBuildError';
}

export interface GuestManifest {
  kernel: string;
  key: string;
  builtAt: string;
  bytes: number;
  /** Module names (underscores) in the image, loaded at boot, and asked for but absent from this kernel. */
  modules: { inImage: string[]; builtin: string[]; preload: string[]; missing: string[] };
  tools: string[];
}

export interface GuestImage {
  /** The initramfs. */
  initramfs: string;
  dir: string;
  key: string;
  manifest: GuestManifest;
}

export interface GuestBuildOptions {
  /** The static executor binary to put in the image. */
  executor: string;
  force?: boolean;
  env?: NodeJS.ProcessEnv;
  progress?: (line: string) => void;
}

export function guestDir(env: NodeJS.ProcessEnv = process.env): string {
  return path.join(cacheRoot(env), 'guest');
}

async function exists(p: string): Promise<boolean> {
  try {
    await access(p, constants.F_OK);
    return true;
  } catch {
    return false;
  }
}

async function fileHash(file: string): Promise<string> {
  const h = createHash('sha256');
  for await (const chunk of createReadStream(file)) h.update(chunk as Buffer);
  return h.digest('hex');
}

// ------------------------------------------------------------ agent

/** Build the agent if its source changed; returns the binary's path. */
export async function buildAgent(env: NodeJS.ProcessEnv = process.env): Promise<string> {
  const src = await readFile(AGENT_SOURCE);
  const cc = await runTool('gcc', ['--version']);
  const key = createHash('sha256').update(JSON.stringify([AGENT_CFLAGS, cc.stdout.split('\n')[0]])).update(src).digest('hex').slice(0, 16);
  const dir = guestDir(env);
  const bin = path.join(dir, `agent-${key}`);
  if (await exists(bin)) return bin;
  await mkdir(dir, { recursive: true });
  const tmp = `${bin}.tmp-${process.pid}-${randomBytes(4).toString('hex')}`;
  try {
    const r = await runTool('gcc', [...AGENT_CFLAGS, '-o', tmp, AGENT_SOURCE]);
    if (r.code !== 0) throw new GuestBuildError(`the guest agent does not compile:\n${r.stderr.trim()}`);
    await rename(tmp, bin);
  } finally {
    await rm(tmp, { force: true });
  }
  return bin;
}

// ------------------------------------------------------------ host files

/** Collects image entries by path, parents first. */
class Tree {
  readonly entries = new Map<string, CpioEntry>();
  /** Host files whose content goes in (for the key). */
  readonly sources = new Set<string>();

  constructor() {
    this.add({ type: 'dir', path: 'usr' });
    for (const [link, target] of [['bin', 'usr/bin'], ['sbin', 'usr/sbin'], ['lib', 'usr/lib'], ['lib64', 'usr/lib64']] as const) {
      this.dir(target);
      this.add({ type: 'symlink', path: link, target });
    }
  }

  private add(e: CpioEntry): void {
    if (!this.entries.has(e.path)) this.entries.set(e.path, e);
  }

  /** Canonical image path of an absolute host path (top-level /bin etc. are links into /usr here too). */
  static canon(p: string): string {
    const rel = p.replace(/^\/+/, '');
    const m = /^(bin|sbin|lib|lib64)(\/.*)?$/.exec(rel);
    return m ? `usr/${m[1]}${m[2] ?? ''}` : rel;
  }

  dir(p: string, mode = 0o755): void {
    const rel = Tree.canon(p);
    const parts = rel.split('/').filter(Boolean);
    for (let i = 1; i <= parts.length; i++) {
      const sub = parts.slice(0, i).join('/');
      if (!this.entries.has(sub)) this.add({ type: 'dir', path: sub, mode: i === parts.length ? mode : 0o755 });
    }
  }

  file(imagePath: string, source: string, mode: number): void {
    const rel = Tree.canon(imagePath);
    this.dir(path.posix.dirname(rel));
    this.add({ type: 'file', path: rel, source, mode });
    this.sources.add(source);
  }

  data(imagePath: string, data: Buffer | string, mode = 0o644): void {
    const rel = Tree.canon(imagePath);
    this.dir(path.posix.dirname(rel));
    this.add({ type: 'data', path: rel, data: Buffer.from(data), mode });
  }

  symlink(imagePath: string, target: string): void {
    const rel = Tree.canon(imagePath);
    this.dir(path.posix.dirname(rel));
    this.add({ type: 'symlink', path: rel, target });
  }

  /** A host file (binary or library) at its own path, links resolved to the final file. */
  async hostFile(p: string): Promise<string> {
    const real = await realpath(p);
    const st = await stat(real);
    const canonDir = await realpath(path.dirname(p));
    const at = path.join(canonDir, path.basename(p));
    if (at !== real) this.symlink(at, `/${Tree.canon(real)}`);
    this.file(real, real, st.mode & 0o7777);
    return real;
  }
}

async function findTool(name: string): Promise<string | undefined> {
  for (const d of SEARCH_DIRS) {
    const p = path.join(d, name);
    try {
      const st = await stat(p);
      if (st.isFile() && st.mode & 0o111) return p;
    } catch {
      // not here
    }
  }
  return undefined;
}

/** Libraries `ldd` lists for a binary (none for a static one). */
async function lddLibs(bin: string): Promise<string[]> {
  const r = await runTool('ldd', [bin]);
  if (r.code !== 0) return [];
  const out: string[] = [];
  for (const line of r.stdout.split('\n')) {
    const m = /=>\s+(\/\S+)\s+\(/.exec(line) ?? /^\s*(\/\S+)\s+\(/.exec(line);
    if (m) out.push(m[1]!);
  }
  return out;
}

// ------------------------------------------------------------ modules

interface ModuleIndex {
  /** name (underscores) -> path relative to the module dir */
  paths: Map<string, string>;
  deps: Map<string, string[]>;
  builtin: Set<string>;
  softdeps: Map<string, string[]>;
  aliases: Map<string, string[]>;
}

const modName = (p: string) => path.basename(p).replace(/\.ko(\.xz|\.zst|\.gz)?$/, '').replace(/-/g, '_');

function emptyModuleIndex(): ModuleIndex {
  return { paths: new Map(), deps: new Map(), builtin: new Set(), softdeps: new Map(), aliases: new Map() };
}

async function readModuleIndex(dir: string): Promise<ModuleIndex> {
  const idx = emptyModuleIndex();
  for (const line of (await readFile(path.join(dir, 'modules.dep'), 'utf8')).split('\n')) {
    const [file, rest] = line.split(':');
    if (!file || rest === undefined) continue;
    const name = modName(file);
    idx.paths.set(name, file);
    idx.deps.set(name, rest.trim().split(/\s+/).filter(Boolean).map(modName));
  }
  for (const line of (await readFile(path.join(dir, 'modules.builtin'), 'utf8').catch(() => '')).split('\n')) if (line.trim()) idx.builtin.add(modName(line.trim()));
  for (const line of (await readFile(path.join(dir, 'modules.softdep'), 'utf8').catch(() => '')).split('\n')) {
    const m = /^softdep\s+(\S+)\s+(.*)$/.exec(line);
    if (!m) continue;
    const names = m[2]!.split(/\s+/).filter((w) => w && !w.endsWith(':')).map((w) => w.replace(/-/g, '_'));
    idx.softdeps.set(m[1]!.replace(/-/g, '_'), names);
  }
  for (const line of (await readFile(path.join(dir, 'modules.alias'), 'utf8').catch(() => '')).split('\n')) {
    const m = /^alias\s+(\S+)\s+(\S+)$/.exec(line);
    if (!m || /[*?[]/.test(m[1]!)) continue;
    const list = idx.aliases.get(m[1]!) ?? [];
    list.push(m[2]!.replace(/-/g, '_'));
    idx.aliases.set(m[1]!, list);
  }
  return idx;
}

/** The wanted modules and everything they depend on (hard and soft), as names present in the kernel. */
function moduleClosure(idx: ModuleIndex, wanted: readonly string[]): Set<string> {
  const out = new Set<string>();
  const visit = (raw: string) => {
    const name = raw.replace(/-/g, '_');
    const targets = idx.paths.has(name) ? [name] : (idx.aliases.get(raw) ?? []);
    for (const t of targets) {
      if (out.has(t) || !idx.paths.has(t)) continue;
      out.add(t);
      for (const d of idx.deps.get(t) ?? []) visit(d);
      for (const s of idx.softdeps.get(t) ?? []) visit(s);
    }
  };
  for (const w of wanted) visit(w);
  return out;
}

// ------------------------------------------------------------ build

/** Everything that decides the image's bytes, hashed. */
async function inputKey(kernel: FetchedKernel, agent: string, executor: string, files: readonly string[]): Promise<string> {
  const h = createHash('sha256');
  // Modules built out of tree (dm-dust for Debian's kernels) change the module tree, not the .deb.
  const extra = (kernel.info.extraModules ?? []).map((r) => [r.module, r.sha256]);
  h.update(JSON.stringify({ LAYOUT_VERSION, kernel: kernel.info.id, deb: kernel.info.debSha256, extra, GUEST_TOOLS, GUEST_ETC, PRELOAD_MODULES, ON_DEMAND_MODULES }));
  h.update(await readFile(fileURLToPath(import.meta.url)));
  h.update(await readFile(path.join(HERE, 'cpio.ts')));
  for (const f of [agent, executor, ...[...files].sort()]) {
    const st = await stat(f);
    h.update(`${f}\0${st.size}\0${Math.floor(st.mtimeMs)}\0`);
  }
  h.update(await fileHash(agent));
  h.update(await fileHash(executor));
  return h.digest('hex').slice(0, 16);
}

async function collectTools(tree: Tree): Promise<string[]> {
  const found: string[] = [];
  const libs = new Set<string>(EXTRA_LIBS);
  for (const name of GUEST_TOOLS) {
    const p = await findTool(name);
    if (!p) throw new GuestBuildError(`the guest image needs '${name}', which is not installed here (run infra/setup.sh)`);
    const real = await tree.hostFile(p);
    for (const l of await lddLibs(real)) libs.add(l);
    found.push(name);
  }
  for (const l of libs) if (await exists(l)) await tree.hostFile(l);
  for (const f of GUEST_ETC) if (await exists(f)) tree.file(f, f, 0o644);
  return found;
}

const PASSWD = 'root:x:0:0:root:/root:/bin/sh\n';
const GROUP = 'root:x:0:\ndisk:x:6:\n';
/** mdadm: no auto-assembly, and array names without a host prefix. */
const MDADM_CONF = 'HOMEHOST <ignore>\nAUTO -all\n';

export async function buildGuestImage(kernel: FetchedKernel, opts: GuestBuildOptions): Promise<GuestImage> {
  const env = opts.env ?? process.env;
  const agent = await buildAgent(env);
  const tree = new Tree();
  const tools = await collectTools(tree);
  const key = await inputKey(kernel, agent, opts.executor, [...tree.sources]);
  const dir = path.join(guestDir(env), `${kernel.info.id}-${key}`);
  const initramfs = path.join(dir, 'initramfs.cpio');
  const manifestPath = path.join(dir, 'manifest.json');
  if (!opts.force && (await exists(initramfs)) && (await exists(manifestPath))) {
    const manifest = JSON.parse(await readFile(manifestPath, 'utf8')) as GuestManifest;
    await markInUse(dir);
    return { initramfs, dir, key, manifest };
  }
  opts.progress?.(`building the guest image for ${kernel.info.id}`);
  const id = kernel.info.id;
  // modprobe looks in lib/modules/$(uname -r): an own kernel's release may differ from its name.
  const release = kernel.info.release ?? id;
  // A kernel registered without modules has built in whatever it has.
  const idx = kernel.hasModules ? await readModuleIndex(kernel.modulesDir) : emptyModuleIndex();
  const wanted = [...PRELOAD_MODULES, ...ON_DEMAND_MODULES];
  const closure = moduleClosure(idx, wanted);
  // The whole crypto API: a dm-crypt table may name any cipher mode.
  for (const [name, p] of idx.paths) if (/^kernel\/(crypto|arch\/x86\/crypto)\//.test(p)) for (const m of moduleClosure(idx, [name])) closure.add(m);
  const missing = wanted.filter((w) => !closure.has(w.replace(/-/g, '_')) && !idx.builtin.has(w.replace(/-/g, '_')));
  const preload = PRELOAD_MODULES.filter((m) => !missing.includes(m));

  await mkdir(guestDir(env), { recursive: true });
  const scratch = path.join(guestDir(env), `.tmp-${id}-${process.pid}-${randomBytes(4).toString('hex')}`);
  try {
    await mkdir(scratch, { recursive: true });
    // Modules: a depmod-ed copy of just the subset.
    const modRoot = path.join(scratch, 'modroot');
    const modDir = path.join(modRoot, 'lib', 'modules', release);
    for (const name of [...closure].sort()) {
      const rel = idx.paths.get(name)!;
      await mkdir(path.join(modDir, path.dirname(rel)), { recursive: true });
      await copyFile(path.join(kernel.modulesDir, rel), path.join(modDir, rel));
    }
    for (const f of ['modules.order', 'modules.builtin', 'modules.builtin.modinfo'])
      if (await exists(path.join(kernel.modulesDir, f))) await copyFile(path.join(kernel.modulesDir, f), path.join(modDir, f));
    if (kernel.hasModules) {
      const d = await runTool('depmod', ['-b', modRoot, release]);
      if (d.code !== 0) throw new GuestBuildError(`depmod for the guest's modules failed: ${lastLine(d)}`);
    }
    const addTree = async (hostDir: string, imageDir: string): Promise<void> => {
      tree.dir(imageDir);
      for (const e of (await readdir(hostDir, { withFileTypes: true })).sort((a, b) => (a.name < b.name ? -1 : 1))) {
        const hp = path.join(hostDir, e.name);
        const ip = `${imageDir}/${e.name}`;
        if (e.isDirectory()) await addTree(hp, ip);
        else if (e.isFile()) tree.file(ip, hp, 0o644);
        else if (e.isSymbolicLink()) tree.symlink(ip, await readlink(hp));
      }
    };
    if (kernel.hasModules) await addTree(modDir, `usr/lib/modules/${release}`);

    tree.file('init', agent, 0o755);
    tree.file('usr/bin/blockfarm-exec', opts.executor, 0o755);
    for (const d2 of ['proc', 'sys', 'dev', 'tmp', 'run', 'mnt', 'root', 'var/tmp', 'etc/mdadm']) tree.dir(d2, d2 === 'tmp' || d2 === 'var/tmp' ? 0o1777 : 0o755);
    tree.data('etc/passwd', PASSWD);
    tree.data('etc/group', GROUP);
    tree.data('etc/fstab', '');
    tree.symlink('etc/mtab', '/proc/self/mounts');
    tree.data('etc/mdadm/mdadm.conf', MDADM_CONF);
    tree.data('etc/blockfarm/modules', `${preload.join('\n')}\n`);
    const manifest: GuestManifest = {
      kernel: id,
      key,
      builtAt: new Date().toISOString(),
      bytes: 0,
      modules: { inImage: [...closure].sort(), builtin: [...idx.builtin].sort(), preload, missing },
      tools,
    };
    tree.data('etc/blockfarm/manifest.json', `${JSON.stringify({ ...manifest, modules: { ...manifest.modules, builtin: undefined } }, null, 1)}\n`);

    const out = path.join(scratch, 'initramfs.cpio');
    manifest.bytes = await writeCpio(out, [...tree.entries.values()]);
    await writeFile(path.join(scratch, 'manifest.json'), `${JSON.stringify(manifest, null, 2)}\n`);
    await rm(modRoot, { recursive: true, force: true });
    // Another process may have built the same image meanwhile: keep theirs (a VM may be starting from it).
    if ((await exists(initramfs)) && (await exists(manifestPath))) {
      const theirs = JSON.parse(await readFile(manifestPath, 'utf8')) as GuestManifest;
      await markInUse(dir);
      return { initramfs, dir, key, manifest: theirs };
    }
    await rm(dir, { recursive: true, force: true });
    await rename(scratch, dir);
    await markInUse(dir);
    // Older images of this kernel are stale now, unless a live process still boots VMs from one.
    for (const name of await readdir(guestDir(env)))
      if (name.startsWith(`${id}-`) && name !== path.basename(dir) && !name.startsWith('.')) await removeUnlessUsed(path.join(guestDir(env), name));
    opts.progress?.(`guest image ${dir} (${(manifest.bytes / 1e6).toFixed(1)} MB, ${closure.size} modules${!kernel.hasModules ? '; no module tree: built-in drivers only' : missing.length ? `; not in this kernel: ${missing.join(', ')}` : ''})`);
    return { initramfs, dir, key, manifest };
  } catch (err) {
    if (err instanceof ToolMissingError) throw new GuestBuildError(err.message);
    throw err;
  } finally {
    await rm(scratch, { recursive: true, force: true });
  }
}

/** Type guard for callers that turn build failures into one line. */
export function isGuestBuildError(err: unknown): err is GuestBuildError {
  return err instanceof GuestBuildError;
}

