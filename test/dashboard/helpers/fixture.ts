/**
 * A small real campaign for the dashboard tests: a real Redis (the farm's
 * test helper), `blockfarm campaign` as a child process on the model and on
 * the TEST-ONLY wrapper testonly_corrupt:model (test/farm/helpers/
 * test-targets.ts: it corrupts the first read of about one case in five, on
 * purpose, so that divergences flow through the farm and its triage). One
 * finding's signature is then made sure to be filed and minimized (the
 * farm's triage may not have minimized it before the campaign ended: then
 * fileFinding/processSignature of coordinator/triage, the calls the farm's
 * triage makes), so that its report folder holds what a triage run writes:
 * signature.json, case.json, minimized.json, report.md, report.json,
 * repro.sh, repro.c.
 */
import { promises as fsp } from 'node:fs';
import { join } from 'node:path';
import { type Case, validateCase } from '../../../model/index.ts';
import { DirSignatureStore, TargetExecutor, type Finding, fileFinding, processSignature, signaturesRoot } from '../../../coordinator/triage/index.ts';
import { blockfarm, removeDir, tempDir, waitFor } from '../../farm/helpers/farm.ts';
import { type TestRedis, startTestRedis, uniqueNamespace } from '../../farm/helpers/redis.ts';
import { targetFactories } from '../../farm/helpers/test-targets.ts';

export const CORRUPT = 'testonly_corrupt:model';

export interface CampaignFixture {
  redis: TestRedis;
  namespace: string;
  dataDir: string;
  campaign: string;
  /** The signature filed and minimized by the triage run. */
  signature: string;
  /** What the campaign printed (its summary table). */
  summary: string;
  /** What the dashboard the campaign served (--dashboard 0) answered while it ran, if asked to. */
  embedded?: {
    url: string;
    campaigns: Array<{ meta: { id: string; status: string } }>;
    /** /api/workers while the campaign ran, and the HTTP status of each worker's page. */
    workers: Array<{ id: string; alive: boolean; targets: string[]; beatAgeMs: number }>;
    workerPages: number[];
  };
  cleanup(): Promise<void>;
}

interface FindingFile {
  campaign: string;
  /** The signature id the coordinator filed it under. */
  signature: string;
  target: string;
  caseId: string;
  outcome: Finding;
  case: Case;
}

export interface CampaignFixtureOptions {
  seed?: number;
  /** Run the campaign with --dashboard 0 and ask its dashboard for /api/overview while it runs. */
  probeEmbeddedDashboard?: boolean;
}

export async function smallCampaign(label: string, opts: CampaignFixtureOptions = {}): Promise<CampaignFixture> {
  const seed = opts.seed ?? 11;
  const redis = await startTestRedis();
  const namespace = uniqueNamespace(label);
  const dataDir = tempDir(label);
  const cleanup = async () => {
    await redis.stop();
    removeDir(dataDir);
  };
  try {
    const p = blockfarm([
      'campaign', '--redis', redis.url, '--namespace', namespace, '--targets', `model,${CORRUPT}`, '--cases', '48', '--batch-size', '16',
      '--data-dir', dataDir, '--workers', '1', '--campaign-seed', String(seed), '--no-seeds',
      ...(opts.probeEmbeddedDashboard ? ['--dashboard', '0'] : []),
    ]);
    let embedded: CampaignFixture['embedded'];
    if (opts.probeEmbeddedDashboard) {
      // The URL is in the JSON log line 'dashboard listening'; the campaign appears once the coordinator opened it.
      const url = await waitFor('the embedded dashboard', async () => /"url":"(http:\/\/127\.0\.0\.1:\d+)"[^\n]*dashboard listening/.exec(p.stderr())?.[1], 60_000, 50);
      embedded = await waitFor('the campaign in the embedded dashboard', async () => {
        const o = (await (await fetch(`${url}/api/overview`)).json()) as Pick<NonNullable<CampaignFixture['embedded']>, 'campaigns' | 'workers'>;
        if (!o.campaigns.some((c) => c.meta.id === `seed-${seed}`) || o.workers.filter((w) => w.alive).length < 2) return undefined;
        const workerPages = await Promise.all(o.workers.map(async (w) => (await fetch(`${url}/workers/${encodeURIComponent(w.id)}`)).status));
        return { url, campaigns: o.campaigns, workers: o.workers, workerPages };
      }, 60_000, 50);
    }
    const { code } = await p.exited;
    if (code !== 1 || !/\d+ finding\(s\) in \d+ distinct signature/.test(p.stdout()))
      throw new Error(`the campaign should end with findings (exit 1 and its summary), got exit ${code}: ${p.stdout().slice(-1000)} ${p.stderr().slice(-2000)}`);
    const campaign = `seed-${seed}`;
    const dir = join(dataDir, 'divergences', campaign, 'testonly_corrupt-model');
    const files = (await fsp.readdir(dir)).filter((f) => f.endsWith('.json')).sort();
    const finding = JSON.parse(await fsp.readFile(join(dir, files[0]!), 'utf8')) as FindingFile;
    const v = validateCase(finding.case);
    if (!v.ok) throw new Error('the finding file holds an invalid case');
    // The farm's triage files findings itself (and mirrors them to <data>/reports); what it left undone
    // (not filed, or not minimized before the campaign ended) is done here with the same calls.
    const store = new DirSignatureStore(signaturesRoot(dataDir));
    let signature = (await store.get(finding.signature))?.id;
    if (!signature) {
      const filed = await fileFinding(store, { outcome: finding.outcome, theCase: v.value, target: finding.target, campaign, caseId: finding.caseId });
      if (!filed) throw new Error('the finding was not filed');
      signature = filed.record.id;
    }
    if (!(await store.getCase(signature, 'minimized'))) {
      const target = await targetFactories.find((f) => f.matches(CORRUPT))!.create(CORRUPT, { allowHost: false });
      try {
        await processSignature(store, dataDir, signature, {
          executor: new TargetExecutor(target),
          minimize: { confirmRuns: 2, maxExecutions: 80, maxMs: 30_000 },
          outcome: finding.outcome,
        });
      } finally {
        await target.close();
      }
    }
    return { redis, namespace, dataDir, campaign, signature, summary: p.stdout(), ...(embedded ? { embedded } : {}), cleanup };
  } catch (err) {
    await cleanup();
    throw err;
  }
}
