/**
 * The host side of the guest agent's line protocol over virtio-serial
 * (infra/guest/agent/agent.c documents the wire format). QEMU serves the
 * port as a unix socket; this connects to it, sends commands and routes the
 * answers: PONG to pings, INFO to info requests, OUT/ERR/KM/END to the run
 * they belong to. One run at a time (the agent allows no more).
 */
import { connect, type Socket } from 'node:net';

export class AgentError extends Error {
  override name = 'AgentError';
}

export interface AgentDisk {
  name: string;
  serial: string;
  sectors: number;
  lbs: number;
  pbs: number;
}

export interface AgentInfo {
  release: string;
  uptimeMs: number;
  disks: AgentDisk[];
}

export interface AgentRunResult {
  /** Exit code, or -1 when killed by a signal or when it could not start. */
  exit: number;
  signal: number;
  /** Lines of stderr (stdout lines go to onOut as they come, and are kept here too unless keepOut is false). */
  out: string[];
  err: string[];
  /** Kernel log records added while it ran (kmsg format), when asked for. */
  kmsg: string[];
}

export interface AgentRunOptions {
  /** Also collect the kernel log records the run caused. */
  kmsg?: boolean;
  onOut?: (line: string) => void;
  /** Keep stdout lines in the result. @defaultValue true */
  keepOut?: boolean;
}

interface RunState {
  id: number;
  out: string[];
  err: string[];
  kmsg: string[];
  opts: AgentRunOptions;
  resolve: (r: AgentRunResult) => void;
  reject: (e: Error) => void;
}

export class AgentChannel {
  private buf = '';
  private closed = false;
  private nextId = 1;
  private run?: RunState;
  private readonly pongs = new Map<string, () => void>();
  private infoWaiters: Array<(i: AgentInfo) => void> = [];
  private readonly misc: Array<{ prefix: string; resolve: (line: string) => void }> = [];
  /** Called once when the connection closes. */
  onClose?: () => void;

  private constructor(private readonly sock: Socket) {
    sock.setEncoding('utf8');
    sock.on('data', (d: string) => this.onData(d));
    sock.on('close', () => this.onClosed());
    sock.on('error', () => this.onClosed());
  }

  static async connect(path: string, timeoutMs = 10_000): Promise<AgentChannel> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      try {
        const sock = await new Promise<Socket>((resolve, reject) => {
          const s = connect(path);
          s.once('connect', () => resolve(s));
          s.once('error', reject);
        });
        return new AgentChannel(sock);
      } catch (err) {
        if (Date.now() > deadline) throw new AgentError(`cannot connect to the agent's port at ${path}: ${(err as Error).message}`);
        await new Promise((r) => setTimeout(r, 10));
      }
    }
  }

  get isClosed(): boolean {
    return this.closed;
  }

  private onClosed(): void {
    if (this.closed) return;
    this.closed = true;
    this.run?.reject(new AgentError('the agent connection closed (QEMU exited?)'));
    this.run = undefined;
    this.onClose?.();
  }

  private onData(d: string): void {
    this.buf += d;
    let nl: number;
    while ((nl = this.buf.indexOf('\n')) >= 0) {
      const line = this.buf.slice(0, nl);
      this.buf = this.buf.slice(nl + 1);
      this.onLine(line);
    }
  }

  private onLine(line: string): void {
    const sp = line.indexOf(' ');
    const tag = sp < 0 ? line : line.slice(0, sp);
    const rest = sp < 0 ? '' : line.slice(sp + 1);
    switch (tag) {
      case 'PONG': {
        const w = this.pongs.get(rest);
        if (w) {
          this.pongs.delete(rest);
          w();
        }
        return;
      }
      case 'INFO': {
        let info: AgentInfo;
        try {
          info = JSON.parse(rest) as AgentInfo;
        } catch {
          return;
        }
        for (const w of this.infoWaiters.splice(0)) w(info);
        return;
      }
      case 'OUT':
      case 'ERR':
      case 'KM':
      case 'END':
      case 'BUSY': {
        const sp2 = rest.indexOf(' ');
        const id = Number(sp2 < 0 ? rest : rest.slice(0, sp2));
        const text = sp2 < 0 ? '' : rest.slice(sp2 + 1);
        const r = this.run;
        if (!r || r.id !== id) return;
        if (tag === 'OUT') {
          r.opts.onOut?.(text);
          if (r.opts.keepOut !== false) r.out.push(text);
        } else if (tag === 'ERR') r.err.push(text);
        else if (tag === 'KM') r.kmsg.push(text);
        else if (tag === 'BUSY') {
          this.run = undefined;
          r.reject(new AgentError('the agent is busy with another run'));
        } else {
          const [exit, signal] = text.split(' ').map(Number);
          this.run = undefined;
          r.resolve({ exit: exit ?? -1, signal: signal ?? 0, out: r.out, err: r.err, kmsg: r.kmsg });
        }
        return;
      }
      default:
        for (let i = 0; i < this.misc.length; i++)
          if (line.startsWith(this.misc[i]!.prefix)) {
            this.misc.splice(i, 1)[0]!.resolve(line);
            return;
          }
    }
  }

  private send(text: string | Buffer): void {
    if (this.closed) throw new AgentError('the agent connection is closed');
    this.sock.write(text);
  }

  /**
   * Resolves with the round trip in ms once the agent answers; pings again
   * every `retryMs` (a guest that is still booting or restoring reads late).
   */
  ping(timeoutMs: number, retryMs = 250): Promise<number> {
    const t0 = performance.now();
    return new Promise((resolve, reject) => {
      const tokens: string[] = [];
      let timer: NodeJS.Timeout | undefined;
      const cleanup = () => {
        clearTimeout(deadline);
        clearTimeout(timer);
        for (const t of tokens) this.pongs.delete(t);
      };
      const deadline = setTimeout(() => {
        cleanup();
        reject(new AgentError(`the agent did not answer within ${timeoutMs} ms`));
      }, timeoutMs);
      const once = () => {
        if (this.closed) {
          cleanup();
          reject(new AgentError('the agent connection is closed'));
          return;
        }
        const tok = `${Date.now().toString(36)}-${this.nextId++}`;
        tokens.push(tok);
        this.pongs.set(tok, () => {
          cleanup();
          resolve(performance.now() - t0);
        });
        this.send(`PING ${tok}\n`);
        timer = setTimeout(once, retryMs);
      };
      once();
    });
  }

  info(timeoutMs = 10_000): Promise<AgentInfo> {
    return new Promise((resolve, reject) => {
      const t = setTimeout(() => reject(new AgentError(`no INFO answer within ${timeoutMs} ms`)), timeoutMs);
      this.infoWaiters.push((i) => {
        clearTimeout(t);
        resolve(i);
      });
      this.send('INFO\n');
    });
  }

  /** Run argv in the guest (argv[0] 'blockfarm-exec' is the executor), feeding `stdin`. */
  start(argv: readonly string[], stdin: string | Buffer = '', opts: AgentRunOptions = {}): { id: number; done: Promise<AgentRunResult> } {
    if (this.run) throw new AgentError('a run is already in progress');
    const id = this.nextId++;
    const argvBuf = Buffer.concat(argv.map((a) => Buffer.from(`${a}\0`)));
    const inBuf = Buffer.isBuffer(stdin) ? stdin : Buffer.from(stdin);
    const done = new Promise<AgentRunResult>((resolve, reject) => {
      this.run = { id, out: [], err: [], kmsg: [], opts, resolve, reject };
    });
    this.send(Buffer.concat([Buffer.from(`RUN ${id} ${argvBuf.length} ${inBuf.length} ${opts.kmsg ? 'k' : '-'}\n`), argvBuf, inBuf]));
    return { id, done };
  }

  /** Run to the end and return the result. */
  exec(argv: readonly string[], stdin: string | Buffer = '', opts: AgentRunOptions = {}): Promise<AgentRunResult> {
    return this.start(argv, stdin, opts).done;
  }

  kill(id: number, signal = 15): void {
    if (!this.closed) this.send(`KILL ${id} ${signal}\n`);
  }

  private expect(prefix: string, timeoutMs: number): Promise<string> {
    return new Promise((resolve, reject) => {
      const t = setTimeout(() => reject(new AgentError(`no ${prefix.trim()} answer within ${timeoutMs} ms`)), timeoutMs);
      this.misc.push({
        prefix,
        resolve: (l) => {
          clearTimeout(t);
          resolve(l);
        },
      });
    });
  }

  /** Tests only: write `c` to /proc/sysrq-trigger ('c' crashes the kernel). */
  sysrq(c: string): void {
    this.send(`SYSRQ ${c[0]}\n`);
  }

  /** Tests only: the agent stops answering for good. */
  async stall(timeoutMs = 10_000): Promise<void> {
    const p = this.expect('STALLED', timeoutMs);
    this.send('STALL\n');
    await p;
  }

  close(): void {
    this.closed = true;
    this.sock.destroy();
  }
}
