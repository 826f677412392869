/**
 * A target run's kernel output, symbolized with its kernel's symbols
 * (worker/kernel-log/kernel-symbols.ts): the kmsg records the oracle judges,
 * and the console log of a crash or hang, whose title is then taken again
 * from the symbolized report (a raw-address WARNING becomes "WARNING in f").
 */
import { KernelSymbolizer } from '../kernel-log/kernel-symbols.ts';
import { parseKernelLog } from '../kernel-log/parse.ts';
import type { TargetRun } from './target.ts';

/** Anything worth a System.map lookup or an addr2line run: frames or raw kernel addresses. */
const WORTH_IT = /\+0x[0-9a-f]+\/0x[0-9a-f]+|0xffffffff[0-9a-f]{8}/;

export async function symbolizeRun(run: TargetRun, symbolizer: KernelSymbolizer | undefined): Promise<TargetRun> {
  if (!symbolizer) return run;
  switch (run.kind) {
    case 'observed':
    case 'infra-error': {
      if (!run.kernelLog?.some((l) => WORTH_IT.test(l))) return run;
      return { ...run, kernelLog: await symbolizer.symbolize(run.kernelLog) };
    }
    case 'crash':
    case 'hang': {
      if (!WORTH_IT.test(run.log)) return run;
      const before = parseKernelLog(run.log);
      const at = before.findIndex((r) => r.title === run.title);
      const lines = await symbolizer.symbolize(run.log.split('\n'));
      const after = parseKernelLog(lines);
      const title = at >= 0 && after[at] ? after[at]!.title : run.title;
      return { ...run, title, log: lines.join('\n') };
    }
    default:
      return run;
  }
}
