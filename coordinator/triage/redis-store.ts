/**
 * The farm's signature store: records in Redis, shared by every coordinator
 * of a namespace, and mirrored into the data directory
 * (<data>/reports/<id>/signature.json, case.json, minimized.json: the
 * DirSignatureStore layout), so the CLI and the dashboard read them without
 * Redis, and a new or wiped Redis goes on from what the files hold.
 *
 * Redis keys:
 *   <ns>:signatures        hash: signature id -> SignatureRecord (JSON)
 *   <ns>:signatures:lock   a short lock (SET NX PX, a random token, released
 *                          only by its holder) around each read-modify-write,
 *                          so two coordinators filing the same bug never lose
 *                          a count
 *
 * Cases live in the files only (they can be large).
 *
 * People change records through the CLI, which writes the files (status,
 * reproduction rate, re-tests): when the file's status, reproduction or a
 * re-test is newer than Redis's, the record read here takes it from the file,
 * and the next write puts it into Redis too.
 */
import { randomBytes } from 'node:crypto';
import type { Redis } from 'ioredis';
import type { Case } from '../../model/index.ts';
import { type CaseRole, DirSignatureStore, RecordStore, type SignatureRecord } from './store.ts';

export interface RedisSignatureStoreOptions {
  redis: Redis;
  /** Key prefix (the farm's namespace). */
  namespace: string;
  /** <data>/reports (signaturesRoot(dataDir)). */
  root: string;
  /**
   * The lock lapses after this long if its holder dies.
   * @defaultValue 10000
   */
  lockTtlMs?: number;
  /**
   * Give up waiting for the lock after this long.
   * @defaultValue 30000
   */
  lockWaitMs?: number;
}

const RELEASE = `if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) else return 0 end`;

/** The record with what people changed in the file since (see the file comment). */
export function withNewerFileChanges(fromRedis: SignatureRecord, fromFile: SignatureRecord | undefined): SignatureRecord {
  if (!fromFile) return fromRedis;
  const r = structuredClone(fromRedis);
  if ((fromFile.statusAt ?? 0) > (r.statusAt ?? 0)) {
    r.status = fromFile.status;
    r.statusAt = fromFile.statusAt;
    if (fromFile.fixedIn !== undefined) r.fixedIn = fromFile.fixedIn;
    else delete r.fixedIn;
    if (fromFile.statusNote !== undefined) r.statusNote = fromFile.statusNote;
  }
  if (fromFile.reproduction && (!r.reproduction || fromFile.reproduction.at > r.reproduction.at)) r.reproduction = fromFile.reproduction;
  for (const [k, v] of Object.entries(fromFile.retests ?? {})) if (!r.retests[k] || r.retests[k]!.at < v.at) r.retests[k] = v;
  return r;
}

export class RedisSignatureStore extends RecordStore {
  readonly files: DirSignatureStore;
  private readonly hash: string;
  private readonly lockKey: string;
  private readonly lockTtlMs: number;
  private readonly lockWaitMs: number;

  constructor(private readonly opts: RedisSignatureStoreOptions) {
    super();
    this.files = new DirSignatureStore(opts.root);
    this.hash = `${opts.namespace}:signatures`;
    this.lockKey = `${opts.namespace}:signatures:lock`;
    this.lockTtlMs = opts.lockTtlMs ?? 10_000;
    this.lockWaitMs = opts.lockWaitMs ?? 30_000;
  }

  /** The folder of a signature (report, cases), as DirSignatureStore names it. */
  dir(id: string): string {
    return this.files.dir(id);
  }

  protected override exclusive<T>(fn: () => Promise<T>): Promise<T> {
    return super.exclusive(async () => {
      const token = randomBytes(8).toString('hex');
      const until = Date.now() + this.lockWaitMs;
      while ((await this.opts.redis.set(this.lockKey, token, 'PX', this.lockTtlMs, 'NX')) !== 'OK') {
        if (Date.now() > until) throw new Error(`the signature store lock ${this.lockKey} stayed taken for ${this.lockWaitMs} ms`);
        await new Promise((r) => setTimeout(r, 15));
      }
      try {
        return await fn();
      } finally {
        await this.opts.redis.eval(RELEASE, 1, this.lockKey, token).catch(() => undefined);
      }
    });
  }

  protected async read(id: string): Promise<SignatureRecord | undefined> {
    const [json, file] = await Promise.all([this.opts.redis.hget(this.hash, id), this.files.readRecord(id)]);
    if (!json) return file;
    return withNewerFileChanges(JSON.parse(json) as SignatureRecord, file);
  }

  protected async write(r: SignatureRecord): Promise<void> {
    await this.opts.redis.hset(this.hash, r.id, JSON.stringify(r));
    await this.files.writeRecord(r);
  }

  protected async remove(id: string): Promise<void> {
    await this.opts.redis.hdel(this.hash, id);
    await this.files.removeRecord(id);
  }

  protected async ids(): Promise<string[]> {
    const [inRedis, inFiles] = await Promise.all([this.opts.redis.hkeys(this.hash), this.files.recordIds()]);
    return [...new Set([...inRedis, ...inFiles])].sort();
  }

  async putCase(id: string, role: CaseRole, c: Case): Promise<void> {
    await this.files.putCase(id, role, c);
  }

  protected readCase(id: string, role: CaseRole): Promise<Case | undefined> {
    return this.files.readCaseFile(id, role);
  }
}
