/**
 * The kernel-log oracle's table of report formats.
 *
 * Each entry says how one kind of kernel report starts (a header regexp,
 * matched against a message with its /dev/kmsg or console prefix stripped),
 * how its title is built, which stack frames are too generic to blame, what
 * else belongs to it, and whether it ends a case as a crash. The engine
 * (parse.ts) knows no report by name: adding a format is one entry here plus a
 * golden file in testdata/.
 *
 * Order matters: the first entry whose header matches a line wins, so the
 * specific formats ("BUG: KASAN:", "WARNING: possible circular ...") come
 * before the generic ones ("BUG:", "WARNING: CPU:").
 *
 * Titles are templates: `{name}` is a named group of the header regexp, of a
 * `captures` regexp, or `func` (the guilty function); `[...]` is an optional
 * segment, dropped when a variable inside it is missing. Every variable but
 * `func` is scrubbed (addresses, numbers, device instances) before it is put
 * in; `func` is a bare function name (offsets, modules and compiler suffixes
 * such as .cold or .isra.0 removed).
 */

/** Every kind of report the oracle knows: one enum for the whole farm. */
export const REPORT_KINDS = [
  'WARNING',
  'BUG',
  'Oops',
  'GPF',
  'KASAN',
  'UBSAN',
  'lockdep',
  'hung-task',
  'panic',
  'not-cleared',
  'io-error',
  'integrity',
  'fs-error',
  'soft-lockup',
  'rcu-stall',
] as const;
export type ReportKind = (typeof REPORT_KINDS)[number];

/**
 * Where the guilty function comes from; a format lists sources in order and
 * the first one that yields a function not on the skip list wins.
 */
export type GuiltySource =
  /** The header's `func` group. */
  | { from: 'header' }
  /** The first kernel-mode instruction pointer line (`RIP: 0010:f+0x1/0x2`, `pc : f+0x1/0x2`). */
  | { from: 'rip' }
  /**
   * The first reliable, not skipped frame of the stack that starts after the
   * first line matching `after` (default: the first `Call Trace:`); the stack
   * ends at a line matching `until` or at the first line that is not part of
   * a trace once frames have been seen.
   */
  | { from: 'stack'; after?: RegExp; until?: RegExp }
  /** The `func` group of the first line matching `re` (after the first line matching `after`, if given). */
  | { from: 'line'; re: RegExp; after?: RegExp };

/** An alternative title: the same template language, its own guilty sources. */
export interface AltTitle {
  title: string;
  guilty: readonly GuiltySource[];
}

/**
 * How a report's extent is found:
 * - `trace`: everything from the header on belongs to it until its stack
 *   trace ends (`</TASK>`, or the first non-trace line after `Call Trace:`),
 *   then only tail lines (registers, `---[ end trace`, an absorbed panic ...).
 * - `message`: the header plus the lines matching `body` (and a stack dump, if
 *   one follows); any other line ends it.
 */
export type ReportShape = 'trace' | 'message';

export interface ClassifyRule {
  re: RegExp;
  vars: Readonly<Record<string, string>>;
}

export interface ReportFormat {
  /** Unique, stable id (kebab-case); reports name the format they came from. */
  id: string;
  kind: ReportKind;
  /** Matched against the whole prefix-stripped message (trailing blanks removed). */
  header: RegExp;
  /** Title template (see the file comment). */
  title: string;
  /** Where the guilty function comes from, in order; none: the title needs no function. */
  guilty?: readonly GuiltySource[];
  /** Regexps tried on the report's lines after the header; the first match of each adds its named groups as title variables. */
  captures?: readonly RegExp[];
  /**
   * Named values chosen by the report's text: the first rule one of whose
   * lines (after the header) matches sets its `vars` (for reports whose
   * header does not say what went wrong, like old UBSAN's "Undefined behaviour in").
   */
  classify?: readonly ClassifyRule[];
  alts?: readonly AltTitle[];
  /** Frames (globs, `*` = any run of characters) never blamed, on top of COMMON_SKIP. */
  skip?: readonly string[];
  /** The report means the kernel killed a task or stopped (Oops, panic, kernel BUG): it ends the case as a crash. */
  crash: boolean;
  shape: ReportShape;
  /** `message` shape: the lines that continue the report. */
  body?: readonly RegExp[];
  /** An explicit last line (included); after it only tail lines follow. */
  end?: RegExp;
  /** Lines that may still follow once the trace (or `end`) is over, besides GENERIC_TAIL. */
  tail?: readonly RegExp[];
  /** Headers of these kinds inside the report belong to it (a panic it caused, the Oops line of a page fault); an absorbed crash makes the report a crash. */
  absorbs?: readonly ReportKind[];
  /** Repeats with the same kind and title (within BURST_GAP lines, nothing else in between) fold into one report. Needs a title computable from the header alone. */
  burst?: boolean;
  /** How many blank lines in a row the report may contain before its trace ends (default 0: a blank line ends it). */
  maxBlank?: number;
  /** Hard limit on the report's length in lines (default DEFAULT_MAX_LINES). */
  maxLines?: number;
  /** A line just before the header that belongs to the report (default LEAD_IN). */
  leadIn?: RegExp;
}

export const DEFAULT_MAX_LINES = 400;
/** Lines of other output allowed between two pieces of a burst. */
export const BURST_GAP = 20;
/** Separator lines the kernel prints right before a report's header. */
export const LEAD_IN = /^(?:-+\[ cut here \]-+|={10,}|-{10,})$/;

/**
 * Frames that are never the guilty function: the reporting machinery, lock
 * and RCU primitives, exception and syscall entry, thread and workqueue
 * plumbing, the timer interrupt path.
 */
export const COMMON_SKIP: readonly string[] = [
  // WARN/BUG/dump machinery
  '__warn', 'warn_slowpath*', 'report_bug', 'handle_bug', 'do_error_trap', 'do_trap', 'die', '__die*',
  'dump_stack*', '__dump_stack', 'show_stack', 'show_regs', 'show_trace_log_lvl', 'panic', 'check_panic_on_warn',
  'oops_*', 'bug_handler', '__might_sleep', '__might_resched', '___might_sleep', '__might_fault', 'might_fault',
  // sanitizers
  'kasan_*', '__kasan*', '____kasan*', 'print_report', 'print_address_description*', 'check_region_inline',
  'ubsan_*', '__ubsan*', 'kmsan_*', '__msan*', 'kfence_*', '__kfence*',
  // lockdep, locks, RCU
  'lock_acquire*', 'lock_release', '__lock_acquire', '__lock_release', 'lock_acquired', 'lock_contended',
  'lockdep_*', 'check_noncircular', 'check_prev_add', 'check_prevs_add', 'check_irq_usage', 'validate_chain',
  'mark_lock*', 'mark_usage', 'valid_state', 'print_*_bug', 'print_usage_bug*', 'print_circular_bug*',
  '_raw_spin_*', '_raw_read_*', '_raw_write_*', 'do_raw_spin_*', 'queued_spin_lock_slowpath',
  'native_queued_spin_lock_slowpath', 'queued_read_lock_slowpath', 'queued_write_lock_slowpath',
  'mutex_lock*', '__mutex_lock*', 'mutex_unlock', '__mutex_unlock_slowpath', 'mutex_trylock',
  'down_*', 'up_read', 'up_write', 'rwsem_*', 'rcu_*', '__rcu_*',
  // exceptions, interrupts, timers
  'asm_exc_*', 'exc_*', 'asm_sysvec_*', 'sysvec_*', '__sysvec_*', 'asm_common_interrupt', 'common_interrupt',
  'page_fault_oops', 'kernelmode_fixup_or_oops', '__bad_area_nosemaphore', 'bad_area*', 'no_context',
  'do_user_addr_fault', 'do_kern_addr_fault', 'handle_page_fault', 'do_page_fault', '__do_page_fault',
  'fixup_exception', 'irq_exit*', '__irq_exit_rcu', 'hrtimer_*', '__hrtimer_*', 'tick_*', 'update_process_times',
  'watchdog_timer_fn', 'nmi_cpu_backtrace*', 'nmi_trigger_cpumask_backtrace',
  // entry and threads
  'entry_SYSCALL*', 'do_syscall_64', 'do_syscall_x64', 'syscall_exit_to_user_mode*', 'exit_to_user_mode*',
  'ret_from_fork*', 'kthread', 'worker_thread', 'process_one_work', 'process_scheduled_works',
  'smpboot_thread_fn', 'kthread_worker_fn',
];

/** Where a task sleeps: never why it is stuck. */
const WAIT_SKIP: readonly string[] = [
  'schedule*', '__schedule', 'io_schedule*', 'preempt_schedule*', 'wait_for_completion*', '__wait_for_common',
  'wait_for_common*', 'do_wait_for_common', '__wait_on_bit*', 'out_of_line_wait_on_bit*', 'bit_wait*',
  'wait_on_bit*', '__wait_on_buffer', 'wait_on_buffer', 'folio_wait_bit*', '__folio_lock*', 'folio_lock*',
  'wait_on_page_bit*', '__lock_page*', 'percpu_rwsem_wait', '__percpu_down_*', 'percpu_down_*',
  'synchronize_rcu*', 'synchronize_srcu*', '__synchronize_srcu', 'flush_work', '__flush_work',
  '__flush_workqueue', 'flush_workqueue', 'prepare_to_wait*', 'finish_wait', 'msleep', 'usleep_range*',
  'rt_mutex_*', '__rt_mutex_*',
];

/** Memory helpers a sanitizer catches in: the caller is the one to blame. */
const MEM_SKIP: readonly string[] = [
  'mem*', '__mem*', 'str*', '__str*', 'copy_*user*', '_copy_*', '__copy_*', 'copyin', 'copyout',
  'copy_page*', 'instrument_*', '__asan_*', 'check_memory_region*', 'kfree*', 'kvfree*', '__kmem_cache_free',
  'kmem_cache_free*', 'slab_free*', '__slab_free', 'mempool_free*', 'bio_put', 'bio_free',
];

/** Allocation and free paths: skipped when naming where an object came from or went. */
const ALLOC_SKIP: readonly string[] = [
  'kmem_cache_alloc*', 'kmalloc*', '__kmalloc*', 'kmalloc_trace*', 'kzalloc*', 'kcalloc*', 'kvmalloc*',
  '__kvmalloc*', 'kvzalloc*', 'krealloc*', 'slab_*', '__slab*', '___slab*', 'mempool_alloc*', 'mempool_free*',
  'kmem_cache_free*', 'kfree*', 'kvfree*', '__kmem_cache_*', 'kmem_cache_alloc_*', 'call_rcu*', 'kfree_rcu*',
  'alloc_pages*', '__alloc_pages*', 'get_page_from_freelist', 'free_pages*', '__free_pages*',
];

/** Lines of a dump_stack() preamble, allowed inside `message`-shape reports. */
export const DUMP_PREAMBLE: readonly RegExp[] = [
  /^CPU: \d+ (?:UID: \d+ )?PID: \d+ Comm: /,
  /^Hardware name: /,
  /^Workqueue: /,
  /^\s+(?:Not tainted|Tainted: )/,
];

/** Lines that may follow a finished trace and still belong to the report. */
export const GENERIC_TAIL: readonly RegExp[] = [
  /^Modules linked in:/,
  /^\s*\[last unloaded: /,
  /^---\[ end trace/,
  /^---\[ end Kernel panic/,
  /^Kernel Offset: /,
  /^Rebooting in \d+ seconds/,
  /^note: .* exited with /,
  /^Disabling lock debugging due to kernel taint/,
  /^Fixing recursive fault but reboot is needed!/,
  /^irq event stamp: /,
  /^\s*(?:hard|soft)irqs last\s+(?:en|dis)abled at /,
  /^Dumping ftrace buffer:/,
  /^\s+\(ftrace buffer empty\)/,
];

/** KASAN and KFENCE report sections that carry their own stacks. */
const KASAN_SECTIONS = /^(?:Allocated by task|Freed by task|Last potentially related work creation|Second to last potentially related|The buggy address|allocated by task|freed by task|kfence-#)/;

/** Lockdep lines naming where a lock is taken: `ffff... (&lo->lo_mutex){+.+.}-{3:3}, at: f+0x1/0x2 [m]`. */
const LOCK_AT = /, at: (?:\[<[0-9a-f]+>\] )?(?<func>[A-Za-z_][\w.]*)\+0x/;

/** What an old UBSAN report's second line says, as the check names newer kernels print in the header. */
const UBSAN_CHECKS: readonly ClassifyRule[] = [
  { re: /^(?:shift exponent -?\d+ is (?:too large|negative)|left shift of .* cannot be represented)/, vars: { check: 'shift-out-of-bounds' } },
  { re: /^index -?\d+ is out of range for type /, vars: { check: 'array-index-out-of-bounds' } },
  { re: /^(?:signed integer overflow:|negation of -?\d+ cannot be represented)/, vars: { check: 'signed-integer-overflow' } },
  { re: /^division (?:by zero|of -?\d+ by -1 cannot be represented)/, vars: { check: 'division-overflow' } },
  { re: /^load of value -?\d+ is not a valid value for type /, vars: { check: 'invalid-load' } },
  { re: /^(?:member access within|load of|store to) null pointer/, vars: { check: 'null-ptr-deref' } },
  { re: /^(?:member access within|load of|store to) misaligned address/, vars: { check: 'misaligned-access' } },
  { re: /^(?:member access within|load of|store to) address .* with insufficient space/, vars: { check: 'object-size-mismatch' } },
  { re: /^execution reached an unreachable program point/, vars: { check: 'unreachable' } },
  { re: /^variable length array bound evaluates to non-positive value/, vars: { check: 'vla-bound-not-positive' } },
  { re: /^(?:pointer index expression with base|applying (?:non-)?zero offset)/, vars: { check: 'pointer-overflow' } },
  { re: /./, vars: { check: 'undefined behaviour' } },
];

/** Lockdep's own machinery: never the guilty function of a lockdep report. */
const LOCKDEP_SKIP: readonly string[] = ['register_lock_class', 'look_up_lock_class', 'assign_lock_key', 'lockdep_init_map*', 'debug_locks_off', '__debug_check_no_obj_freed'];

/** Lockdep reports: many blank lines, then the stack backtrace. */
const LOCKDEP = { kind: 'lockdep', shape: 'trace', crash: false, maxBlank: 2, absorbs: ['panic'], skip: LOCKDEP_SKIP } as const;

export const FORMATS: readonly ReportFormat[] = [
  // ---- sanitizers -------------------------------------------------------
  {
    id: 'kasan',
    kind: 'KASAN',
    header: /^BUG: KASAN: (?<bugtype>[a-z][\w-]*(?: or [a-z][\w-]*)?) (?:in|on) (?<func>[A-Za-z_][\w.]*)/,
    title: 'KASAN: {bugtype}[ {access}][ in {func}]',
    guilty: [{ from: 'header' }, { from: 'stack', until: KASAN_SECTIONS }],
    captures: [/^(?<access>Read|Write) of size \d+/],
    alts: [
      { title: 'KASAN: {bugtype} allocated in {func}', guilty: [{ from: 'stack', after: /^Allocated by task \d+/ }] },
      { title: 'KASAN: {bugtype} freed in {func}', guilty: [{ from: 'stack', after: /^Freed by task \d+/ }] },
    ],
    skip: [...MEM_SKIP, ...ALLOC_SKIP],
    crash: false,
    shape: 'trace',
    end: /^={20,}$/,
    maxBlank: 1,
    absorbs: ['panic'],
  },
  {
    id: 'kfence',
    kind: 'KASAN',
    header: /^BUG: KFENCE: (?<bugtype>[a-z][\w -]*?) in (?<func>[A-Za-z_][\w.]*)/,
    title: 'KFENCE: {bugtype} in {func}',
    guilty: [{ from: 'header' }, { from: 'stack', after: /^(?:Use-after-free|Out-of-bounds|Invalid|Corrupted memory)/, until: KASAN_SECTIONS }],
    alts: [
      { title: 'KFENCE: {bugtype} allocated in {func}', guilty: [{ from: 'stack', after: /^allocated by task \d+/ }] },
      { title: 'KFENCE: {bugtype} freed in {func}', guilty: [{ from: 'stack', after: /^freed by task \d+/ }] },
    ],
    skip: [...MEM_SKIP, ...ALLOC_SKIP],
    crash: false,
    shape: 'trace',
    end: /^={20,}$/,
    maxBlank: 1,
    absorbs: ['panic'],
  },
  {
    id: 'ubsan',
    kind: 'UBSAN',
    header: /^UBSAN: (?<check>[a-z][\w-]*) in (?<file>\S+)/,
    title: 'UBSAN: {check}[ in {func}]',
    guilty: [{ from: 'stack' }],
    crash: false,
    shape: 'trace',
    end: /^={20,}$/,
    absorbs: ['panic'],
  },

  {
    // Kernels before 5.10 name no check in the header; the next line says what happened.
    id: 'ubsan-old',
    kind: 'UBSAN',
    header: /^UBSAN: Undefined behaviou?r in (?<file>\S+)/,
    title: 'UBSAN: {check}[ in {func}]',
    guilty: [{ from: 'stack' }],
    classify: UBSAN_CHECKS,
    crash: false,
    shape: 'trace',
    end: /^={20,}$/,
    absorbs: ['panic'],
  },

  // ---- lockdep ----------------------------------------------------------
  {
    ...LOCKDEP,
    id: 'lockdep-circular',
    header: /^(?:WARNING: |\[ INFO: )possible circular locking dependency detected/,
    title: 'possible deadlock[ in {func}]',
    guilty: [{ from: 'line', after: /is trying to acquire lock:$/, re: LOCK_AT }, { from: 'stack' }],
    alts: [{ title: 'possible deadlock in {func}', guilty: [{ from: 'line', after: /^but task is already holding lock:$/, re: LOCK_AT }] }],
  },
  {
    ...LOCKDEP,
    id: 'lockdep-recursive',
    header: /^(?:WARNING: |\[ INFO: )possible recursive locking detected/,
    title: 'possible deadlock[ in {func}]',
    guilty: [{ from: 'line', after: /is trying to acquire lock:$/, re: LOCK_AT }, { from: 'stack' }],
    alts: [{ title: 'possible deadlock in {func}', guilty: [{ from: 'line', after: /^but task is already holding lock:$/, re: LOCK_AT }] }],
  },
  {
    ...LOCKDEP,
    id: 'lockdep-inconsistent',
    header: /^(?:WARNING: |\[ INFO: )inconsistent lock state/,
    title: 'inconsistent lock state[ in {func}]',
    guilty: [{ from: 'line', after: / takes:$/, re: LOCK_AT }, { from: 'stack' }],
    alts: [{ title: 'inconsistent lock state in {func}', guilty: [{ from: 'stack', after: /state was registered at:$/ }] }],
  },
  {
    ...LOCKDEP,
    id: 'lockdep-rcu',
    header: /^(?:WARNING: |\[ (?:INFO|ERR): )suspicious RCU usage/,
    title: 'suspicious RCU usage[ in {func}]',
    guilty: [{ from: 'stack' }],
    skip: [...LOCKDEP_SKIP, 'rcu_read_lock_*held*', 'debug_lockdep_rcu_enabled', 'lockdep_rcu_suspicious'],
  },
  {
    ...LOCKDEP,
    id: 'lockdep-unlock-balance',
    header: /^(?:WARNING: |\[ BUG: )bad unlock balance detected!/,
    title: 'bad unlock balance[ in {func}]',
    guilty: [{ from: 'line', after: /is trying to release lock/, re: /(?:\] |^\s*)(?<func>[A-Za-z_][\w.]*)\+0x/ }, { from: 'stack' }],
  },
  {
    ...LOCKDEP,
    id: 'lockdep-held-freed',
    header: /^(?:WARNING: |\[ BUG: )held lock freed!/,
    title: 'held lock freed[ in {func}]',
    guilty: [{ from: 'stack' }],
    skip: [...LOCKDEP_SKIP, 'debug_check_no_locks_freed', ...MEM_SKIP],
  },
  {
    ...LOCKDEP,
    id: 'lockdep-return-to-user',
    header: /^(?:WARNING: |\[ BUG: )lock held when returning to user space!/,
    title: 'lock held when returning to user space[ in {func}]',
    guilty: [{ from: 'line', re: LOCK_AT }],
    // No stack trace follows this one: it is the lock list and nothing else.
    shape: 'message',
    maxBlank: 0,
    body: [/^-{10,}$/, /^\S+ #\d+ (?:Not tainted|Tainted)/, /is leaving the kernel with locks still held!$/, /^\d+ locks? held by /, /^\s*#\d+: /],
  },

  {
    ...LOCKDEP,
    id: 'lockdep-irq-inversion',
    header: /^(?:WARNING: |\[ INFO: )possible irq lock inversion dependency detected/,
    title: 'possible deadlock[ in {func}]',
    guilty: [{ from: 'line', after: /just changed the state of lock:$/, re: LOCK_AT }, { from: 'stack' }],
  },
  {
    ...LOCKDEP,
    id: 'lockdep-irq-lock-order',
    header: /^(?:WARNING: |\[ INFO: )(?:HARD|SOFT)IRQ(?:-READ)?-safe -> (?:HARD|SOFT)IRQ(?:-READ)?-unsafe lock order detected/,
    title: 'possible deadlock[ in {func}]',
    guilty: [{ from: 'line', after: /is trying to acquire:$/, re: LOCK_AT }, { from: 'stack' }],
    alts: [{ title: 'possible deadlock in {func}', guilty: [{ from: 'line', after: /is already holding:$/, re: LOCK_AT }] }],
  },
  {
    ...LOCKDEP,
    id: 'lockdep-nested-not-taken',
    header: /^(?:WARNING: |\[ BUG: )[Nn]ested lock was not taken/,
    title: 'nested lock was not taken[ in {func}]',
    guilty: [{ from: 'line', after: /is trying to lock:$/, re: LOCK_AT }, { from: 'stack' }],
  },
  {
    ...LOCKDEP,
    id: 'lockdep-bad-contention',
    header: /^(?:WARNING: |\[ BUG: )bad contention detected!/,
    title: 'bad contention[ in {func}]',
    guilty: [{ from: 'line', after: /is trying to contend lock/, re: /(?:\] |^\s*)(?<func>[A-Za-z_][\w.]*)\+0x/ }, { from: 'stack' }],
  },
  {
    ...LOCKDEP,
    id: 'lockdep-non-static-key',
    header: /^INFO: trying to register non-static key\./,
    title: 'INFO: trying to register non-static key[ in {func}]',
    guilty: [{ from: 'stack' }],
  },
  {
    ...LOCKDEP,
    id: 'lockdep-bad-key',
    header: /^BUG: (?:(?<what>looking up invalid subclass): \d+|key (?:[0-9a-f]+ )?(?<key>has not been registered|not in \.data))/,
    title: 'BUG:[ {what}][ lockdep key {key}][ in {func}]',
    guilty: [{ from: 'stack' }],
  },
  {
    // Lockdep ran out of room and turned itself off: no bug in the code that hit it, one title per limit.
    ...LOCKDEP,
    id: 'lockdep-capacity',
    header: /^BUG: (?<limit>MAX_[A-Z_]+) too low!/,
    title: 'BUG: {limit} too low',
  },

  // ---- hangs and stalls ---------------------------------------------------
  {
    id: 'soft-lockup',
    kind: 'soft-lockup',
    header: /^(?:watchdog: )?BUG: soft lockup - CPU#\d+ stuck for \d+s!/,
    title: 'BUG: soft lockup[ in {func}]',
    guilty: [{ from: 'rip' }, { from: 'stack' }],
    crash: false,
    shape: 'trace',
    absorbs: ['panic'],
  },
  {
    id: 'hard-lockup',
    kind: 'soft-lockup',
    header: /^(?:watchdog: |NMI watchdog: )?Watchdog detected hard LOCKUP on cpu \d+/,
    title: 'BUG: hard lockup[ in {func}]',
    guilty: [{ from: 'rip' }, { from: 'stack' }],
    crash: false,
    shape: 'trace',
    absorbs: ['panic'],
  },
  {
    id: 'hung-task',
    kind: 'hung-task',
    header: /^INFO: task (?<task>.+):\d+ blocked for more than \d+ seconds\./,
    title: 'INFO: task hung[ in {func}]',
    guilty: [{ from: 'stack' }],
    skip: WAIT_SKIP,
    crash: false,
    shape: 'trace',
    tail: [/^Showing all locks held in the system:/, /^\d+ locks? held by /, /^\s*#\d+: /, /^={20,}$/, /^INFO: lockdep is turned off\./],
    absorbs: ['panic'],
  },
  {
    id: 'rcu-stall',
    kind: 'rcu-stall',
    header: /^(?:rcu: )?INFO: rcu_(?:preempt|sched|bh|tasks\w*) (?:self-)?detected (?:expedited )?stalls?\b/,
    title: 'INFO: rcu detected stall[ in {func}]',
    guilty: [{ from: 'rip' }, { from: 'stack' }],
    skip: WAIT_SKIP,
    crash: false,
    shape: 'trace',
    maxBlank: 0,
    absorbs: ['panic'],
  },

  // ---- faults and oopses --------------------------------------------------
  {
    id: 'refcount',
    kind: 'WARNING',
    header: /^refcount_t: (?<what>[a-z][\w ;-]*?)[.;]?$/,
    title: 'refcount bug[ in {func}]',
    guilty: [{ from: 'rip' }, { from: 'stack' }],
    skip: ['refcount_*', '__refcount_*'],
    crash: false,
    shape: 'trace',
    absorbs: ['WARNING', 'panic'],
  },
  {
    id: 'bug-null-deref',
    kind: 'BUG',
    header: /^(?:BUG: (?:unable to handle )?kernel NULL pointer dereference(?:, address:| at) |Unable to handle kernel NULL pointer dereference at virtual address )/,
    title: 'BUG: kernel NULL pointer dereference[ in {func}]',
    guilty: [{ from: 'rip' }, { from: 'stack' }],
    crash: true,
    shape: 'trace',
    absorbs: ['Oops', 'panic'],
  },
  {
    id: 'bug-page-fault',
    kind: 'BUG',
    header: /^(?:BUG: unable to handle (?:page fault for address|kernel paging request at)\b|Unable to handle kernel (?:paging request|access to user memory) at virtual address )/,
    title: 'BUG: unable to handle page fault[ in {func}]',
    guilty: [{ from: 'rip' }, { from: 'stack' }],
    crash: true,
    shape: 'trace',
    absorbs: ['Oops', 'panic'],
  },
  {
    id: 'kernel-bug',
    kind: 'BUG',
    header: /^kernel BUG at (?<file>\S+?):\d+!/,
    title: 'kernel BUG[ in {func}]',
    guilty: [{ from: 'rip' }, { from: 'stack' }],
    crash: true,
    shape: 'trace',
    absorbs: ['Oops', 'panic'],
  },
  {
    id: 'gpf',
    kind: 'GPF',
    header: /^(?:Oops: )?general protection fault\b/,
    title: 'general protection fault[ in {func}]',
    guilty: [{ from: 'rip' }, { from: 'stack' }],
    crash: true,
    shape: 'trace',
    absorbs: ['panic'],
  },
  {
    id: 'oops',
    kind: 'Oops',
    header: /^(?:Oops: |Internal error: Oops|(?:invalid opcode|stack segment): [0-9a-f]{4} \[#\d+\])/,
    title: 'Oops[ in {func}]',
    guilty: [{ from: 'rip' }, { from: 'stack' }],
    crash: true,
    shape: 'trace',
    absorbs: ['panic'],
  },
  {
    id: 'bug-sleep-in-atomic',
    kind: 'BUG',
    header: /^BUG: (?<what>sleeping function called from invalid context|scheduling while atomic|workqueue leaked lock or atomic|using smp_processor_id\(\) in preemptible)/,
    title: 'BUG: {what}[ in {func}]',
    guilty: [{ from: 'stack' }],
    skip: ['debug_smp_processor_id', 'check_preemption_disabled', '__schedule_bug', 'schedule_debug*', 'schedule*', '__schedule'],
    crash: false,
    shape: 'trace',
    absorbs: ['panic'],
  },
  {
    id: 'warning',
    kind: 'WARNING',
    header: /^WARNING: (?:CPU: \d+ PID: \d+ at |at )(?:(?<file>\S+):\d+ )?(?:(?<func>[A-Za-z_][\w.]*)\+0x)?/,
    title: 'WARNING[ in {func}]',
    guilty: [{ from: 'header' }, { from: 'rip' }, { from: 'stack' }],
    crash: false,
    shape: 'trace',
    absorbs: ['panic'],
  },
  {
    id: 'bug',
    kind: 'BUG',
    header: /^BUG: (?<what>[A-Za-z](?:(?! in | for | - | at | on )[^:,!(])*)/,
    title: 'BUG: {what}[ in {func}]',
    guilty: [{ from: 'rip' }, { from: 'stack' }],
    skip: ['spin_bug', 'spin_dump', 'rwlock_bug', 'debug_spin_*', 'bad_page', 'free_page_is_bad*', 'check_*_page*'],
    crash: false,
    shape: 'trace',
    absorbs: ['Oops', 'panic'],
  },
  {
    id: 'panic',
    kind: 'panic',
    header: /^Kernel panic - not syncing: ?(?<msg>.*)$/,
    title: 'kernel panic: {msg}',
    guilty: [{ from: 'stack' }],
    crash: true,
    shape: 'trace',
  },

  // ---- messages -----------------------------------------------------------
  {
    id: 'not-cleared',
    kind: 'not-cleared',
    header: /^(?:(?<subsys>[A-Za-z][\w-]*)(?: [a-z]+)? \((?:device )?[^)]*\): )?.*?\b(?<what>[A-Za-z_][\w.>-]*) ?(?:\(-?\d+\) )?not cleared\b/,
    title: '[{subsys}: ]{what} not cleared',
    crash: false,
    shape: 'message',
    body: [],
    burst: true,
  },
  {
    id: 'dm-integrity',
    kind: 'integrity',
    header: /^device-mapper: integrity: (?:(?<dev>[\w:-]+): )?(?<msg>[A-Z][^,:]*? (?:failed|mismatch))\b/,
    title: 'dm-integrity: {msg}[ on {dev}]',
    crash: false,
    shape: 'message',
    body: [/callbacks suppressed$/],
    burst: true,
  },
  {
    id: 'dm-crypt-aead',
    kind: 'integrity',
    header: /^device-mapper: crypt: (?:(?<dev>[\w:-]+): )?INTEGRITY AEAD ERROR\b/,
    title: 'dm-crypt: INTEGRITY AEAD ERROR[ on {dev}]',
    crash: false,
    shape: 'message',
    body: [/callbacks suppressed$/],
    burst: true,
  },
  {
    id: 'dm-verity',
    kind: 'integrity',
    header: /^device-mapper: verity: (?:(?<dev>[\w:-]+): )?(?<what>data|metadata) block \d+ is corrupted/,
    title: 'dm-verity: {what} block corrupted[ on {dev}]',
    crash: false,
    shape: 'message',
    body: [/callbacks suppressed$/],
    burst: true,
  },
  {
    id: 'dm-integrity-error',
    kind: 'integrity',
    header: /^device-mapper: integrity: (?:(?<dev>[\w:-]+): )?Error on (?<what>[a-z][a-z ]*?): -?\d+/,
    title: 'dm-integrity: error on {what}',
    crash: false,
    shape: 'message',
    body: [/callbacks suppressed$/],
    burst: true,
  },
  {
    id: 't10-pi-tag',
    kind: 'integrity',
    header: /^(?<dev>[\w-]+): (?<tag>guard|ref|app) tag error at (?:sector|location) \d+/,
    title: 'T10-PI: {tag} tag error on {dev}',
    crash: false,
    shape: 'message',
    body: [/callbacks suppressed$/],
    burst: true,
  },
  {
    id: 'blk-protection-error',
    kind: 'integrity',
    header: /^(?:blk_update_request: |print_req_error: )?protection error, dev (?<dev>[\w:-]+), sector \d+/,
    title: 'protection error on {dev}',
    crash: false,
    shape: 'message',
    body: [/callbacks suppressed$/],
    burst: true,
  },
  {
    id: 'blk-io-error',
    kind: 'io-error',
    header: /^(?:blk_update_request: |print_req_error: )?(?:I\/O|critical medium|critical target|critical nexus|critical space allocation|recoverable transport|timeout|operation not supported) error, dev (?<dev>[\w:-]+), sector \d+/,
    title: 'I/O error on {dev}',
    crash: false,
    shape: 'message',
    body: [
      /callbacks suppressed$/,
      /^EXT4-fs warning \(device [^)]+\): ext4_end_bio:/,
      /^(?:sd|sr) \S+: \[\w+\] /,
      /^lost page write due to I\/O error on /,
    ],
    burst: true,
  },
  {
    id: 'buffer-io-error',
    kind: 'io-error',
    header: /^Buffer I\/O error on (?:dev(?:ice)? )?(?<dev>[\w:-]+), /,
    title: 'I/O error on {dev}',
    crash: false,
    shape: 'message',
    body: [/callbacks suppressed$/, /^EXT4-fs warning \(device [^)]+\): ext4_end_bio:/, /^lost page write due to I\/O error on /],
    burst: true,
  },

  // ---- filesystems ----------------------------------------------------------
  {
    id: 'ext4-error',
    kind: 'fs-error',
    header: /^EXT4-fs error \(device (?<dev>[^)]+)\)(?::| in) (?<func>[A-Za-z_]\w*)(?::\d+)?:/,
    title: 'EXT4-fs error in {func}',
    guilty: [{ from: 'header' }],
    skip: [],
    crash: false,
    shape: 'message',
    body: [/^EXT4-fs \([^)]+\): (?!Delayed block allocation failed)/, /^Aborting journal on device /, /^JBD2: /, /callbacks suppressed$/],
    burst: true,
  },
  {
    id: 'ext4-delalloc-failed',
    kind: 'fs-error',
    header: /^EXT4-fs \((?<dev>[^)]+)\): Delayed block allocation failed for inode/,
    title: 'EXT4-fs: delayed block allocation failed',
    crash: false,
    shape: 'message',
    body: [/^EXT4-fs \([^)]+\): (?:This should not happen|Total free blocks count|Free\/Dirty block details|free_blocks=|dirty_blocks=|Block reservation details|i_reserved_data_blocks=)/],
    burst: true,
  },
  {
    id: 'xfs-corruption',
    kind: 'fs-error',
    header: /^XFS \((?<dev>[^)]+)\): Metadata (?<what>corruption|CRC error) detected at (?<func>[A-Za-z_][\w.]*)\+0x/,
    title: 'XFS: metadata {what} in {func}',
    guilty: [{ from: 'header' }],
    crash: false,
    shape: 'message',
    body: [/^XFS \([^)]+\): (?:Unmount and run xfs_repair|First \d+ bytes of corrupted metadata buffer:|Filesystem has been shut down|Please unmount)/, /^[0-9a-f]{8}: (?:[0-9a-f]{2} ){4}/],
    burst: true,
  },
  {
    id: 'xfs-internal-error',
    kind: 'fs-error',
    header: /^XFS \((?<dev>[^)]+)\): Internal error (?<what>.+?) at line \d+ of file \S+\.\s+Caller (?<func>[A-Za-z_][\w.]*)\+0x/,
    title: 'XFS: internal error in {func}',
    guilty: [{ from: 'header' }],
    crash: false,
    shape: 'message',
    body: [/^XFS \([^)]+\): (?:Unmount and run xfs_repair|First \d+ bytes of corrupted metadata buffer:|Corruption detected)/, /^[0-9a-f]{8}: (?:[0-9a-f]{2} ){4}/],
  },
  {
    id: 'xfs-shutdown',
    kind: 'fs-error',
    header: /^XFS \((?<dev>[^)]+)\): (?!Forced by userspace)[A-Z][\w /-]*? \(0x[0-9a-f]+\) detected at (?<func>[A-Za-z_][\w.]*)\+0x.*Shutting down filesystem/,
    title: 'XFS: forced shutdown in {func}',
    guilty: [{ from: 'header' }],
    crash: false,
    shape: 'message',
    body: [/^XFS \([^)]+\): (?:Please unmount the filesystem|Filesystem has been shut down)/],
  },
  {
    id: 'xfs-shutdown-old',
    kind: 'fs-error',
    header: /^XFS \((?<dev>[^)]+)\): xfs_do_force_shutdown\(0x[0-9a-f]+\) called from line \d+ of file \S+\.\s+Return address = (?:(?<func>[A-Za-z_][\w.]*)|0x)/,
    title: 'XFS: forced shutdown[ in {func}]',
    guilty: [{ from: 'header' }],
    crash: false,
    shape: 'message',
    body: [/^XFS \([^)]+\): (?:Please umount the filesystem|Please unmount the filesystem|I\/O Error Detected|Corruption of in-memory data|Log I\/O Error Detected|Filesystem has been shut down)/],
  },
  {
    id: 'xfs-metadata-io-error',
    kind: 'fs-error',
    header: /^XFS \((?<dev>[^)]+)\): metadata I\/O error in "(?<func>[A-Za-z_][\w.]*)\+0x/,
    title: 'XFS: metadata I/O error in {func}',
    guilty: [{ from: 'header' }],
    crash: false,
    shape: 'message',
    body: [/callbacks suppressed$/],
    burst: true,
  },
  {
    id: 'xfs-log-io-error',
    kind: 'fs-error',
    header: /^XFS \((?<dev>[^)]+)\): log I\/O error -?\d+/,
    title: 'XFS: log I/O error',
    crash: false,
    shape: 'message',
    body: [/callbacks suppressed$/],
    burst: true,
  },
  {
    id: 'btrfs-csum-failed',
    kind: 'fs-error',
    header: /^BTRFS (?:warning|error|info) \(device (?<dev>[^):]+)[^)]*\): csum failed root /,
    title: 'BTRFS: csum failed',
    crash: false,
    shape: 'message',
    body: [/^BTRFS \w+ \(device [^)]+\): bdev \S+ errs: /, /callbacks suppressed$/],
    burst: true,
  },
  {
    id: 'btrfs-checksum-verify',
    kind: 'fs-error',
    header: /^BTRFS (?:warning|error) \(device (?<dev>[^):]+)[^)]*\): checksum verify failed on /,
    title: 'BTRFS: checksum verify failed',
    crash: false,
    shape: 'message',
    body: [/^BTRFS \w+ \(device [^)]+\): (?:bdev \S+ errs: |read error corrected)/, /callbacks suppressed$/],
    burst: true,
  },
  {
    id: 'btrfs-corrupt-tree',
    kind: 'fs-error',
    header: /^BTRFS critical \(device (?<dev>[^):]+)[^)]*\): corrupt (?<what>leaf|node)\b/,
    title: 'BTRFS: corrupt {what}',
    crash: false,
    shape: 'message',
    body: [/^\s+item \d+ /, /^\s+(?:inode|extent|dir|key|refs|root|dev|block group|chunk) /, /^BTRFS info \(device [^)]+\): leaf \d+ /],
    burst: true,
  },
  {
    id: 'btrfs-tree-block-corruption',
    kind: 'fs-error',
    header: /^BTRFS error \(device (?<dev>[^):]+)[^)]*\): block=\d+ (?<when>read|write) time tree block corruption detected/,
    title: 'BTRFS: {when} time tree block corruption',
    crash: false,
    shape: 'message',
    body: [],
    burst: true,
  },
  {
    id: 'btrfs-abort',
    kind: 'fs-error',
    header: /^BTRFS(?: error)?:? (?:error )?\(device (?<dev>[^):]+)[^)]*\) in (?<func>[A-Za-z_]\w*):\d+: errno=/,
    title: 'BTRFS: error in {func}',
    guilty: [{ from: 'header' }],
    crash: false,
    shape: 'message',
    body: [/^BTRFS info \(device [^)]+\): forced readonly/, /^BTRFS: Transaction aborted/],
  },
  {
    id: 'btrfs-error',
    kind: 'fs-error',
    header: /^BTRFS (?<level>error|critical) \(device (?<dev>[^):]+)[^)]*\): (?!bdev \S+ errs:)(?<msg>[A-Za-z][^,:(=]*?)\s*(?:[,:(=]|$)/,
    title: 'BTRFS {level}: {msg}',
    crash: false,
    shape: 'message',
    body: [/^BTRFS \w+ \(device [^)]+\): bdev \S+ errs: /],
    burst: true,
  },
];
