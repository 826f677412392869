/**
 * Running the Debian tools infra/ drives (apt-get, dpkg-deb, depmod, xz,
 * gcc, ldd) as argv arrays, never through a shell. A tool that cannot be
 * started (ENOENT) is an error naming the Debian package to install; a tool
 * that runs and fails is a result with its exit code and output, for the
 * caller to turn into one clear line.
 */
import { execFile } from 'node:child_process';

export interface ToolResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** A required program is not installed. */
export class ToolMissingError extends Error {
  override name = 'ToolMissingError';
}

/** Debian packages of the tools infra/ runs, for the "install it" hint. */
const PACKAGE_OF: Record<string, string> = {
  'apt-get': 'apt',
  'apt-cache': 'apt',
  'dpkg-deb': 'dpkg',
  depmod: 'kmod',
  modinfo: 'kmod',
  'dpkg-query': 'dpkg',
  dpkg: 'dpkg',
  make: 'make',
  strip: 'binutils',
  xz: 'xz-utils',
  lz4: 'lz4',
  zstd: 'zstd',
  gzip: 'gzip',
  bzip2: 'bzip2',
  gcc: 'gcc',
  ldd: 'libc-bin',
  'qemu-system-x86_64': 'qemu-system-x86',
  'qemu-img': 'qemu-utils',
  tar: 'tar',
};

export function installHint(tool: string): string {
  const pkg = PACKAGE_OF[tool];
  return pkg ? `install it with 'apt-get install ${pkg}'` : 'install it';
}

export interface RunToolOptions {
  cwd?: string;
  env?: NodeJS.ProcessEnv;
  timeoutMs?: number;
  /** Bytes of stdout/stderr kept. @defaultValue 64 MiB */
  maxBuffer?: number;
}

export function runTool(cmd: string, args: readonly string[], opts: RunToolOptions = {}): Promise<ToolResult> {
  return new Promise((resolve, reject) => {
    execFile(
      cmd,
      [...args],
      { cwd: opts.cwd, env: opts.env, timeout: opts.timeoutMs ?? 0, maxBuffer: opts.maxBuffer ?? 64 * 1024 * 1024, encoding: 'utf8' },
      (err, stdout, stderr) => {
        const e = err as (NodeJS.ErrnoException & { code?: number | string; killed?: boolean; signal?: string }) | null;
        if (e && e.code === 'ENOENT' && typeof e.code === 'string') {
          reject(new ToolMissingError(`${cmd} not found: ${installHint(cmd)}`));
          return;
        }
        const code = e ? (typeof e.code === 'number' ? e.code : e.signal ? 128 : 1) : 0;
        resolve({ code, stdout: String(stdout), stderr: String(stderr) });
      },
    );
  });
}

/** The last non-empty line of a tool's stderr (or stdout), for one-line error messages. */
export function lastLine(r: ToolResult): string {
  const lines = `${r.stderr}\n${r.stdout}`
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l && !/^W: /.test(l));
  return lines.find((l) => /^E: /.test(l)) ?? lines[lines.length - 1] ?? `exit ${r.code}`;
}
