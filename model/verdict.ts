/**
 * Verdicts and run outcomes. A target run ends in exactly one RunOutcome;
 * infrastructure errors and unsupported cases are never findings.
 */
export type DivergenceClass =
  | 'short-read' // fewer bytes than asked, below EOF, with no reason to stop
  | 'wrong-data' // bytes the model does not allow (see DataClass)
  | 'unexpected-error' // an errno the model does not allow
  | 'missing-error' // success where the op had to fail
  | 'wrong-count' // a byte count the model does not allow (not a short read)
  | 'unexpected-signal'
  | 'missing-signal'
  | 'size-mismatch' // final size of a file or device
  | 'final-content' // wrong bytes in the content read back after the program
  | 'geometry' // a device size or block size outside what the stack allows
  | 'missing-result' // the target did not report an op the program ran
  | 'kernel-log' // the kernel logged a warning, a BUG, a lockdep report, an unexpected IO error...
  | 'fsck'; // the filesystem checker found damage after the run

export type DataClass =
  | 'zeroes' // zeroes where an op's data belonged
  | 'stale' // an older write's data (or the content before the expected write)
  | 'other-op' // data of an op that never wrote there
  | 'shifted' // the right op's data, from another offset
  | 'garbage' // bytes no op wrote
  | 'data-instead-of-error'; // data came back where only an error was allowed

export interface Divergence {
  class: DivergenceClass;
  dataClass?: DataClass;
  op?: number;
  opKind?: string;
  thread?: number;
  object?: string;
  /** Absolute offset in the object of the first bad byte. */
  offset?: number;
  /** What the model allowed, in words. */
  expected: string;
  /** What the target did, in words. */
  observed: string;
  /** Ops whose bytes the model expected at `offset`. */
  expectedWriters?: number[];
  /** The op whose bytes the target returned at `offset`, if any. */
  observedWriter?: number;
  /** One line for people. */
  message: string;
}

export type Verdict = { verdict: 'pass'; notes: string[] } | { verdict: 'divergence'; divergences: Divergence[]; notes: string[] };

export type RunOutcome =
  | { kind: 'pass'; target: string; notes: string[]; durationMs: number }
  | { kind: 'divergence'; target: string; divergences: Divergence[]; notes: string[]; durationMs: number }
  | { kind: 'crash'; target: string; title: string; log: string; durationMs: number }
  | { kind: 'hang'; target: string; title: string; log: string; durationMs: number }
  | { kind: 'unsupported'; target: string; reason: string }
  | { kind: 'infra-error'; target: string; message: string };

export type OutcomeKind = RunOutcome['kind'];

/** Exit codes, the same for every command and target. */
export const EXIT = { pass: 0, finding: 1, badInput: 2, unsupported: 3, infra: 4 } as const;

export function exitCodeFor(o: RunOutcome): number {
  switch (o.kind) {
    case 'pass': return EXIT.pass;
    case 'divergence':
    case 'crash':
    case 'hang': return EXIT.finding;
    case 'unsupported': return EXIT.unsupported;
    case 'infra-error': return EXIT.infra;
  }
}
