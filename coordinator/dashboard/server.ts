/**
 * The dashboard's HTTP server (fastify): pages, the JSON API, /metrics and
 * the queue UI (@bull-board, read-only) under /queues, all behind one
 * access check (./access.ts). It only reads: Redis through the read model
 * and the report folders of the data directory; every method but GET and
 * HEAD is refused, so nothing the queue UI offers can change a queue.
 *
 * Routes (documented for users in the README, "Dashboard"):
 *   pages     /  /signatures  /signatures/:id  /kernels  /kernels/:name  /workers  /workers/:id
 *   files     /signatures/:id/files/:name   (report.md, report.json, repro.sh, repro.c, case.json,
 *                                           minimized.json, console.log, kernel.config, signature.json)
 *   API       /api  /api/overview  /api/campaigns  /api/campaigns/:id  /api/workers  /api/queues
 *             /api/signatures  /api/signatures/:id  /api/kernels  /api/kernels/:name
 *   other     /metrics  /queues/  /static/live.js  /healthz
 */
import { readFileSync } from 'node:fs';
import { createReadStream } from 'node:fs';
import { createBullBoard } from '@bull-board/api';
import { BullMQAdapter } from '@bull-board/api/bullMQAdapter';
import { FastifyAdapter } from '@bull-board/fastify';
import Fastify, { type FastifyBaseLogger, type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import { Redis } from 'ioredis';
import type { Logger } from '../../infra/log.ts';
import { connectRedis, parseRedisUrl, redisOptions } from '../../infra/redis/connection.ts';
import { DEFAULT_NAMESPACE } from '../../worker/farm/protocol.ts';
import { TOKEN_COOKIE, bearer, bindProblem, cookieValue, tokenMatches } from './access.ts';
import { CountHistory } from './history.ts';
import { escapeHtml, page } from './html.ts';
import { DashboardMetrics } from './metrics.ts';
import { kernelBody, kernelsBody, overviewBody, shownCampaign, signatureBody, signaturesBody, workerBody, workersBody } from './pages.ts';
import { FarmReadModel, type ReportFile } from './read-model.ts';
import { applySignatureQuery, parseSignatureQuery } from './signature-query.ts';

export interface DashboardOptions {
  redisUrl: string;
  dataDir: string;
  log: Logger;
  /** @defaultValue 'blockfarm' */
  namespace?: string;
  /** @defaultValue '127.0.0.1' */
  host?: string;
  /** 0 picks a free port. @defaultValue 8080 */
  port?: number;
  /** Required for a non-loopback host (see access.ts). */
  token?: string;
  /** How often counts are sampled for the charts. @defaultValue 5000 */
  sampleEveryMs?: number;
}

/** The dashboard cannot start with these options (bad input: exit 2). */
export class DashboardRefused extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'DashboardRefused';
  }
}

const LIVE_JS = readFileSync(new URL('./static/live.js', import.meta.url), 'utf8');
const FRAGMENT_HEADER = 'x-blockfarm-fragment';
/** Our own pages: scripts and styles from this origin (styles inline), nothing from elsewhere. */
const PAGE_CSP = "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; script-src 'self'; frame-ancestors 'none'; form-action 'self'";

const CONTENT_TYPES: Record<ReportFile, string> = {
  'report.md': 'text/markdown; charset=utf-8',
  'report.json': 'application/json; charset=utf-8',
  'repro.sh': 'text/x-shellscript; charset=utf-8',
  'repro.c': 'text/x-csrc; charset=utf-8',
  'case.json': 'application/json; charset=utf-8',
  'minimized.json': 'application/json; charset=utf-8',
  'console.log': 'text/plain; charset=utf-8',
  'kernel.config': 'text/plain; charset=utf-8',
  'signature.json': 'application/json; charset=utf-8',
};

export class DashboardServer {
  readonly opts: Required<Omit<DashboardOptions, 'token'>> & Pick<DashboardOptions, 'token'>;
  private app: FastifyInstance | undefined;
  private redis: Redis | undefined;
  private queueRedis: Redis | undefined;
  private model: FarmReadModel | undefined;
  private readonly history = new CountHistory();
  private readonly metrics = new DashboardMetrics();
  private sampler: NodeJS.Timeout | undefined;
  private board: ReturnType<typeof createBullBoard> | undefined;
  private readonly boardQueues = new Set<string>();
  url = '';

  constructor(opts: DashboardOptions) {
    this.opts = { namespace: DEFAULT_NAMESPACE, host: '127.0.0.1', port: 8080, sampleEveryMs: 5000, ...opts };
    const problem = bindProblem(this.opts.host, this.opts.token);
    if (problem) throw new DashboardRefused(problem);
    if (!Number.isInteger(this.opts.port) || this.opts.port < 0 || this.opts.port > 65535) throw new DashboardRefused(`port ${this.opts.port} is not a TCP port (0-65535)`);
  }

  private get log(): Logger {
    return this.opts.log;
  }

  async start(): Promise<string> {
    this.redis = await connectRedis(this.opts.redisUrl, { connectionName: 'blockfarm-dashboard' });
    // Not a blocking connection: the queue objects only read, and a read must fail (not wait) while Redis is away.
    this.queueRedis = new Redis(redisOptions(parseRedisUrl(this.opts.redisUrl), { connectionName: 'blockfarm-dashboard-queues' }));
    this.queueRedis.on('error', () => {});
    this.model = new FarmReadModel({ redis: this.redis, queueConnection: this.queueRedis, namespace: this.opts.namespace, dataDir: this.opts.dataDir });
    // fastify's own request lines stay out of the farm's log; its warnings and errors go in.
    const app = Fastify({
      loggerInstance: this.log.child({ component: 'dashboard' }, { level: 'warn' }) as FastifyBaseLogger,
      trustProxy: false,
      // Long ids must reach the handlers (which answer 404 for anything not an id), not fastify's 414.
      routerOptions: { maxParamLength: 1000 },
    });
    this.app = app;
    this.guard(app);
    await this.mountQueues(app);
    this.routes(app);
    await this.sample();
    this.sampler = setInterval(() => void this.sample(), this.opts.sampleEveryMs);
    this.sampler.unref();
    try {
      await app.listen({ host: this.opts.host, port: this.opts.port });
    } catch (err) {
      await this.close();
      const e = err as NodeJS.ErrnoException;
      if (e.code === 'EADDRINUSE') throw new DashboardRefused(`port ${this.opts.port} on ${this.opts.host} is in use`);
      if (e.code === 'EADDRNOTAVAIL' || e.code === 'ENOTFOUND') throw new DashboardRefused(`cannot bind to ${this.opts.host}: no such address here`);
      throw err;
    }
    const addr = app.server.address();
    const port = typeof addr === 'object' && addr ? addr.port : this.opts.port;
    const host = this.opts.host.includes(':') ? `[${this.opts.host}]` : this.opts.host;
    this.url = `http://${host}:${port}`;
    this.log.info({ url: this.url, namespace: this.opts.namespace, dataDir: this.model.data.root, token: this.opts.token ? 'required' : 'none (loopback)' }, 'dashboard listening');
    return this.url;
  }

  async close(): Promise<void> {
    clearInterval(this.sampler);
    await this.app?.close().catch(() => {});
    await this.model?.close();
    this.redis?.disconnect();
    this.queueRedis?.disconnect();
  }

  /** Sample the counts for the charts; keep the queue UI's list of queues current. */
  private async sample(): Promise<void> {
    try {
      const o = await this.model!.overview();
      for (const c of o.campaigns) if (this.history.needsSeed(c.meta.id)) this.history.seed(c.meta.id, await this.model!.storedHistory(c.meta.id));
      this.history.record(o.campaigns, o.at);
      for (const q of o.queues) {
        if (this.boardQueues.has(q.name)) continue;
        this.boardQueues.add(q.name);
        this.board?.addQueue(new BullMQAdapter(this.model!.queue(q.name), { readOnlyMode: true }));
      }
    } catch (err) {
      this.log.debug({ err: (err as Error).message }, 'dashboard: sampling failed (Redis away?)');
    }
  }

  /** Read-only, and the token on every request when there is one. */
  private guard(app: FastifyInstance): void {
    const token = this.opts.token;
    app.addHook('onRequest', async (req, reply) => {
      if (req.method !== 'GET' && req.method !== 'HEAD') {
        return reply.code(405).header('allow', 'GET, HEAD').type('text/plain').send('405: the dashboard only reads (GET)\n');
      }
      reply.header('x-content-type-options', 'nosniff').header('referrer-policy', 'no-referrer');
      if (!token) return;
      if (tokenMatches(bearer(req.headers.authorization), token) || tokenMatches(cookieValue(req.headers.cookie, TOKEN_COOKIE), token)) return;
      const url = new URL(req.url, 'http://dashboard');
      const given = url.searchParams.get('token');
      if (given !== null && tokenMatches(given, token)) {
        // A browser's first visit: keep the token in a cookie and drop it from the address bar.
        url.searchParams.delete('token');
        return reply
          .header('set-cookie', `${TOKEN_COOKIE}=${encodeURIComponent(token)}; Path=/; HttpOnly; SameSite=Strict`)
          .redirect(`${url.pathname}${url.search}`, 303);
      }
      return reply
        .code(401)
        .header('www-authenticate', 'Bearer realm="blockfarm dashboard"')
        .type('text/plain')
        .send('401: this dashboard needs its token (Authorization: Bearer TOKEN, or open it once with ?token=TOKEN)\n');
    });
  }

  private async mountQueues(app: FastifyInstance): Promise<void> {
    const adapter = new FastifyAdapter();
    adapter.setBasePath('/queues');
    this.board = createBullBoard({ queues: [], serverAdapter: adapter, options: { uiConfig: { boardTitle: 'blockfarm queues', miscLinks: [{ text: 'Dashboard', url: '/' }], hideDocsLink: true } } });
    // The queue UI's page asks Google for its fonts; the dashboard must work offline, so that link goes.
    app.addHook('onSend', async (req, reply, payload) => {
      if (typeof payload === 'string' && req.url.startsWith('/queues') && String(reply.getHeader('content-type') ?? '').includes('text/html'))
        return payload.replace(/<link[^>]+fonts\.googleapis\.com[^>]*>/g, '');
      return payload;
    });
    await app.register(adapter.registerPlugin(), { prefix: '/queues' });
  }

  private html(req: FastifyRequest, reply: FastifyReply, title: string, nav: Parameters<typeof page>[0]['nav'], body: string, live = true): FastifyReply {
    reply.header('content-security-policy', PAGE_CSP).header('cache-control', 'no-store').type('text/html; charset=utf-8');
    if (req.headers[FRAGMENT_HEADER] === '1') return reply.send(body);
    return reply.send(page({ title, ...(nav ? { nav } : {}), body, ...(live ? { liveUrl: req.url } : {}) }));
  }

  private notFound(reply: FastifyReply, what: string): FastifyReply {
    return reply.code(404).header('content-security-policy', PAGE_CSP).type('text/html; charset=utf-8').send(page({ title: 'Not found', body: `<p>${escapeHtml(what)}</p><p><a href="/">overview</a></p>` }));
  }

  private routes(app: FastifyInstance): void {
    const m = this.model!;
    type Q = Record<string, string | undefined>;

    app.get('/healthz', async () => ({ ok: true }));
    app.get('/static/live.js', async (_req, reply) => reply.type('text/javascript; charset=utf-8').header('cache-control', 'no-cache').send(LIVE_JS));
    app.get('/favicon.ico', async (_req, reply) => reply.code(204).send());

    // ------------------------------------------------------------ pages
    app.get('/', async (req, reply) => {
      const o = await m.overview();
      const asked = (req.query as Q).campaign;
      const shown = shownCampaign(o, asked);
      const findings = shown ? await m.findingTimes(shown.meta.id) : [];
      return this.html(req, reply, 'Campaign overview', 'overview', overviewBody(o, this.history, findings, asked));
    });
    app.get('/signatures', async (req, reply) => {
      const all = await m.signatures();
      const q = parseSignatureQuery(req.query as Q);
      return this.html(req, reply, 'Signatures', 'signatures', signaturesBody(applySignatureQuery(all, q), all, q));
    });
    app.get('/signatures/:id', async (req, reply) => {
      const { id } = req.params as { id: string };
      const d = await m.signature(id);
      if (!d) return this.notFound(reply, `no signature ${id}`);
      return this.html(req, reply, d.row.title, 'signatures', signatureBody(d), false);
    });
    app.get('/signatures/:id/files/:name', async (req, reply) => {
      const { id, name } = req.params as { id: string; name: string };
      const p = await m.reportFile(id, name);
      if (!p) return reply.code(404).type('text/plain').send(`404: no file ${name} for signature ${id}\n`);
      const file = name as ReportFile;
      return reply
        .type(CONTENT_TYPES[file])
        .header('content-disposition', `attachment; filename="${id}-${file}"`)
        .header('cache-control', 'no-store')
        .send(createReadStream(p));
    });
    app.get('/kernels', async (req, reply) => {
      const o = await m.overview();
      return this.html(req, reply, 'Kernels', 'kernels', kernelsBody(o, await m.signatures()));
    });
    app.get('/kernels/:name', async (req, reply) => {
      const { name } = req.params as { name: string };
      const o = await m.overview();
      const k = await m.kernel(name, o.campaigns);
      if (!k) return this.notFound(reply, `no kernel ${name} in this farm`);
      return this.html(req, reply, `Kernel ${k.name}`, 'kernels', kernelBody(k));
    });
    app.get('/workers', async (req, reply) => this.html(req, reply, 'Workers', 'workers', workersBody(await m.workers())));
    app.get('/workers/:id', async (req, reply) => {
      const { id } = req.params as { id: string };
      const w = (await m.workers()).find((x) => x.id === id);
      if (!w) return this.notFound(reply, `no worker ${id} in the registry (a worker gone long ago is forgotten)`);
      const known = new Set((await m.signatures()).map((r) => r.id));
      return this.html(req, reply, `Worker ${w.id}`, 'workers', workerBody(w, await m.findingsOfWorker(w.id), known));
    });

    // ------------------------------------------------------------ metrics
    app.get('/metrics', async (_req, reply) => reply.type(this.metrics.contentType).send(await this.metrics.render(await m.overview())));

    // ------------------------------------------------------------ JSON API
    app.get('/api', async () => ({
      endpoints: {
        '/api/overview': 'campaigns (with per-target counts, rates, queue depths), workers, queues, corpus size, signature totals',
        '/api/campaigns': 'every campaign of the namespace, newest first',
        '/api/campaigns/:id': 'one campaign, its sampled counts per target and the times of its findings (for charts)',
        '/api/workers': 'registered workers: alive or recently gone, last heartbeat',
        '/api/workers/:id': 'one worker and the findings it reported in the newest campaigns',
        '/api/queues': 'depth of every exec queue and of triage, by state',
        '/api/signatures': 'signatures; ?q= &class= &status= &kernel= &minimized=yes|no &sort= &dir=asc|desc',
        '/api/signatures/:id': 'one signature: record, report.json, case, files',
        '/api/kernels': 'kernels seen, with their signatures',
        '/api/kernels/:name': 'one kernel and its signatures',
        '/metrics': 'Prometheus metrics',
      },
    }));
    app.get('/api/overview', async () => {
      const o = await m.overview();
      return { ...o, history: Object.fromEntries(o.campaigns.map((c) => [c.meta.id, this.history.campaign(c)])) };
    });
    app.get('/api/campaigns', async () => (await m.overview()).campaigns);
    app.get('/api/campaigns/:id', async (req, reply) => {
      const { id } = req.params as { id: string };
      const c = (await m.overview()).campaigns.find((x) => x.meta.id === id);
      if (!c) return reply.code(404).send({ error: `no campaign ${id}` });
      return { ...c, history: this.history.campaign(c), findings: await m.findingTimes(c.meta.id) };
    });
    app.get('/api/workers', async () => m.workers());
    app.get('/api/workers/:id', async (req, reply) => {
      const { id } = req.params as { id: string };
      const w = (await m.workers()).find((x) => x.id === id);
      if (!w) return reply.code(404).send({ error: `no worker ${id}` });
      return { ...w, findings: await m.findingsOfWorker(w.id) };
    });
    app.get('/api/queues', async () => m.queueViews(await m.queueNames()));
    app.get('/api/signatures', async (req) => {
      const q = parseSignatureQuery(req.query as Q);
      return { query: q, signatures: applySignatureQuery(await m.signatures(), q) };
    });
    app.get('/api/signatures/:id', async (req, reply) => {
      const { id } = req.params as { id: string };
      const d = await m.signature(id);
      if (!d) return reply.code(404).send({ error: `no signature ${id}` });
      return {
        ...d.row,
        record: d.record,
        report: d.report ?? null,
        caseRole: d.caseRole ?? null,
        case: d.caseJson ?? null,
        caseText: d.caseText ?? null,
        consoleExcerpt: d.consoleExcerpt ?? null,
        files: Object.fromEntries(d.row.files.map((f) => [f, `/signatures/${d.row.id}/files/${f}`])),
      };
    });
    app.get('/api/kernels', async () => {
      const o = await m.overview();
      const out = [];
      for (const k of o.kernels) {
        const v = await m.kernel(k, o.campaigns);
        if (v) out.push({ ...v, signatures: v.signatures.map((s) => s.id) });
      }
      return out;
    });
    app.get('/api/kernels/:name', async (req, reply) => {
      const { name } = req.params as { name: string };
      const k = await m.kernel(name, (await m.overview()).campaigns);
      if (!k) return reply.code(404).send({ error: `no kernel ${name}` });
      return k;
    });

    app.setNotFoundHandler(async (req, reply) => {
      if (req.url.startsWith('/api/')) return reply.code(404).send({ error: 'no such endpoint (see /api)' });
      return this.notFound(reply, `nothing at ${req.url.split('?')[0]}`);
    });
    app.setErrorHandler(async (err, req, reply) => {
      this.log.warn({ url: req.url, err: (err as Error).message }, 'dashboard request failed');
      const code = (err as { statusCode?: number }).statusCode ?? 500;
      return reply.code(code >= 400 && code < 600 ? code : 500).type('text/plain').send(`${code >= 500 ? 'the dashboard could not read the farm' : 'bad request'}: ${(err as Error).message.split('\n')[0]}\n`);
    });
  }
}
