/**
 * A minimal QMP client (QEMU Machine Protocol, docs/interop/qmp-spec.rst) on
 * a unix socket: read the greeting, negotiate capabilities, then one command
 * at a time, each answered by {return} or {error}; asynchronous events
 * ({event, data}) are kept for whoever waits for them.
 */
import { connect, type Socket } from 'node:net';

export class QmpError extends Error {
  override name = 'QmpError';
}

export interface QmpEvent {
  event: string;
  data?: Record<string, unknown>;
  timestamp?: { seconds: number; microseconds: number };
}

type Pending = { resolve: (v: unknown) => void; reject: (e: Error) => void; command: string };

export class QmpClient {
  private buf = '';
  private readonly queue: Pending[] = [];
  private closed = false;
  readonly events: QmpEvent[] = [];
  private readonly eventWaiters: Array<{ name: string; resolve: (e: QmpEvent) => void }> = [];
  private greeting?: (v: unknown) => void;

  private constructor(private readonly sock: Socket) {
    sock.setEncoding('utf8');
    sock.on('data', (d: string) => this.onData(d));
    sock.on('close', () => this.onClose());
    sock.on('error', () => this.onClose());
  }

  /** Connect (retrying while QEMU has not created the socket yet) and negotiate. */
  static async connect(path: string, timeoutMs = 10_000): Promise<QmpClient> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      try {
        const sock = await new Promise<Socket>((resolve, reject) => {
          const s = connect(path);
          s.once('connect', () => resolve(s));
          s.once('error', reject);
        });
        const c = new QmpClient(sock);
        await c.waitGreeting(Math.max(1000, deadline - Date.now()));
        await c.execute('qmp_capabilities');
        return c;
      } catch (err) {
        if (Date.now() > deadline) throw new QmpError(`cannot connect to QMP at ${path}: ${(err as Error).message}`);
        await new Promise((r) => setTimeout(r, 10));
      }
    }
  }

  private waitGreeting(timeoutMs: number): Promise<void> {
    return new Promise((resolve, reject) => {
      const t = setTimeout(() => reject(new QmpError('no QMP greeting')), timeoutMs);
      this.greeting = () => {
        clearTimeout(t);
        resolve();
      };
    });
  }

  private onData(d: string): void {
    this.buf += d;
    let nl: number;
    while ((nl = this.buf.indexOf('\n')) >= 0) {
      const line = this.buf.slice(0, nl).trim();
      this.buf = this.buf.slice(nl + 1);
      if (!line) continue;
      let msg: Record<string, unknown>;
      try {
        msg = JSON.parse(line) as Record<string, unknown>;
      } catch {
        continue;
      }
      if ('QMP' in msg) {
        this.greeting?.(msg);
        this.greeting = undefined;
      } else if ('event' in msg) {
        const ev = msg as unknown as QmpEvent;
        this.events.push(ev);
        for (let i = this.eventWaiters.length - 1; i >= 0; i--)
          if (this.eventWaiters[i]!.name === ev.event) this.eventWaiters.splice(i, 1)[0]!.resolve(ev);
      } else if ('return' in msg || 'error' in msg) {
        const p = this.queue.shift();
        if (!p) continue;
        if ('error' in msg) {
          const e = msg.error as { class?: string; desc?: string };
          p.reject(new QmpError(`${p.command}: ${e.desc ?? e.class ?? 'error'}`));
        } else p.resolve(msg.return);
      }
    }
  }

  private onClose(): void {
    if (this.closed) return;
    this.closed = true;
    for (const p of this.queue.splice(0)) p.reject(new QmpError(`${p.command}: QMP connection closed (QEMU exited?)`));
  }

  get isClosed(): boolean {
    return this.closed;
  }

  execute<T = unknown>(command: string, args?: Record<string, unknown>, timeoutMs = 30_000): Promise<T> {
    if (this.closed) return Promise.reject(new QmpError(`${command}: QMP connection closed`));
    return new Promise<T>((resolve, reject) => {
      const t = setTimeout(() => reject(new QmpError(`${command}: no answer within ${timeoutMs} ms`)), timeoutMs);
      this.queue.push({
        command,
        resolve: (v) => {
          clearTimeout(t);
          resolve(v as T);
        },
        reject: (e) => {
          clearTimeout(t);
          reject(e);
        },
      });
      this.sock.write(`${JSON.stringify(args ? { execute: command, arguments: args } : { execute: command })}\n`);
    });
  }

  /** The next event of this name (or one that already arrived and was not waited for). */
  waitEvent(name: string, timeoutMs: number): Promise<QmpEvent> {
    const seen = this.events.findIndex((e) => e.event === name);
    if (seen >= 0) return Promise.resolve(this.events.splice(seen, 1)[0]!);
    return new Promise((resolve, reject) => {
      const t = setTimeout(() => {
        const i = this.eventWaiters.indexOf(w);
        if (i >= 0) this.eventWaiters.splice(i, 1);
        reject(new QmpError(`no ${name} event within ${timeoutMs} ms`));
      }, timeoutMs);
      const w = {
        name,
        resolve: (e: QmpEvent) => {
          clearTimeout(t);
          const i = this.events.indexOf(e);
          if (i >= 0) this.events.splice(i, 1);
          resolve(e);
        },
      };
      this.eventWaiters.push(w);
    });
  }

  close(): void {
    this.closed = true;
    this.sock.destroy();
  }
}
