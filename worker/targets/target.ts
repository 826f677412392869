/**
 * One interface for every place a case can run: the model itself, the host
 * kernel, QEMU guests, later remote machines. A target builds the stack,
 * runs the program, reads the results back and tears everything down; the
 * oracle (model/oracle.ts) turns its observation into a verdict, so every
 * target is judged by the same code.
 *
 * A target never throws for a kernel's behaviour: what the kernel did is an
 * Observation (judged later), a crash or hang is a finding, and anything
 * that stops the target itself from working is an infrastructure error.
 */
import type { MachineCheck } from '../../infra/machine.ts';
import type { Case, Observation, StackInfo } from '../../model/index.ts';

export interface RunRequest {
  theCase: Case;
  info: StackInfo;
  /** Abort the run (the target must still tear down what it built). */
  signal?: AbortSignal;
}

/** A post-run check (fsck) and how it ended. */
export interface CheckResult {
  name: string;
  exit: number;
  output: string;
}

export type TargetRun =
  | { kind: 'observed'; observation: Observation; kernelLog?: string[]; checks?: CheckResult[] }
  | { kind: 'crash'; title: string; log: string }
  | { kind: 'hang'; title: string; log: string }
  | { kind: 'unsupported'; reason: string }
  | { kind: 'infra-error'; message: string; kernelLog?: string[] };

export interface Target {
  /** e.g. 'model', 'host', 'qemu:6.1.0-56-amd64'. */
  readonly name: string;
  /** Why this target cannot run this case (a layer or op it lacks), or undefined. */
  unsupportedReason(req: RunRequest): Promise<string | undefined>;
  run(req: RunRequest): Promise<TargetRun>;
  /**
   * Cases with the same key run cheaper one after another (the QEMU target keeps a VM for the
   * next case of the same disk geometry, and a stack for the next program on the same stack),
   * so a batch runs them grouped by it. Optional.
   */
  runOrderKey?(info: StackInfo, theCase?: Case): string;
  /** Release long-lived resources (VMs, work directories). */
  close(): Promise<void>;
  /** The last run's program ran on the previous case's stack, left standing (no set-up of its own). Optional. */
  readonly lastRunReusedStack?: boolean;
}

export interface TargetFactory {
  /** Matches 'model', 'host', 'qemu' or 'qemu:ID'. */
  matches(name: string): boolean;
  create(name: string, opts: TargetOptions): Promise<Target>;
  /** What the target needs from this machine, probed now (shown by `blockfarm doctor`). */
  requirements(): Promise<MachineCheck[]>;
  describe: string;
}

export interface TargetOptions {
  allowHost?: boolean;
  dataDir?: string;
  /** Host target: parent of its per-run directories. */
  hostWorkRoot?: string;
}

/**
 * A target that will not run here, with the exit code the CLI should use:
 * 2 when the user has to ask differently (--allow-host), 3 when this machine
 * cannot (not root, no KVM...).
 */
export class TargetRefused extends Error {
  constructor(message: string, readonly exitCode: 2 | 3) {
    super(message);
    this.name = 'TargetRefused';
  }
}
