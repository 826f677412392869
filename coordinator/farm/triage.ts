/**
 * The triage consumer: takes findings from the `triage` queue (TriageJobData,
 * worker/farm/protocol.ts), deduplicates them by signature in Redis and keeps
 * one report per signature under <data>/reports/<signature>/:
 *   report.json       signature, what it is made of, first occurrence, targets seen, occurrences
 *   report.md         the same for people, with the divergences and how to re-run the case
 *   case.json         the first case that showed it
 *   occurrences.jsonl one line per further occurrence (the first 1000)
 * Minimization and standalone reproducers plug in here later.
 *
 * Redis (shared by the campaigns of a namespace):
 *   <ns>:sig:<signature>:seen     set of <campaign>/<encoded target>/<case id> (dedup of retries)
 *   <ns>:sig:<signature>:targets  set of target names that showed it
 *   <ns>:sigs                     hash signature -> occurrences
 */
import { Worker, type Job } from 'bullmq';
import type { Redis } from 'ioredis';
import type { Logger } from '../../infra/log.ts';
import { TRIAGE_QUEUE, type TriageJobData, encodeTargetName } from '../../worker/farm/protocol.ts';
import { divergenceLines } from '../cli/commands/run.ts';
import { type DataDir, writeAtomic } from './data-dir.ts';
import { signatureText } from './signature.ts';
import { promises as fsp } from 'node:fs';
import { join } from 'node:path';

const MAX_OCCURRENCE_LINES = 1000;

export interface TriageOptions {
  connection: Redis;
  redis: Redis;
  namespace: string;
  dataDir: DataDir;
  log: Logger;
  /** Called after each finding is filed (tests, progress). */
  onFiled?: (d: TriageJobData, isNew: boolean) => void;
}

export function reportMarkdown(d: TriageJobData, count: number, targets: string[], caseFile: string): string {
  const o = d.outcome;
  const lines = [
    `# ${o.kind === 'divergence' ? (o.divergences[0]?.message ?? 'divergence') : o.title}`,
    '',
    `- signature: \`${d.signature}\` (${signatureText(o)})`,
    `- first seen: campaign ${d.campaign}, target ${d.target}, case ${d.caseId}, worker ${d.worker}, job ${d.execJob}`,
    `- targets that showed it: ${targets.join(', ')}`,
    `- occurrences: ${count}`,
    ...(d.scenarios.length ? [`- scenarios: ${d.scenarios.join(', ')}`] : []),
    '',
    '## What happened',
    '',
    '```',
    ...(o.kind === 'divergence' ? o.divergences.flatMap((x, i) => divergenceLines(x, i)) : [o.title, '', o.log.split('\n').slice(0, 60).join('\n')]),
    '```',
    '',
    '## Re-run',
    '',
    '```sh',
    `blockfarm run ${caseFile} --target ${d.target}${d.target === 'host' ? ' --allow-host' : ''}`,
    '```',
    '',
  ];
  return lines.join('\n');
}

export class TriageConsumer {
  private worker: Worker | undefined;

  constructor(private readonly opts: TriageOptions) {}

  async start(): Promise<void> {
    this.worker = new Worker(TRIAGE_QUEUE, (job) => this.file(job), {
      connection: this.opts.connection,
      prefix: this.opts.namespace,
      concurrency: 1,
      autorun: true,
    });
    this.worker.on('error', (err) => this.opts.log.debug({ err: err.message }, 'triage queue error'));
    this.worker.on('failed', (job, err) => this.opts.log.warn({ job: job?.id, err: err.message }, 'triage job failed'));
    await this.worker.waitUntilReady();
  }

  async file(job: Job): Promise<{ signature: string; isNew: boolean }> {
    const d = job.data as TriageJobData;
    const { redis, namespace: ns, dataDir, log } = this.opts;
    const sigKey = `${ns}:sig:${d.signature}`;
    const member = `${d.campaign}/${encodeTargetName(d.target)}/${d.caseId}`;
    const replies = ((await redis.multi().sadd(`${sigKey}:seen`, member).sadd(`${sigKey}:targets`, d.target).exec()) ?? []) as Array<[unknown, number]>;
    const added = replies[0]?.[1] ?? 0;
    const newTarget = replies[1]?.[1] ?? 0;
    if (!added) return { signature: d.signature, isNew: false };
    const count = await redis.hincrby(`${ns}:sigs`, d.signature, 1);
    const targets = (await redis.smembers(`${sigKey}:targets`)).sort();
    const dir = dataDir.reportDir(d.signature);
    const isNew = count === 1;
    if (isNew) await writeAtomic(join(dir, 'case.json'), `${JSON.stringify(d.case, null, 2)}\n`);
    // The report follows the count for the first MAX_OCCURRENCE_LINES occurrences, then every 100th (and any new target).
    if (isNew || newTarget || count <= MAX_OCCURRENCE_LINES || count % 100 === 0) {
      const report = {
        signature: d.signature,
        what: signatureText(d.outcome),
        kind: d.outcome.kind,
        occurrences: count,
        first: { campaign: d.campaign, target: d.target, caseId: d.caseId, worker: d.worker, execJob: d.execJob, coordinator: d.coordinator },
        targets,
        scenarios: d.scenarios,
        outcome: d.outcome,
      };
      let first = d;
      if (!isNew) {
        // Keep the first occurrence; the count and the targets change.
        try {
          const old = JSON.parse(await fsp.readFile(join(dir, 'report.json'), 'utf8')) as typeof report;
          report.first = old.first;
          report.outcome = old.outcome;
          report.scenarios = old.scenarios;
          first = { ...d, ...old.first, outcome: old.outcome, scenarios: old.scenarios } as TriageJobData;
        } catch {
          // the report was swept by retention: this occurrence becomes its first
        }
      }
      await writeAtomic(join(dir, 'report.json'), `${JSON.stringify(report, null, 2)}\n`);
      await writeAtomic(join(dir, 'report.md'), reportMarkdown(first, count, targets, join(dir, 'case.json')));
      if (isNew || newTarget) log.info({ signature: d.signature, target: d.target, case: d.caseId, what: report.what }, isNew ? 'new finding' : 'finding seen on another target');
    }
    if (!isNew && count <= MAX_OCCURRENCE_LINES) {
      await fsp.mkdir(dir, { recursive: true });
      await fsp.appendFile(join(dir, 'occurrences.jsonl'), `${JSON.stringify({ campaign: d.campaign, target: d.target, caseId: d.caseId, worker: d.worker, at: Date.now() })}\n`);
    }
    this.opts.onFiled?.(d, isNew);
    return { signature: d.signature, isNew };
  }

  async close(): Promise<void> {
    await this.worker?.close();
  }
}
