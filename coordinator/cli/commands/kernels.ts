/**
 * `blockfarm kernels list [--json]` and `blockfarm kernels fetch ID [--dbg]
 * [--force]`: the Debian kernels the QEMU target boots (infra/kernels/).
 *
 * list: every kernel of the generic, cloud and rt flavours in the apt
 * archive, and every fetched one (also when apt no longer offers it), newest
 * first, with whether it is fetched and whether its debug vmlinux is.
 * --json prints `{kernels: [{id, upstream, packageVersion, fetched, dbg, available, dir?, extraModules?}]}`
 * (extraModules: modules built out of tree, each with the source package
 * version it was built from, which may differ from the kernel's).
 *
 * fetch: downloads and prepares one kernel (idempotent: a fetched kernel is
 * kept unless --force), and builds the modules Debian's config leaves out
 * (dm-dust) unless --no-extra-modules, also for a kernel fetched before.
 * Progress goes to stderr; the kernel's directory to stdout.
 *
 * Exit: 0 done, 2 bad input (not a kernel id, no such package), 4 apt or a
 * tool failed (also when only the extra modules failed: the kernel is fetched).
 */
import type { Command } from 'commander';
import { EXIT } from '../../../model/index.ts';
import {
  AptError, KernelFetchError, ToolMissingError, type AvailableKernel, availableKernels, compareNewestFirst, describeExtraModule, fetchKernel, fetchedKernels, kernelIdProblem,
} from '../../../infra/kernels/index.ts';
import type { CliContext, CommandHost } from '../context.ts';
import { registerOwnKernels } from './kernels-own.ts';
import { formatTable } from '../table.ts';

export interface KernelRow {
  id: string;
  upstream: string;
  packageVersion: string;
  available: boolean;
  fetched: boolean;
  dbg: boolean;
  dir?: string;
  /** Own kernels: 'added' or 'built' (kernels-own.ts). */
  origin?: 'added' | 'built';
  /** Modules built out of tree for it, and from which source package version. */
  extraModules?: Array<{ module: string; sourcePackage: string; sourceVersion: string; kernelVersion: string; sameVersion: boolean; text: string }>;
}

export async function kernelRows(): Promise<{ rows: KernelRow[]; aptProblem?: string }> {
  let avail: AvailableKernel[] = [];
  let aptProblem: string | undefined;
  try {
    avail = await availableKernels();
  } catch (err) {
    if (!(err instanceof AptError || err instanceof ToolMissingError)) throw err;
    aptProblem = err.message;
  }
  const fetched = await fetchedKernels();
  const byId = new Map<string, KernelRow>();
  for (const a of avail) byId.set(a.id, { id: a.id, upstream: a.upstream, packageVersion: a.packageVersion, available: true, fetched: false, dbg: false });
  for (const f of fetched) {
    const row = byId.get(f.info.id) ?? { id: f.info.id, upstream: f.info.upstream, packageVersion: f.info.packageVersion, available: false, fetched: false, dbg: false };
    row.fetched = true;
    row.dbg = Boolean(f.dbgVmlinux);
    if (f.info.origin && f.info.origin !== 'debian') row.origin = f.info.origin;
    row.dir = f.dir;
    if (f.info.extraModules?.length)
      row.extraModules = f.info.extraModules.map((r) => ({ module: r.module, sourcePackage: r.sourcePackage, sourceVersion: r.sourceVersion, kernelVersion: r.headersVersion, sameVersion: r.sourceVersion === r.headersVersion, text: describeExtraModule(r) }));
    if (row.packageVersion !== f.info.packageVersion) row.packageVersion = `${f.info.packageVersion} (archive: ${row.packageVersion})`;
    byId.set(f.info.id, row);
  }
  const rows = [...byId.values()].sort((a, b) => compareNewestFirst(a.id, b.id));
  return aptProblem ? { rows, aptProblem } : { rows };
}

export async function kernelsListCommand(opts: { json: boolean }, ctx: CliContext): Promise<number> {
  const { rows, aptProblem } = await kernelRows();
  if (aptProblem) ctx.err(`blockfarm kernels list: cannot read the apt archive: ${aptProblem}`);
  if (opts.json) ctx.out(JSON.stringify({ kernels: rows, ...(aptProblem ? { aptProblem } : {}) }, null, 2));
  else {
    const table = rows.map((r) => [r.id, r.upstream, r.origin ?? (r.fetched ? (r.dbg ? 'fetched+dbg' : 'fetched') : 'available'), r.packageVersion, (r.extraModules ?? []).map((x) => x.text).join(', ')]);
    ctx.out(formatTable(['kernel', 'version', 'status', 'package version', 'built out of tree'], table));
    const n = rows.filter((r) => r.fetched).length;
    ctx.out(`${rows.length} kernels, ${n} fetched${n ? '' : " (fetch one with 'blockfarm kernels fetch ID')"}`);
  }
  return aptProblem && rows.length === 0 ? EXIT.infra : EXIT.pass;
}

export async function kernelsFetchCommand(id: string, opts: { dbg?: boolean; force?: boolean; extraModules?: boolean }, ctx: CliContext): Promise<number> {
  const problem = kernelIdProblem(id);
  if (problem) {
    ctx.err(`blockfarm kernels fetch: ${problem}`);
    return EXIT.badInput;
  }
  try {
    const k = await fetchKernel(id, { dbg: opts.dbg, force: opts.force, extraModules: opts.extraModules, progress: (line) => ctx.err(`kernels fetch: ${line}`) });
    ctx.out(k.dir);
    return EXIT.pass;
  } catch (err) {
    if (err instanceof KernelFetchError || err instanceof ToolMissingError) {
      ctx.err(`blockfarm kernels fetch: ${err.message}`);
      return /^unknown kernel|is not a kernel id/.test(err.message) ? EXIT.badInput : EXIT.infra;
    }
    throw err;
  }
}

export function registerKernels(program: Command, host: CommandHost): void {
  const kernels = program.command('kernels').description('Debian kernels for the qemu target: list what the archive has, fetch one');
  kernels
    .command('list')
    .description('kernels in the apt archive (generic, cloud, rt flavours) and the fetched ones, newest first')
    .option('--json', 'print one JSON object {kernels: [...]} on stdout')
    .action(async (opts: { json: boolean }, cmd: Command) => {
      host.setExitCode(await kernelsListCommand({ json: Boolean(opts.json) }, host.context(cmd)));
    });
  kernels
    .command('fetch')
    .description('download a kernel (apt-get download), unpack it, depmod it and extract its vmlinux into the cache (.cache/kernels, or $BLOCKFARM_CACHE/kernels)')
    .argument('<id>', 'kernel id, e.g. 6.1.0-56-amd64 (see kernels list)')
    .option('--dbg', 'also fetch the matching -dbg package (about 860 MB) for symbolized reports')
    .option('--force', 'fetch again even when it is already fetched')
    .option('--no-extra-modules', "do not build the modules Debian's config leaves out (dm-dust) from linux-source-6.1 against the kernel's headers")
    .addHelpText('after', '\nExit codes: 0 fetched, 2 not a kernel id or not in the archive, 4 apt or a tool failed (also when only building dm-dust failed: the kernel is fetched).')
    .action(async (id: string, opts: { dbg?: boolean; force?: boolean; extraModules?: boolean }, cmd: Command) => {
      host.setExitCode(await kernelsFetchCommand(id, opts, host.context(cmd)));
    });
  registerOwnKernels(kernels, host);
  kernels.exitOverride();
  for (const sub of kernels.commands) sub.exitOverride();
}
