/**
 * What each target needs and whether this machine has it: built targets
 * answer through their factory's requirements() (the model also runs a tiny
 * self-test case); targets not built yet list what they will need, probed
 * for real (infra/machine.ts) so a machine can be prepared ahead of them.
 */
import { readFile } from 'node:fs/promises';
import { type CaseInput, type RunOutcome, validateCase } from '../model/index.ts';
import { runCase } from '../worker/run-case.ts';
import type { TargetFactory } from '../worker/targets/target.ts';
import {
  type MachineCheck, type ProbeEnv, checkFile, checkFilesystem, checkIoUring, checkKernelModule, checkKvm, checkLoopControl,
  checkNode, checkRoot, checkTool,
} from '../infra/machine.ts';
import { TARGET_KINDS, type TargetKind, builtFactory } from './target-kinds.ts';

export const MIN_NODE = '20.18';

export type TargetStatus = 'ready' | 'not ready' | 'broken' | 'not built yet';

export interface TargetReport {
  name: string;
  usage: string;
  built: boolean;
  status: TargetStatus;
  describe: string;
  checks: MachineCheck[];
}

export interface DoctorReport {
  machine: { os: string | null; kernel: string; node: string; uid: number | null };
  common: MachineCheck[];
  targets: TargetReport[];
  /** The farm's shared services (queues); not a target. */
  farm: MachineCheck[];
  /** False when the model target itself fails: the one thing every installation must have. */
  modelWorks: boolean;
}

/** The smallest case that runs the whole path: write 4 KiB to a bare disk, read it back. */
const SELF_TEST_CASE: CaseInput = {
  format: 'blockfarm-case/1',
  name: 'doctor-self-test',
  seed: 1,
  stack: { layers: [{ id: 'd0', kind: 'disk', size: 1024 * 1024 }] },
  program: {
    threads: [
      {
        ops: [
          { kind: 'write', id: 1, target: 'd0', offset: 0, length: 4096 },
          { kind: 'read', id: 2, target: 'd0', offset: 0, length: 4096 },
        ],
      },
    ],
  },
};

async function selfTest(factory: TargetFactory, name: string): Promise<MachineCheck> {
  const what = 'self-test (write then read 4 KiB)';
  const v = validateCase(SELF_TEST_CASE);
  if (!v.ok) return { what, status: 'missing', detail: `the self-test case is invalid: ${v.issues.map((i) => `${i.path}: ${i.message}`).join('; ')}` };
  let outcome: RunOutcome;
  try {
    const target = await factory.create(name, {});
    try {
      outcome = await runCase(target, v.value, v.info);
    } finally {
      await target.close();
    }
  } catch (err) {
    return { what, status: 'missing', detail: `the target failed: ${(err as Error).message}` };
  }
  if (outcome.kind === 'pass') return { what, status: 'ok', detail: `pass in ${outcome.durationMs} ms` };
  const why =
    outcome.kind === 'divergence' ? outcome.divergences[0]?.message
    : outcome.kind === 'unsupported' ? outcome.reason
    : outcome.kind === 'infra-error' ? outcome.message
    : outcome.title;
  return { what, status: 'missing', detail: `${outcome.kind}: ${why ?? ''}` };
}

async function builtTargetReport(kind: TargetKind, factory: TargetFactory): Promise<TargetReport> {
  let checks: MachineCheck[];
  try {
    checks = await factory.requirements();
  } catch (err) {
    checks = [{ what: 'requirements', status: 'unknown', detail: `could not list them: ${(err as Error).message}` }];
  }
  // Only the in-process model is cheap and harmless to exercise here; kernel targets will report their own probes.
  if (kind.name === 'model') checks.push(await selfTest(factory, kind.name));
  const broken = checks.some((c) => c.status === 'missing' && c.what.startsWith('self-test'));
  const ready = checks.every((c) => c.status === 'ok' || c.optional);
  return { name: kind.name, usage: kind.usage, built: true, status: broken ? 'broken' : ready ? 'ready' : 'not ready', describe: factory.describe, checks };
}

async function plannedChecks(kind: TargetKind, env: ProbeEnv): Promise<MachineCheck[]> {
  if (kind.name === 'qemu') {
    return [
      await checkTool('qemu-system-x86_64', 'qemu-system-x86', env),
      await checkKvm(env),
      await checkTool('gcc', 'gcc', env),
      await checkFile('liburing headers (executor build)', '/usr/include/liburing.h', 'liburing-dev', env),
    ];
  }
  return [];
}

async function osName(env: ProbeEnv): Promise<string | null> {
  try {
    const text = await readFile(env.fsRoot === '/' ? '/etc/os-release' : `${env.fsRoot}/etc/os-release`, 'utf8');
    const m = /^PRETTY_NAME="?([^"\n]*)"?$/m.exec(text);
    return m?.[1] ?? null;
  } catch {
    return null;
  }
}

export async function diagnose(env: ProbeEnv): Promise<DoctorReport> {
  const targets: TargetReport[] = [];
  for (const kind of TARGET_KINDS) {
    const factory = builtFactory(kind);
    if (factory) targets.push(await builtTargetReport(kind, factory));
    else targets.push({ name: kind.name, usage: kind.usage, built: false, status: 'not built yet', describe: kind.plan, checks: await plannedChecks(kind, env) });
  }
  const model = targets.find((t) => t.name === 'model');
  return {
    machine: { os: await osName(env), kernel: env.kernelRelease, node: `v${env.nodeVersion.replace(/^v/, '')}`, uid: env.uid ?? null },
    common: [checkNode(MIN_NODE, env)],
    targets,
    farm: [await checkTool('redis-server', 'redis-server', env)],
    modelWorks: model !== undefined && model.status !== 'broken',
  };
}
