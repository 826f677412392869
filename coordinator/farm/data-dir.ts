/**
 * The durable side of the farm: files under the data directory (default
 * ./data). Redis holds live state; everything worth keeping after a campaign
 * is here, as plain JSON and text.
 *
 *   corpus/cases/<h[0..2]>/<h>.json, corpus/index.jsonl
 *                                               the corpus (corpus/store: content-addressed by caseHash)
 *   divergences/<campaign>/<target>/<case id>.json
 *                                               every finding (divergence, crash, hang) and every
 *                                               case that failed its batch for good, with the case
 *   logs/<campaign>/<target>/<case id>.log      console log of a crash or hang
 *   reports/<signature>/report.json, report.md, case.json, occurrences.jsonl
 *                                               one report per signature (triage)
 *   campaigns/<campaign>/campaign.json, summary.txt
 *   redis/                                      the embedded redis-server's files (infra/redis/server.ts)
 *   retention.json                              optional caps (./retention.ts)
 *   farm.lock                                   PID of the process using the directory
 * (<target> is the encoded target name, e.g. qemu-6.1.0-56-amd64.)
 *
 * Writes are atomic (a temporary file renamed into place), so a reader or a
 * coordinator killed mid-write never sees half a file.
 */
import { randomBytes } from 'node:crypto';
import { promises as fsp, readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { encodeTargetName } from '../../worker/farm/protocol.ts';

export const DEFAULT_DATA_DIR = 'data';

export async function writeAtomic(path: string, content: string): Promise<void> {
  await fsp.mkdir(dirname(path), { recursive: true });
  const tmp = `${path}.${randomBytes(4).toString('hex')}.tmp`;
  await fsp.writeFile(tmp, content);
  await fsp.rename(tmp, path);
}

async function exists(p: string): Promise<boolean> {
  try {
    await fsp.access(p);
    return true;
  } catch {
    return false;
  }
}

export class DataDir {
  readonly root: string;

  constructor(root: string) {
    this.root = resolve(root);
  }

  get corpusDir(): string {
    return join(this.root, 'corpus');
  }

  findingPath(campaign: string, target: string, caseId: string): string {
    return join(this.root, 'divergences', campaign, encodeTargetName(target), `${caseId}.json`);
  }

  async writeFinding(campaign: string, target: string, caseId: string, record: unknown): Promise<string> {
    const p = this.findingPath(campaign, target, caseId);
    await writeAtomic(p, `${JSON.stringify(record, null, 2)}\n`);
    return p;
  }

  logPath(campaign: string, target: string, caseId: string): string {
    return join(this.root, 'logs', campaign, encodeTargetName(target), `${caseId}.log`);
  }

  async writeLog(campaign: string, target: string, caseId: string, text: string): Promise<string> {
    const p = this.logPath(campaign, target, caseId);
    await writeAtomic(p, text.endsWith('\n') ? text : `${text}\n`);
    return p;
  }

  reportDir(signature: string): string {
    return join(this.root, 'reports', signature);
  }

  campaignDir(campaign: string): string {
    return join(this.root, 'campaigns', campaign);
  }

  get redisDir(): string {
    return join(this.root, 'redis');
  }
}

/**
 * One process per data directory: `farm.lock` holds the PID of the holder.
 * A lock whose process is gone is taken over.
 */
export class DataDirLock {
  private held = false;
  readonly path: string;

  constructor(root: string) {
    this.path = join(resolve(root), 'farm.lock');
  }

  async acquire(): Promise<void> {
    await fsp.mkdir(dirname(this.path), { recursive: true });
    for (let attempt = 0; attempt < 2; attempt++) {
      try {
        await fsp.writeFile(this.path, `${process.pid}\n`, { flag: 'wx' });
        this.held = true;
        return;
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      }
      const pid = Number(readFileSync(this.path, 'utf8').trim());
      if (Number.isInteger(pid) && pid > 0 && pid !== process.pid && isAlive(pid))
        throw new Error(`the data directory ${dirname(this.path)} is in use by process ${pid} (another blockfarm campaign?); use another --data-dir`);
      await fsp.rm(this.path, { force: true });
    }
    throw new Error(`could not lock ${this.path}`);
  }

  async release(): Promise<void> {
    if (!this.held) return;
    this.held = false;
    await fsp.rm(this.path, { force: true });
  }
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}
