/**
 * The target kinds of the design and which of them this build has. The
 * worker's registry (worker/targets/registry.ts) is the truth for what runs;
 * this list only lets the CLI name the ones still to come.
 */
import { factoryFor } from '../worker/targets/registry.ts';
import type { TargetFactory } from '../worker/targets/target.ts';

export interface TargetKind {
  /** As typed after --target ('qemu' stands for 'qemu:<kernel>'). */
  name: string;
  /** How to name it in help and messages. */
  usage: string;
  /** What it is, for targets not built yet (built ones describe themselves). */
  plan: string;
}

export const TARGET_KINDS: readonly TargetKind[] = [
  { name: 'model', usage: 'model', plan: 'the reference model, in process' },
  { name: 'host', usage: 'host', plan: "this machine's own kernel, as root, opt-in with --allow-host" },
  { name: 'qemu', usage: 'qemu:<kernel>', plan: 'QEMU VMs booting Debian kernels (TCG, or KVM where usable)' },
];

export function builtFactory(kind: TargetKind): TargetFactory | undefined {
  return factoryFor(kind.name);
}

/** "known targets: model; not built yet: host, qemu:<kernel>" */
export function knownTargetsLine(): string {
  const built = TARGET_KINDS.filter((k) => builtFactory(k)).map((k) => k.usage);
  const later = TARGET_KINDS.filter((k) => !builtFactory(k)).map((k) => k.usage);
  return `known targets: ${built.join(', ') || 'none'}${later.length ? `; not built yet: ${later.join(', ')}` : ''}`;
}

/** Why a --target value cannot be used, or undefined when a factory takes it. */
export function targetNameProblem(name: string): string | undefined {
  if (factoryFor(name)) return undefined;
  const planned = TARGET_KINDS.find((k) => name === k.name || name.startsWith(`${k.name}:`));
  if (planned) return `target '${name}' is not built yet (it will be: ${planned.plan}); ${knownTargetsLine()}`;
  return `unknown target '${name}'; ${knownTargetsLine()}`;
}
