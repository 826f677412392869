/**
 * TEST-ONLY targets for the farm's triage tests, loaded into worker
 * processes through BLOCKFARM_TARGET_PLUGINS like test/farm's wrappers. Not
 * kernels and not a model of any kernel:
 *
 * - testonly_planted:model  the reference model with the planted bug of
 *   ./planted-bug.ts (an io_uring read after a write and an fsync of the same
 *   object returns garbage in its first 512 bytes), so the farm finds a
 *   divergence whose minimal case is known;
 * - testonly_clean:model    the reference model as it is: stands for a
 *   kernel where that bug is gone (the re-test of an open signature on a
 *   kernel new to the farm must say "not seen").
 */
import { predictObservation } from '../../../model/index.ts';
import type { RunRequest, Target, TargetFactory, TargetRun } from '../../../worker/targets/target.ts';
import { plantBug } from './planted-bug.ts';

class Planted implements Target {
  constructor(
    readonly name: string,
    private readonly bug: boolean,
  ) {}

  async unsupportedReason(): Promise<string | undefined> {
    return undefined;
  }

  async run(req: RunRequest): Promise<TargetRun> {
    const obs = predictObservation(req.theCase, req.info, this.name);
    if (this.bug) plantBug(req.theCase, obs);
    return { kind: 'observed', observation: obs };
  }

  async close(): Promise<void> {}
}

function factory(name: string, bug: boolean): TargetFactory {
  return {
    describe: `TEST ONLY: the model target${bug ? ' with a planted bug (garbage in io_uring reads after write+fsync)' : ', standing for a kernel without the planted bug'}`,
    matches: (n) => n === name,
    create: async () => new Planted(name, bug),
    requirements: async () => [{ what: 'nothing (a test-only wrapper of the model)', status: 'ok' }],
  };
}

export const targetFactories: TargetFactory[] = [factory('testonly_planted:model', true), factory('testonly_clean:model', false)];
