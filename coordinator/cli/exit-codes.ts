/**
 * Combining exit codes when one command handles several cases. The codes
 * themselves are model/verdict.ts EXIT (0 pass, 1 finding, 2 bad input,
 * 3 unsupported, 4 infrastructure error).
 *
 * Priority, highest first: a finding (1) matters most; then bad input (2),
 * because the user must fix it before the run means anything; then an
 * infrastructure error (4), since cases may not have run; then unsupported
 * (3); then pass (0). So the numeric maximum is not the answer.
 */
import { EXIT } from '../../model/index.ts';

const PRIORITY: readonly number[] = [EXIT.finding, EXIT.badInput, EXIT.infra, EXIT.unsupported, EXIT.pass];

export function combineExitCodes(codes: Iterable<number>): number {
  let best: number = EXIT.pass;
  for (const c of codes) {
    const rank = PRIORITY.indexOf(c);
    if (rank === -1) throw new Error(`not a blockfarm exit code: ${c}`);
    if (rank < PRIORITY.indexOf(best)) best = c;
  }
  return best;
}
