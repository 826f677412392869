/**
 * One QEMU process: a guest booted from a kernel and the guest image, or
 * restored from a saved state. The VM's sockets, console log and disk files
 * live in its own directory. Control is QMP; the guest agent is reached over
 * a virtio-serial port served as a unix socket; the serial console is
 * QEMU's stdout, kept in memory (and in console.log) and offered to
 * listeners as it comes, for crash scanning.
 *
 * Only processes started here are ever killed, by their PID.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { createWriteStream, type WriteStream } from 'node:fs';
import path from 'node:path';
import { AgentChannel } from './agent-channel.ts';
import { QmpClient, QmpError } from './qmp.ts';

export class VmError extends Error {
  override name = 'VmError';
}

export interface VmDisk {
  /** Raw image file on the host (sparse). */
  file: string;
  serial: string;
  logicalBlockSize: number;
  physicalBlockSize: number;
}

export type Accel = 'tcg' | 'kvm';

export interface VmOptions {
  /** @defaultValue 'qemu-system-x86_64' */
  qemu?: string;
  kernel: string;
  initramfs: string;
  append: string;
  memMb: number;
  smp: number;
  accel: Accel;
  disks: readonly VmDisk[];
  /** Directory for the sockets and console.log (must exist). */
  dir: string;
  /** Wait for a migration stream (restore) instead of booting; the VM stays paused until cont(). */
  incoming?: boolean;
  /** Extra QEMU arguments (tests). */
  extraArgs?: readonly string[];
  /** Run QEMU through this (e.g. setpriv --pdeathsig KILL --): it then dies with us. */
  wrapper?: readonly string[];
  /**
   * Guest RAM in a file instead of anonymous memory: shared (writes reach the
   * file: a VM whose RAM is saved that way) or private (copy-on-write: a VM
   * restored from that file, which the file never sees changes of).
   */
  ramFile?: { path: string; shared: boolean };
}

/** The QEMU argv for these options (without the binary). */
export function qemuArgs(o: VmOptions): string[] {
  const accel = o.accel === 'kvm' ? ['-accel', 'kvm', '-cpu', 'host'] : ['-accel', o.smp > 1 ? 'tcg,thread=single' : 'tcg', '-cpu', 'max'];
  const args = [
    '-name', `blockfarm,debug-threads=off`,
    ...accel,
    ...(o.ramFile
      ? ['-machine', 'q35,memory-backend=ram', '-object', `memory-backend-file,id=ram,size=${o.memMb}M,mem-path=${o.ramFile.path},share=${o.ramFile.shared ? 'on' : 'off'}`]
      : ['-machine', 'q35']),
    '-m', String(o.memMb),
    '-smp', String(o.smp),
    '-nodefaults', '-no-user-config', '-display', 'none', '-no-reboot',
    '-kernel', o.kernel,
    '-initrd', o.initramfs,
    '-append', o.append,
    '-chardev', 'stdio,id=con,signal=off',
    '-serial', 'chardev:con',
    '-qmp', `unix:${path.join(o.dir, 'qmp.sock')},server=on,wait=off`,
    '-device', 'virtio-serial-pci,id=vser',
    '-chardev', `socket,id=agent,path=${path.join(o.dir, 'agent.sock')},server=on,wait=off`,
    '-device', 'virtserialport,bus=vser.0,chardev=agent,name=blockfarm.agent',
  ];
  o.disks.forEach((d, i) => {
    args.push('-drive', `if=none,id=disk${i},file=${d.file},format=raw,cache=unsafe,aio=threads,discard=unmap`);
    args.push('-device', `virtio-blk-pci,drive=disk${i},id=vblk${i},serial=${d.serial},logical_block_size=${d.logicalBlockSize},physical_block_size=${d.physicalBlockSize}`);
  });
  if (o.incoming) args.push('-S', '-incoming', 'defer');
  args.push(...(o.extraArgs ?? []));
  return args;
}

/** The guest's serial console: all of it in memory (up to a cap), in a file, and to listeners. */
export class Console {
  private chunks: string[] = [];
  private length = 0;
  private dropped = 0;
  private readonly listeners = new Set<(text: string) => void>();
  private file?: WriteStream;

  constructor(
    logFile: string | undefined,
    private readonly cap = 8 * 1024 * 1024,
  ) {
    if (logFile) this.file = createWriteStream(logFile, { flags: 'a' });
    this.file?.on('error', () => undefined);
  }

  push(text: string): void {
    this.chunks.push(text);
    this.length += text.length;
    this.file?.write(text);
    while (this.length > this.cap && this.chunks.length > 1) {
      const c = this.chunks.shift()!;
      this.length -= c.length;
      this.dropped += c.length;
    }
    for (const l of this.listeners) l(text);
  }

  /** Everything kept, from `from` (an offset returned by mark()) on. */
  text(from = 0): string {
    const all = this.chunks.join('');
    return all.slice(Math.max(0, from - this.dropped));
  }

  mark(): number {
    return this.dropped + this.length;
  }

  listen(fn: (text: string) => void): () => void {
    this.listeners.add(fn);
    return () => this.listeners.delete(fn);
  }

  close(): void {
    this.file?.end();
    this.file = undefined;
  }
}

export interface VmExit {
  code: number | null;
  signal: NodeJS.Signals | null;
}

export class Vm {
  readonly console: Console;
  readonly exited: Promise<VmExit>;
  private exitInfo?: VmExit;
  private stderr = '';
  qmp?: QmpClient;
  agent?: AgentChannel;

  private constructor(
    readonly opts: VmOptions,
    private readonly proc: ChildProcess,
  ) {
    this.console = new Console(path.join(opts.dir, 'console.log'));
    proc.stdout!.setEncoding('utf8').on('data', (d: string) => this.console.push(d));
    proc.stderr!.setEncoding('utf8').on('data', (d: string) => {
      if (this.stderr.length < 65536) this.stderr += d;
    });
    this.exited = new Promise((resolve) => {
      proc.once('exit', (code, signal) => {
        this.exitInfo = { code, signal };
        resolve(this.exitInfo);
      });
      proc.once('error', () => {
        this.exitInfo = { code: -1, signal: null };
        resolve(this.exitInfo);
      });
    });
  }

  get pid(): number | undefined {
    return this.proc.pid;
  }

  get hasExited(): boolean {
    return this.exitInfo !== undefined;
  }

  /** QEMU's own complaints (bad arguments, failed migration), last lines. */
  stderrTail(lines = 3): string {
    return this.stderr.trim().split('\n').slice(-lines).join(' / ');
  }

  /** Spawn QEMU and connect QMP. Throws VmError when QEMU does not come up. */
  static async start(opts: VmOptions): Promise<Vm> {
    const argv = [...(opts.wrapper ?? []), opts.qemu ?? 'qemu-system-x86_64', ...qemuArgs(opts)];
    const proc = spawn(argv[0]!, argv.slice(1), { stdio: ['pipe', 'pipe', 'pipe'] });
    proc.stdin!.on('error', () => undefined);
    const vm = new Vm(opts, proc);
    const started = await Promise.race([
      QmpClient.connect(path.join(opts.dir, 'qmp.sock'), 20_000).then(
        (q) => ({ q }),
        (err: Error) => ({ err }),
      ),
      vm.exited.then((e) => ({ exit: e })),
    ]);
    if ('exit' in started) {
      const why = (proc as ChildProcess & { spawnfile?: string }).pid === undefined ? 'could not start' : `exited (${started.exit.code ?? started.exit.signal})`;
      throw new VmError(`QEMU ${why}: ${vm.stderrTail() || 'no message'}`);
    }
    if ('err' in started) {
      await vm.kill();
      throw new VmError(`QEMU did not open its QMP socket: ${started.err.message}; ${vm.stderrTail()}`);
    }
    vm.qmp = started.q;
    return vm;
  }

  /** Connect to the agent's port and wait until the agent answers. */
  async connectAgent(timeoutMs: number): Promise<AgentChannel> {
    if (!this.agent || this.agent.isClosed) this.agent = await AgentChannel.connect(path.join(this.opts.dir, 'agent.sock'), 10_000);
    const answered = await Promise.race([this.agent.ping(timeoutMs).then(() => true), this.exited.then(() => false)]);
    if (!answered) throw new VmError(`QEMU exited before the agent answered: ${this.stderrTail() || 'no message'}`);
    return this.agent;
  }

  private mustQmp(): QmpClient {
    if (!this.qmp || this.qmp.isClosed) throw new VmError('no QMP connection (QEMU exited?)');
    return this.qmp;
  }

  private async migration(timeoutMs: number): Promise<void> {
    const qmp = this.mustQmp();
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const ev = await qmp.waitEvent('MIGRATION', Math.max(1, deadline - Date.now())).catch((e: Error) => e);
      if (ev instanceof Error) throw new VmError(`migration did not finish: ${ev.message}; ${this.stderrTail()}`);
      const status = String(ev.data?.status ?? '');
      if (status === 'completed') return;
      if (status === 'failed' || status === 'cancelled') throw new VmError(`migration ${status}: ${this.stderrTail() || 'no message'}`);
    }
  }

  /** Load a saved state into this (incoming, paused) VM; `ramInFile`: the state holds no RAM, it comes from the VM's RAM file. */
  async restore(stateFile: string, timeoutMs = 60_000, ramInFile = false): Promise<void> {
    const qmp = this.mustQmp();
    await qmp.execute('migrate-set-capabilities', { capabilities: [{ capability: 'events', state: true }, ...(ramInFile ? [{ capability: 'x-ignore-shared', state: true }] : [])] });
    await qmp.execute('migrate-incoming', { uri: `exec:cat ${shellQuote(stateFile)}` });
    await this.migration(timeoutMs);
  }

  /** Stop the guest and write its state to a file (without its RAM when that is in a shared RAM file); the VM stays paused. */
  async save(stateFile: string, timeoutMs = 120_000, ramInFile = false): Promise<void> {
    const qmp = this.mustQmp();
    await qmp.execute('stop');
    await qmp.execute('migrate-set-capabilities', { capabilities: [{ capability: 'events', state: true }, ...(ramInFile ? [{ capability: 'x-ignore-shared', state: true }] : [])] });
    await qmp.execute('migrate', { uri: `exec:cat > ${shellQuote(stateFile)}` });
    await this.migration(timeoutMs);
  }

  async resizeDisk(index: number, bytes: number): Promise<void> {
    await this.mustQmp().execute('block_resize', { device: `disk${index}`, size: bytes });
  }

  async cont(): Promise<void> {
    await this.mustQmp().execute('cont');
  }

  /** SIGKILL the QEMU process (ours, by PID) and wait for it. */
  async kill(): Promise<VmExit> {
    this.agent?.close();
    this.qmp?.close();
    if (!this.exitInfo && this.proc.pid !== undefined) {
      try {
        process.kill(this.proc.pid, 'SIGKILL');
      } catch {
        // already gone
      }
    }
    const e = await this.exited;
    this.console.close();
    return e;
  }
}

/** QEMU's exec: migration URIs go through /bin/sh -c; our paths are our own, but quote them anyway. */
export function shellQuote(s: string): string {
  return `'${s.replace(/'/g, `'\\''`)}'`;
}

export { QmpError };
