/**
 * `blockfarm triage [--data-dir D] [--status S] [--json]`: the signatures
 * found so far (<data>/reports/), most recently seen first: id, status,
 * count, kernels, targets, reproduction rate, last seen, title.
 * `--set-status SIG=STATUS [--fixed-in KERNEL] [--note TEXT]` changes a
 * signature's lifecycle status (new, reported, fixed, invalid, suppressed).
 *
 * SIG anywhere in the triage commands may be a unique prefix of an id.
 * Exit: 0, 2 for bad input (unknown signature or status).
 *
 * Also the helpers the other triage commands share (data directory, SIG
 * lookup, making an executor from a target name).
 */
import type { Command } from 'commander';
import { EXIT } from '../../../model/index.ts';
import { DirSignatureStore, SIGNATURE_STATUSES, type SignatureRecord, type SignatureStatus, TargetExecutor, signaturesRoot } from '../../triage/index.ts';
import { factoryFor } from '../../../worker/targets/registry.ts';
import { type Target, TargetRefused } from '../../../worker/targets/target.ts';
import { targetNameProblem } from '../../target-kinds.ts';
import type { CliContext, CommandHost } from '../context.ts';
import { formatTable } from '../table.ts';

export const DEFAULT_DATA_DIR = 'data';

export function storeFor(dataDir: string): DirSignatureStore {
  return new DirSignatureStore(signaturesRoot(dataDir));
}

/** The record a SIG argument (an id or a unique prefix of one) names, or a one-line problem. */
export async function findSignature(store: DirSignatureStore, sig: string): Promise<{ record: SignatureRecord } | { problem: string }> {
  const exact = /^[a-z0-9][a-z0-9-]*$/.test(sig) ? await store.get(sig) : undefined;
  if (exact) return { record: exact };
  const all = await store.list();
  const hits = all.filter((r) => r.id.startsWith(sig) || r.id.endsWith(sig) || r.aliases.some((a) => a.startsWith(sig)));
  if (hits.length === 1) return { record: hits[0]! };
  if (hits.length > 1) return { problem: `'${sig}' names ${hits.length} signatures: ${hits.slice(0, 5).map((r) => r.id).join(', ')}${hits.length > 5 ? ', ...' : ''}` };
  return { problem: `no signature '${sig}' in ${store.root}${all.length ? '' : ' (none recorded yet)'}` };
}

/** A started target for a name, or the exit code and message of why not. */
export async function startTarget(name: string, allowHost: boolean | undefined, ctx: CliContext, cmdName: string): Promise<Target | number> {
  const problem = targetNameProblem(name);
  if (problem) {
    ctx.err(`blockfarm ${cmdName}: ${problem}`);
    return EXIT.badInput;
  }
  try {
    return await factoryFor(name)!.create(name, { allowHost: Boolean(allowHost) });
  } catch (err) {
    if (err instanceof TargetRefused) {
      ctx.err(`blockfarm ${cmdName}: target '${name}' refused: ${err.message}`);
      return err.exitCode;
    }
    ctx.err(`blockfarm ${cmdName}: could not start target '${name}': ${(err as Error).message}`);
    return EXIT.infra;
  }
}

export { TargetExecutor };

function ago(ms: number): string {
  const s = Math.max(0, Math.round((Date.now() - ms) / 1000));
  if (s < 120) return `${s}s ago`;
  if (s < 7200) return `${Math.round(s / 60)}m ago`;
  if (s < 172800) return `${Math.round(s / 3600)}h ago`;
  return `${Math.round(s / 86400)}d ago`;
}

export function triageRows(records: readonly SignatureRecord[]): string[][] {
  return records.map((r) => [
    r.id,
    r.status === 'fixed' ? `fixed ${r.fixedIn ?? ''}`.trim() : r.status,
    String(r.count),
    Object.keys(r.kernels).sort().join(',') || '-',
    r.reproduction ? `${r.reproduction.reproduced}/${r.reproduction.runs}` : '-',
    ago(r.lastSeen),
    r.title,
  ]);
}

export interface TriageOptions {
  dataDir: string;
  status?: string;
  json?: boolean;
  setStatus?: string;
  fixedIn?: string;
  note?: string;
}

export async function triageCommand(opts: TriageOptions, ctx: CliContext): Promise<number> {
  const store = storeFor(opts.dataDir);
  if (opts.setStatus !== undefined) {
    const m = /^([^=]+)=([a-z]+)$/.exec(opts.setStatus);
    if (!m || !(SIGNATURE_STATUSES as readonly string[]).includes(m[2]!)) {
      ctx.err(`blockfarm triage: --set-status wants SIG=STATUS with STATUS one of ${SIGNATURE_STATUSES.join(', ')}`);
      return EXIT.badInput;
    }
    const found = await findSignature(store, m[1]!);
    if ('problem' in found) {
      ctx.err(`blockfarm triage: ${found.problem}`);
      return EXIT.badInput;
    }
    try {
      const r = await store.setStatus(found.record.id, m[2] as SignatureStatus, { ...(opts.fixedIn ? { fixedIn: opts.fixedIn } : {}), ...(opts.note !== undefined ? { note: opts.note } : {}) });
      ctx.out(`${r.id}: ${r.status}${r.fixedIn ? ` (fixed in ${r.fixedIn})` : ''}`);
      return EXIT.pass;
    } catch (err) {
      ctx.err(`blockfarm triage: ${(err as Error).message}`);
      return EXIT.badInput;
    }
  }
  if (opts.status !== undefined && !(SIGNATURE_STATUSES as readonly string[]).includes(opts.status)) {
    ctx.err(`blockfarm triage: unknown status '${opts.status}' (known: ${SIGNATURE_STATUSES.join(', ')})`);
    return EXIT.badInput;
  }
  const records = (await store.list()).filter((r) => opts.status === undefined || r.status === opts.status);
  if (opts.json) {
    ctx.out(JSON.stringify({ dataDir: opts.dataDir, signatures: records }, null, 2));
    return EXIT.pass;
  }
  if (!records.length) {
    ctx.out(`no signatures${opts.status ? ` with status ${opts.status}` : ''} in ${store.root}`);
    return EXIT.pass;
  }
  ctx.out(formatTable(['signature', 'status', 'count', 'kernels', 'repro', 'last seen', 'title'], triageRows(records)));
  return EXIT.pass;
}

export function registerTriage(program: Command, host: CommandHost): void {
  program
    .command('triage')
    .description('list the signatures found so far (counts, status, kernels, reproduction rate), or change a status')
    .option('-d, --data-dir <dir>', 'the data directory', DEFAULT_DATA_DIR)
    .option('--status <status>', `only signatures with this status (${SIGNATURE_STATUSES.join(', ')})`)
    .option('--set-status <sig=status>', 'change the status of a signature')
    .option('--fixed-in <kernel>', 'with --set-status SIG=fixed: the first kernel without the bug')
    .option('--note <text>', 'with --set-status: a note for the record (where it was reported...)')
    .option('--json', 'print one JSON object')
    .action(async (opts: TriageOptions, cmd: Command) => {
      host.setExitCode(await triageCommand(opts, host.context(cmd)));
    });
}
