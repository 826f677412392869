/**
 * Per target kind: how long one case may run, how many cases go in a batch
 * and how long a worker's lock on a batch lasts.
 *
 * Why lockDuration = the longest case (at least 30 s): the worker's event loop
 * renews its locks every lockDuration / 2 and never runs a case itself
 * (runner children do), so a live worker keeps its batch however long the
 * batch runs. lockDuration is what happens when renewals stop: a worker that
 * died returns its batch after about lockDuration + stalledInterval; a worker
 * whose renewals were delayed (a Redis failover, a paused VM) keeps its batch
 * for at least one more case before another worker may take it.
 */
export interface TargetDefaults {
  /** The longest one case may run before the runner aborts it. */
  caseTimeoutMs: number;
  /** Cases per batch: enough that queue overhead is small against execution. */
  batchSize: number;
  lockDurationMs: number;
}

const TABLE: Record<string, TargetDefaults> = {
  // In process: ~0.1-1 ms per case, so big batches.
  model: { caseTimeoutMs: 30_000, batchSize: 64, lockDurationMs: 30_000 },
  // A real kernel: set-up and teardown of a stack per case, ~0.1-2 s.
  host: { caseTimeoutMs: 120_000, batchSize: 8, lockDurationMs: 120_000 },
  // A VM (TCG here): seconds per case.
  qemu: { caseTimeoutMs: 300_000, batchSize: 4, lockDurationMs: 300_000 },
};

const OTHER: TargetDefaults = { caseTimeoutMs: 300_000, batchSize: 4, lockDurationMs: 300_000 };

export function targetKind(name: string): string {
  const kind = name.split(':')[0] ?? name;
  // Test-only and site plugins wrap a real kind: 'testonly_corrupt:model' behaves like its inner target.
  const inner = name.includes(':') ? name.slice(kind.length + 1) : undefined;
  if (!(kind in TABLE) && inner && inner in TABLE) return inner;
  return kind;
}

export function targetDefaults(name: string): TargetDefaults {
  return TABLE[targetKind(name)] ?? OTHER;
}
