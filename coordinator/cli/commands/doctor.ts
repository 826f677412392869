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
  lines.push('farm services (queues; used from the farm campaign on, not yet)', checksTable(r.farm));
  const missing = r.targets.filter((t) => !t.built).flatMap((t) => t.checks).filter((c) => c.status === 'missing' && !c.optional);
  if (missing.length) {
    lines.push('', `${missing.length} item(s) missing for targets not built yet; the model target needs none of them.`);
  }
  if (!r.modelWorks) lines.push('', 'the model target failed its self-test: blockfarm is broken on this machine');
  return lines;
}

export async function doctorCommand(opts: { json: boolean }, ctx: CliContext): Promise<number> {
  const report = await diagnose(defaultProbeEnv());
  ctx.log.debug({ targets: report.targets.map((t) => `${t.name}:${t.status}`) }, 'doctor done');
  if (opts.json) ctx.out(JSON.stringify(report, null, 2));
  else for (const line of humanDoctor(report)) ctx.out(line);
  return report.modelWorks ? EXIT.pass : EXIT.infra;
}

export function registerDoctor(program: Command, host: CommandHost): void {
  program
    .command('doctor')
    .description('list each target, what it needs and whether this machine has it (read-only)')
    .option('--json', 'print one JSON object {machine, common, targets, farm, modelWorks} on stdout')
    .addHelpText('after', '\nExit codes: 0, or 4 if the model target itself fails its self-test.')
    .action(async (opts: { json: boolean }, cmd: Command) => {
      host.setExitCode(await doctorCommand(opts, host.context(cmd)));
    });
}
