/**
 * The executor's wire protocol (the C sources in worker/executor/, entry
 * point main.c, implement the other side). One run = one process:
 *
 *   stdin:  one ExecPlan as JSON (then EOF)
 *   stdout: newline-delimited JSON events (ExecEvent). Set-up, undo and
 *           every other event are written at once, so a run that is killed
 *           half-way still leaves what it built on record; op results are
 *           batched (a write per line cost more than the op) and written
 *           within 20 ms, so a SIGKILL loses at most that much of them
 *   stderr: free text for people, never parsed
 *   exit:   0 when the plan ran to the end (whatever the kernel answered),
 *           2 for a plan it cannot parse, 3 when a set-up step failed
 *           (after undoing what it had done), 4 for an internal error,
 *           5 when the run was cut short by an op timeout or by
 *           SIGTERM/SIGINT/SIGHUP (after undoing what it had done)
 *
 * Set-up and undo steps are argv arrays run with posix_spawn (never a
 * shell). An argv element may contain ${name}, replaced by the first line of
 * stdout that an earlier step captured under `capture: name` (how a loop
 * device name found by `losetup --find --show` reaches later steps). Undo
 * steps run in reverse order for the steps that succeeded, on every path:
 * success, a failed step, an op timeout, SIGTERM.
 *
 * A step (or exec op) whose argv[0] is `blockfarm-exec` runs the executor's
 * own binary, wherever it is installed, for its built-in helpers
 * (helpers.c): `--calc A OP B...` (integer arithmetic, e.g. a dm table
 * length from a captured size), `--field N CMD...` (one field of a
 * command's first output line), `--if-exists PATH CMD...` (an undo for a
 * device an op may have removed already), `--scsi-debug-dev [MS]` (wait for
 * the scsi_debug disk and print its node).
 *
 * Data: every write fills its buffer with patternByte(seed, op, offset + i)
 * (model/pattern.ts; the C copy is checked against golden values), and every
 * read is decoded back into runs attributed to (op, delta) candidates, so no
 * bytes cross the protocol.
 */

/** ${name} references in these strings are substituted before use. */
export type Template = string;

export interface SetupStep {
  /** For messages and teardown bookkeeping, e.g. "loop l0". */
  name: string;
  argv: Template[];
  /** Store the first line of stdout under this name. */
  capture?: string;
  /** Run (in reverse order) to undo this step once it succeeded. */
  undo?: Template[];
  /** Bytes to write to the command's stdin (e.g. a dm table). */
  stdin?: Template;
  /** Milliseconds before the step is killed and counted failed. Default 60000. */
  timeoutMs?: number;
}

export type PlanBuffer =
  | { placement: 'heap'; align: number }
  | { placement: 'anon'; touchedPages: number; align: number }
  | { placement: 'mmap'; path: Template; offset: number; align: number };

interface PlanOpBase {
  /** The case's op id. */
  id: number;
}

/** A data op on a file or block device at `path`. */
export interface PlanIo extends PlanOpBase {
  kind: 'read' | 'write';
  path: Template;
  offset: number;
  length: number;
  via: 'psync' | 'pvec' | 'io_uring';
  nowait: boolean;
  direct: boolean;
  dsync: boolean;
  vectors: number;
  buffer: PlanBuffer;
}

export type PlanOp =
  | PlanIo
  | (PlanOpBase & { kind: 'mmap-write' | 'mmap-read'; path: Template; offset: number; length: number; mapLength: number })
  | (PlanOpBase & { kind: 'msync'; path: Template; mode: 'sync' | 'async' | 'invalidate'; mapLength: number })
  | (PlanOpBase & { kind: 'fallocate'; path: Template; mode: number; offset: number; length: number })
  | (PlanOpBase & { kind: 'truncate'; path: Template; size: number })
  | (PlanOpBase & { kind: 'fsync'; path: Template; dataOnly: boolean })
  | (PlanOpBase & { kind: 'sync-file-range'; path: Template; offset: number; length: number; flags: number })
  | (PlanOpBase & { kind: 'flush'; path: Template })
  | (PlanOpBase & { kind: 'drop-caches' })
  | (PlanOpBase & { kind: 'discard'; path: Template; mode: 'discard' | 'zeroout' | 'secure'; offset: number; length: number })
  | (PlanOpBase & { kind: 'loop-set-direct-io'; path: Template; on: boolean })
  | (PlanOpBase & { kind: 'loop-set-block-size'; path: Template; size: number })
  /** Overwrite [offset, offset+length) of `path` with noise (O_DIRECT when aligned). */
  | (PlanOpBase & { kind: 'corrupt'; path: Template; offset: number; length: number })
  /** Close every fd and mapping under `closePrefix`, then run `argvs` in order; ret is 0 or -1 with the failing step's exit in errno 'EEXEC'. */
  | (PlanOpBase & { kind: 'exec'; argvs: Template[][]; closePrefix?: Template })
  | (PlanOpBase & { kind: 'barrier'; name: string })
  | (PlanOpBase & { kind: 'sleep'; ms: number });

/** Probe a device or file after set-up. */
export interface GeometryProbe {
  id: string;
  path: Template;
  kind: 'block' | 'file';
  /** sysfs directory of a block device's queue is found from the device; loop dio from /sys/block/loopN/loop/dio. */
}

/** Read back an object after the program (caches dropped first). */
export interface FinalRead {
  id: string;
  path: Template;
  kind: 'block' | 'file';
  /** Ranges to read; files: the whole file when absent. */
  ranges?: Array<[number, number]>;
}

export interface ExecPlan {
  version: 1;
  seed: number;
  opTimeoutMs: number;
  setup: SetupStep[];
  geometry: GeometryProbe[];
  threads: PlanOp[][];
  final: FinalRead[];
  /** (op, delta) pairs reads are decoded against; zero and unknown are always tried. */
  candidates: Array<{ op: number; delta: number }>;
  /** Steps run after the final reads and before the undo steps, e.g. unmount then fsck -n; their exit codes are reported. */
  checks: Array<{ name: string; argv: Template[]; timeoutMs?: number }>;
  /**
   * A run that reaches its end leaves what set-up built standing (no undo
   * steps): the target runs the next program on the same stack and owns its
   * teardown. Every other end (failed step, timeout, signal) still undoes.
   */
  keepStack?: boolean;
}

export type DecodedRun = { offset: number; length: number; src: 'zero' | 'unknown' | 'error' | { op: number; delta: number }; sample?: string };

export type ExecEvent =
  | { ev: 'setup'; step: number; name: string; ok: true; captured?: string; ms: number }
  | { ev: 'setup'; step: number; name: string; ok: false; exit: number; stderr: string; ms: number }
  | { ev: 'geometry'; id: string; size: number; logicalBlockSize: number; physicalBlockSize: number; directIo?: boolean; dioOffsetAlign?: number }
  | { ev: 'result'; op: number; thread: number; ret: number; errno?: string; signal?: 'SIGBUS' | 'SIGSEGV'; data?: DecodedRun[]; us: number }
  | { ev: 'timeout'; op: number; thread: number; ms: number }
  | { ev: 'final'; id: string; size: number; extents: DecodedRun[]; ranges: Array<[number, number]> }
  | { ev: 'check'; name: string; exit: number; output: string; ms: number }
  | { ev: 'undo'; step: number; name: string; ok: boolean; exit: number; stderr?: string }
  | { ev: 'done'; ok: boolean; message?: string };
