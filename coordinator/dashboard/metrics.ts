/**
 * /metrics in Prometheus' text format (prom-client), one registry per
 * dashboard (no default global registry). Every scrape reads one overview
 * and sets the gauges from it, so the numbers of one scrape agree with each
 * other. The farm's counts are running totals kept in Redis; they are
 * exported as gauges because the dashboard mirrors them (it does not count).
 *
 *   blockfarm_cases_executed{campaign,target,kernel}
 *   blockfarm_findings{campaign,target,kernel,kind}      kind: divergence | crash | hang
 *   blockfarm_cases{campaign,target,kernel,outcome}      every outcome count (pass, unsupported, infraError, ...)
 *   blockfarm_execs_per_second{campaign,target,kernel}   the coordinator's ~10 s rate
 *   blockfarm_queue_jobs{queue,state}
 *   blockfarm_workers_alive, blockfarm_worker_slots{target}
 *   blockfarm_corpus_cases
 *   blockfarm_signatures{class}, blockfarm_signatures_minimized, blockfarm_signatures_with_reproducer
 *   blockfarm_minimization_progress                      minimized / all signatures (0..1)
 */
import { Gauge, Registry } from 'prom-client';
import type { Overview } from './read-model.ts';

export class DashboardMetrics {
  readonly registry = new Registry();
  private readonly g;

  constructor() {
    const r = [this.registry];
    const ckt = ['campaign', 'target', 'kernel'] as const;
    this.g = {
      executed: new Gauge({ name: 'blockfarm_cases_executed', help: 'Cases executed (campaign running total)', labelNames: ckt, registers: r }),
      findings: new Gauge({ name: 'blockfarm_findings', help: 'Findings by kind (divergence, crash, hang)', labelNames: [...ckt, 'kind'], registers: r }),
      outcomes: new Gauge({ name: 'blockfarm_cases', help: 'Cases by outcome', labelNames: [...ckt, 'outcome'], registers: r }),
      rate: new Gauge({ name: 'blockfarm_execs_per_second', help: 'Cases per second over the last ~10 s (as the coordinator measured it)', labelNames: ckt, registers: r }),
      queue: new Gauge({ name: 'blockfarm_queue_jobs', help: 'Jobs in a farm queue by state', labelNames: ['queue', 'state'], registers: r }),
      workers: new Gauge({ name: 'blockfarm_workers_alive', help: 'Workers with a live heartbeat', registers: r }),
      slots: new Gauge({ name: 'blockfarm_worker_slots', help: 'Batch slots of live workers per target', labelNames: ['target'], registers: r }),
      corpus: new Gauge({ name: 'blockfarm_corpus_cases', help: 'Cases in the corpus index', registers: r }),
      signatures: new Gauge({ name: 'blockfarm_signatures', help: 'Signatures filed by triage, by class', labelNames: ['class'], registers: r }),
      minimized: new Gauge({ name: 'blockfarm_signatures_minimized', help: 'Signatures with a minimized case', registers: r }),
      withRepro: new Gauge({ name: 'blockfarm_signatures_with_reproducer', help: 'Signatures with a standalone repro.c', registers: r }),
      progress: new Gauge({ name: 'blockfarm_minimization_progress', help: 'Share of signatures minimized (0..1)', registers: r }),
    };
  }

  async render(o: Overview): Promise<string> {
    for (const g of Object.values(this.g)) g.reset();
    for (const c of o.campaigns)
      for (const t of c.targets) {
        const l = { campaign: c.meta.id, target: t.target, kernel: t.kernel };
        this.g.executed.set(l, t.counts.executed);
        this.g.rate.set(l, t.rate);
        for (const kind of ['divergence', 'crash', 'hang'] as const) this.g.findings.set({ ...l, kind }, t.counts[kind]);
        for (const outcome of ['pass', 'divergence', 'crash', 'hang', 'unsupported', 'infraError', 'refused', 'failed', 'cancelled', 'lost'] as const)
          this.g.outcomes.set({ ...l, outcome }, t.counts[outcome]);
      }
    for (const q of o.queues) for (const [state, n] of Object.entries(q.counts)) this.g.queue.set({ queue: q.name, state }, n);
    const alive = o.workers.filter((w) => w.alive);
    this.g.workers.set(alive.length);
    const slots = new Map<string, number>();
    for (const w of alive) for (const t of w.targets) slots.set(t, (slots.get(t) ?? 0) + w.concurrency);
    for (const [t, n] of slots) this.g.slots.set({ target: t }, n);
    this.g.corpus.set(o.corpusSize);
    for (const [cls, n] of Object.entries(o.signatures.byClass)) this.g.signatures.set({ class: cls }, n);
    this.g.minimized.set(o.signatures.minimized);
    this.g.withRepro.set(o.signatures.withRepro);
    this.g.progress.set(o.signatures.total ? o.signatures.minimized / o.signatures.total : 0);
    return this.registry.metrics();
  }

  get contentType(): string {
    return this.registry.contentType;
  }
}
