/**
 * `blockfarm doctor [--json]`: each target (built or not yet), what it needs
 * and whether this machine has it, with how to get what is missing.
 * Read-only. Exit 0, unless the model target itself fails its self-test (4):
 * missing tools for targets that are not built yet are information, not errors.
 */
import type { Command } from 'commander';
import { EXIT } from '../../../model/index.ts';
import { defaultProbeEnv, type MachineCheck } from '../../../infra/machine.ts';
import { type DoctorReport, type TargetReport, diagnose } from '../../doctor.ts';
import { DEFAULT_DATA_DIR } from '../../farm/data-dir.ts';
import { RETENTION_FILE, type RetentionReport, formatBytes, retentionReport } from '../../farm/retention.ts';
import type { CliContext, CommandHost } from '../context.ts';
import { formatTable } from '../table.ts';

function statusLabel(c: MachineCheck): string {
  if (c.status === 'missing') return c.optional ? 'absent' : 'MISSING';
  return c.status;
}

function checksTable(checks: readonly MachineCheck[]): string {
  const rows = checks.map((c) => [statusLabel(c), c.what, c.detail ?? '', c.fix ?? '']);
  return formatTable(['status', 'need', 'detail', 'how to get it'], rows)
    .split('\n')
    .map((l) => `  ${l}`)
    .join('\n');
}

function targetHeading(t: TargetReport): string {
  const what = t.built ? t.describe : `${t.describe}; what it will need`;
  return `target ${t.usage}: ${t.status} - ${what}`;
}

export function humanDoctor(r: DoctorReport): string[] {
  const who = r.machine.uid === null ? 'uid unknown' : r.machine.uid === 0 ? 'running as root' : `running as uid ${r.machine.uid}`;
  const lines = [`this machine: ${r.machine.os ?? 'unknown OS'}, kernel ${r.machine.kernel}, node ${r.machine.node}, ${who}`, ''];
  lines.push('blockfarm itself', checksTable(r.common), '');
  for (const t of r.targets) lines.push(targetHeading(t), checksTable(t.checks), '');
  lines.push('farm services (queues)', checksTable(r.farm));
  const missing = r.targets.filter((t) => !t.built).flatMap((t) => t.checks).filter((c) => c.status === 'missing' && !c.optional);
  if (missing.length) {
    lines.push('', `${missing.length} item(s) missing for targets not built yet; the model target needs none of them.`);
  }
  if (!r.modelWorks) lines.push('', 'the model target failed its self-test: blockfarm is broken on this machine');
  return lines;
}

/** The data directory's retention caps and what each category uses (the farm's files). */
export function retentionLines(r: RetentionReport): string[] {
  const rows = r.categories.map((c) => [c.category, c.dirs.join(', '), formatBytes(c.usedBytes), formatBytes(c.maxBytes), `${c.maxAgeDays} days`, String(c.entries)]);
  const table = formatTable(['category', 'directories', 'used', 'size cap', 'age cap', 'entries'], rows)
    .split('\n')
    .map((l) => `  ${l}`);
  const from = r.source === 'defaults' ? `default caps (override in ${r.dataDir}/${RETENTION_FILE})` : `caps from ${r.source}`;
  return [`data directory ${r.dataDir}: ${from}; the oldest entries go first, down to 90% of a size cap`, ...table, ...(r.problem ? [`  ${r.problem} (the defaults apply)`] : [])];
}

export async function doctorCommand(opts: { json: boolean; dataDir?: string }, ctx: CliContext): Promise<number> {
  const report = await diagnose(defaultProbeEnv());
  const retention = await retentionReport(opts.dataDir ?? DEFAULT_DATA_DIR);
  ctx.log.debug({ targets: report.targets.map((t) => `${t.name}:${t.status}`) }, 'doctor done');
  if (opts.json) ctx.out(JSON.stringify({ ...report, dataDir: retention }, null, 2));
  else for (const line of [...humanDoctor(report), '', ...retentionLines(retention)]) ctx.out(line);
  return report.modelWorks ? EXIT.pass : EXIT.infra;
}

export function registerDoctor(program: Command, host: CommandHost): void {
  program
    .command('doctor')
    .description('list each target, what it needs and whether this machine has it (read-only)')
    .option('--json', 'print one JSON object {machine, common, targets, farm, modelWorks, dataDir} on stdout')
    .option('--data-dir <dir>', "the farm's data directory whose retention caps to show", DEFAULT_DATA_DIR)
    .addHelpText('after', '\nExit codes: 0, or 4 if the model target itself fails its self-test.')
    .action(async (opts: { json: boolean; dataDir: string }, cmd: Command) => {
      host.setExitCode(await doctorCommand(opts, host.context(cmd)));
    });
}
