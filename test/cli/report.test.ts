/** In-process checks of what the CLI prints and returns: exit-code priority and divergence lines. */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { type CaseResult, resultDetailLines, summarize, summaryLine } from '../../coordinator/cli/commands/run.ts';
import { combineExitCodes } from '../../coordinator/cli/exit-codes.ts';
import { EXIT, judgeObservation, predictObservation, validateCase } from '../../model/index.ts';

const EXIT_OF: Record<CaseResult['verdict'], number> = {
  pass: EXIT.pass, divergence: EXIT.finding, crash: EXIT.finding, hang: EXIT.finding, unsupported: EXIT.unsupported, 'infra-error': EXIT.infra, invalid: EXIT.badInput,
};

function result(verdict: CaseResult['verdict']): CaseResult {
  return { verdict, target: 'model', case: verdict === 'invalid' ? null : 'c', file: 'c.json', divergences: [], notes: [], durationMs: 1, exitCode: EXIT_OF[verdict] };
}

describe('combineExitCodes', () => {
  it('ranks finding, then bad input, then infrastructure, then unsupported, then pass', () => {
    expect(combineExitCodes([])).toBe(EXIT.pass);
    expect(combineExitCodes([0, 3])).toBe(EXIT.unsupported);
    expect(combineExitCodes([3, 4, 0])).toBe(EXIT.infra);
    expect(combineExitCodes([4, 2, 3])).toBe(EXIT.badInput);
    expect(combineExitCodes([2, 4, 1, 3, 0])).toBe(EXIT.finding);
  });

  it('rejects a number that is not an exit code', () => {
    expect(() => combineExitCodes([0, 7])).toThrow(/not a blockfarm exit code/);
  });
});

describe('summaries', () => {
  it('counts every kind and names only the ones that occurred beyond pass and divergence', () => {
    const s = summarize([result('pass'), result('pass'), result('divergence'), result('hang'), result('invalid')]);
    expect(s).toMatchObject({ cases: 5, pass: 2, divergence: 1, hang: 1, invalid: 1, crash: 0, exitCode: EXIT.finding });
    expect(summaryLine(s)).toBe('5 cases: 2 pass, 1 divergence, 1 hang, 1 invalid');
    expect(summaryLine(summarize([result('pass')]))).toBe('1 case: 1 pass, 0 divergences');
  });
});

describe('divergence lines', () => {
  it('name the op, offset, expected and observed bytes and the expected writer', () => {
    const v = validateCase(JSON.parse(readFileSync(new URL('../fixtures/cases/write-read-disk.json', import.meta.url), 'utf8')));
    if (!v.ok) throw new Error('fixture invalid');
    const obs = predictObservation(v.value, v.info);
    const read = obs.results.find((r) => r.op === 2);
    if (!read) throw new Error('no result for op 2');
    // A kernel that returned zeroes for the first sector of the read.
    read.data = [
      { offset: 0, length: 512, src: 'zero' },
      { offset: 512, length: 3584, src: { op: 1, delta: 0 } },
    ];
    const answer = judgeObservation(v.value, v.info, obs);
    if (answer.incomplete !== undefined || answer.verdict !== 'divergence') throw new Error('expected a divergence');
    const text = resultDetailLines({ ...result('divergence'), divergences: answer.divergences }).join('\n');
    expect(text).toMatch(/divergence 1: /);
    expect(text).toMatch(/op 2 \(read, thread 0\)/);
    expect(text).toMatch(/at offset 0/);
    expect(text).toMatch(/expected: .*op 1/);
    expect(text).toMatch(/observed: zeroes/);
    expect(text).toMatch(/expected writers: op 1/);
  });
});
