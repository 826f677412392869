/**
 * TEST-ONLY target for the farm's triage tests on a real kernel, loaded into
 * worker processes through BLOCKFARM_TARGET_PLUGINS. Not a kernel of its own:
 *
 * - testonly_flakey:qemu  the QEMU target on the newest fetched kernel, except
 *   that every dm-linear layer of a case is built as dm-flakey dropping all
 *   writes (a fault the model is not told about: the case says dm-linear).
 *   It reports under its own name, never as the qemu target.
 */
import type { SetupStep } from '../../../worker/executor/protocol.ts';
import { createQemuTarget } from '../../../worker/targets/qemu/factory.ts';
import type { RunRequest, Target, TargetFactory, TargetRun } from '../../../worker/targets/target.ts';

const NAME = 'testonly_flakey:qemu';

/** dm-linear tables become dm-flakey dropping every write (up 0 s, down 60 s). */
export function flakeyInsteadOfLinear(steps: SetupStep[]): SetupStep[] {
  const swap = (a: string) => a.replace(/ linear (\S+) 0$/, ' flakey $1 0 0 60 1 drop_writes');
  return steps.map((s) => (s.argv[0] === 'dmsetup' && s.argv[1] === 'create' ? { ...s, argv: s.argv.map(swap), ...(s.stdin !== undefined ? { stdin: swap(s.stdin) } : {}) } : s));
}

class FlakeyQemu implements Target {
  readonly name = NAME;
  constructor(private readonly inner: Target) {}
  unsupportedReason(req: RunRequest): Promise<string | undefined> {
    return this.inner.unsupportedReason(req);
  }
  run(req: RunRequest): Promise<TargetRun> {
    return this.inner.run(req);
  }
  close(): Promise<void> {
    return this.inner.close();
  }
}

export const targetFactories: TargetFactory[] = [
  {
    describe: 'TEST ONLY: the qemu target (newest fetched kernel) building dm-linear layers as dm-flakey dropping writes',
    matches: (n) => n === NAME,
    create: async () => new FlakeyQemu(await createQemuTarget('qemu', { planHookForTests: (plan) => ({ ...plan, setup: flakeyInsteadOfLinear(plan.setup) }) })),
    requirements: async () => [{ what: 'what the qemu target needs', status: 'ok' }],
  },
];
