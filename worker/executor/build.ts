/**
 * Builds the native executor (the C sources next to this file) with gcc,
 * statically linked with liburing (Debian: liburing-dev) and pthreads.
 *
 * The binary lands in .cache/executor/blockfarm-exec-<hash>, where <hash>
 * covers the sources, the flags and the compiler, so a build happens only
 * when one of them changed and a running executor is never replaced under
 * its feet; .cache/executor/blockfarm-exec is a symlink to the latest build.
 *
 *   node --import tsx worker/executor/build.ts    # builds if needed, prints the path
 */
import { execFile } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { access, mkdir, readFile, readdir, rename, rm, symlink } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const SOURCE_DIR = path.dirname(fileURLToPath(import.meta.url));
const ROOT = path.resolve(SOURCE_DIR, '../..');
export const EXECUTOR_CACHE_DIR = path.join(ROOT, '.cache', 'executor');
export const EXECUTOR_NAME = 'blockfarm-exec';

const CFLAGS = ['-O2', '-g', '-Wall', '-Wextra', '-Werror', '-std=gnu11', '-static', '-pthread'];
const LIBS = ['-luring', '-lpthread'];

/** The build failed; `missing` when the machine lacks gcc or liburing (the message says what to install). */
export class ExecutorBuildError extends Error {
  override name = 'ExecutorBuildError';
  constructor(
    message: string,
    readonly missing = false,
  ) {
    super(message);
  }
}

export interface BuildOptions {
  /** C compiler. @defaultValue 'gcc' */
  cc?: string;
  /** Rebuild even when a binary for these sources exists. @defaultValue false */
  force?: boolean;
}

interface RunResult {
  code: number;
  stdout: string;
  stderr: string;
  missing: boolean;
}

function run(cmd: string, args: string[]): Promise<RunResult> {
  return new Promise((resolve) => {
    execFile(cmd, args, { maxBuffer: 16 * 1024 * 1024 }, (err, stdout, stderr) => {
      const e = err as (NodeJS.ErrnoException & { code?: number | string }) | null;
      resolve({
        code: e ? (typeof e.code === 'number' ? e.code : -1) : 0,
        stdout: String(stdout),
        stderr: String(stderr),
        missing: e?.code === 'ENOENT',
      });
    });
  });
}

async function exists(p: string): Promise<boolean> {
  try {
    await access(p);
    return true;
  } catch {
    return false;
  }
}

/** The C sources and headers, sorted, as [name, content]. */
async function sources(): Promise<Array<[string, Buffer]>> {
  const names = (await readdir(SOURCE_DIR)).filter((f) => f.endsWith('.c') || f.endsWith('.h')).sort();
  return Promise.all(names.map(async (n) => [n, await readFile(path.join(SOURCE_DIR, n))] as [string, Buffer]));
}

async function sourceHash(cc: string, files: Array<[string, Buffer]>): Promise<string> {
  const version = await run(cc, ['--version']);
  if (version.missing) throw new ExecutorBuildError(`${cc} not found: install it with 'apt-get install gcc'`, true);
  const h = createHash('sha256');
  h.update(JSON.stringify([cc, version.stdout.split('\n')[0], CFLAGS, LIBS]));
  for (const [name, content] of files) {
    h.update(`\0${name}\0${content.length}\0`);
    h.update(content);
  }
  return h.digest('hex').slice(0, 16);
}

/** gcc answers a bare name for a library it cannot find. */
async function checkLiburing(cc: string): Promise<void> {
  const r = await run(cc, ['-print-file-name=liburing.a']);
  if (!path.isAbsolute(r.stdout.trim()))
    throw new ExecutorBuildError("liburing.a not found: install liburing-dev ('apt-get install liburing-dev')", true);
}

async function compile(cc: string, files: Array<[string, Buffer]>, out: string): Promise<void> {
  const cfiles = files.filter(([n]) => n.endsWith('.c')).map(([n]) => path.join(SOURCE_DIR, n));
  const r = await run(cc, [...CFLAGS, '-o', out, ...cfiles, ...LIBS]);
  if (r.code === 0) return;
  if (/liburing\.h|cannot find -luring/.test(r.stderr))
    throw new ExecutorBuildError("liburing not found: install liburing-dev ('apt-get install liburing-dev')", true);
  throw new ExecutorBuildError(`the executor does not compile:\n${r.stderr.trim()}`);
}

/** Point the stable name at this build and drop older builds. */
async function publish(dir: string, binary: string): Promise<void> {
  const link = path.join(dir, EXECUTOR_NAME);
  const tmp = `${link}.${process.pid}.${randomBytes(4).toString('hex')}`;
  await symlink(path.basename(binary), tmp);
  await rename(tmp, link);
  for (const f of await readdir(dir))
    if (/^blockfarm-exec-[0-9a-f]{16}$/.test(f) && path.join(dir, f) !== binary) await rm(path.join(dir, f), { force: true });
}

const builds = new Map<string, Promise<string>>();

async function doBuild(opts: BuildOptions): Promise<string> {
  const cc = opts.cc ?? 'gcc';
  const files = await sources();
  const hash = await sourceHash(cc, files);
  const binary = path.join(EXECUTOR_CACHE_DIR, `${EXECUTOR_NAME}-${hash}`);
  if (!opts.force && (await exists(binary))) return binary;
  await checkLiburing(cc);
  await mkdir(EXECUTOR_CACHE_DIR, { recursive: true });
  // Build beside the final name and rename: other processes building at the same time never see half a binary.
  const tmp = `${binary}.tmp-${process.pid}-${randomBytes(4).toString('hex')}`;
  try {
    await compile(cc, files, tmp);
    await rename(tmp, binary);
  } finally {
    await rm(tmp, { force: true });
  }
  await publish(EXECUTOR_CACHE_DIR, binary);
  return binary;
}

/** Build the executor if its sources changed; resolves to the binary's path. */
export function buildExecutor(opts: BuildOptions = {}): Promise<string> {
  const key = JSON.stringify(opts);
  let p = builds.get(key);
  if (!p || opts.force) {
    p = doBuild(opts);
    builds.set(key, p);
    p.catch(() => builds.delete(key));
  }
  return p;
}

if (process.argv[1] && import.meta.url === pathToFileURL(path.resolve(process.argv[1])).href) {
  buildExecutor({ force: process.argv.includes('--force') }).then(
    (p) => console.log(p),
    (e: unknown) => {
      console.error(e instanceof ExecutorBuildError ? e.message : e);
      process.exit(1);
    },
  );
}
