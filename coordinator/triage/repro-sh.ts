/**
 * repro.sh: sets the case's stack up with standard tools (the layer modules'
 * own set-up argv, compiled by worker/plan/compile.ts for a host with loop
 * devices), builds and runs repro.c on it, runs the post-run checks (unmount,
 * fsck -n), shows what the kernel logged meanwhile, and tears everything
 * down on every exit path (an EXIT trap; INT/TERM/HUP exit through it).
 *
 * Everything it runs comes from argv arrays; each element becomes one shell
 * word: literal text single-quoted, ${name} references (what an earlier step
 * captured, the work directory, the device-name prefix) as "${VAR}". No text
 * from a case is ever evaluated by the shell. Steps that the executor runs
 * with its own helpers (blockfarm-exec --calc/--field/--if-exists/
 * --scsi-debug-dev) become small shell functions, so nothing of blockfarm is
 * needed.
 *
 * Exit: repro.c's code (0 as allowed, 1 divergence); 1 also when a check
 * found damage or the kernel logged a report; 2 not root; 3 a tool is
 * missing, repro.c does not build, or a set-up step failed.
 */
import { type Case, type StackInfo, layerModule } from '../../model/index.ts';
import { caseInjectsFaults } from '../../worker/judge/kernel-findings.ts';
import type { SetupStep } from '../../worker/executor/protocol.ts';
import { caseExpectations } from './expectations.ts';
import { ReproUnsupported, reproEnv, reproObjects, reproPlan, reproVars } from './repro-c.ts';

/** One shell word for a string: single quotes, ' as '\''. */
export function shQuote(s: string): string {
  if (s === '') return "''";
  if (/^[A-Za-z0-9_./=:,+@%-]+$/.test(s)) return s;
  return `'${s.replace(/'/g, `'\\''`)}'`;
}

class Vars {
  private readonly names = new Map<string, string>([['WORK', 'WORK'], ['PFX', 'PFX']]);
  private readonly used = new Set<string>(['WORK', 'PFX']);

  /** The shell variable that holds template variable `name`. */
  shellName(name: string): string {
    let v = this.names.get(name);
    if (v) return v;
    const base = `BF_${name.replace(/[^A-Za-z0-9_]/g, '_')}`;
    v = base;
    for (let k = 2; this.used.has(v); k++) v = `${base}_${k}`;
    this.names.set(name, v);
    this.used.add(v);
    return v;
  }

  /** A template ("...${name}...") as one shell word. */
  word(template: string): string {
    const parts: string[] = [];
    let last = 0;
    for (const m of template.matchAll(/\$\{([A-Za-z0-9_-]+)\}/g)) {
      if (m.index! > last) parts.push(shQuote(template.slice(last, m.index)));
      parts.push(`"\${${this.shellName(m[1]!)}}"`);
      last = m.index! + m[0].length;
    }
    if (last < template.length || parts.length === 0) parts.push(shQuote(template.slice(last)));
    return parts.join('');
  }
}

const HELPERS: Record<string, string> = { '--calc': 'bf_calc', '--field': 'bf_field', '--if-exists': 'bf_if_exists', '--scsi-debug-dev': 'bf_scsi_debug_dev' };

function command(argv: readonly string[], vars: Vars): string {
  const words = argv.map((a) => vars.word(a));
  if (argv[0] === 'blockfarm-exec') {
    const fn = HELPERS[argv[1] ?? ''];
    if (!fn) throw new ReproUnsupported(`no shell equivalent for blockfarm-exec ${argv[1] ?? ''}`);
    return [fn, ...words.slice(2)].join(' ');
  }
  return words.join(' ');
}

function stepLines(s: SetupStep, k: number, vars: Vars): string[] {
  let cmd = command(s.argv, vars);
  if (s.stdin !== undefined) cmd = `printf '%s' ${vars.word(s.stdin)} | ${cmd}`;
  const out = [`# step ${k}: ${s.name.replace(/[\r\n]/g, ' ')}`];
  if (s.undo) {
    const undo = command(s.undo, vars);
    // An unmount a check already did is not an error.
    const guarded = s.undo[0] === 'umount' && s.undo.length === 2 ? `if mountpoint -q ${vars.word(s.undo[1]!)}; then ${undo}; fi` : undo;
    out.push(`undo_${k}() { ${guarded}; }`);
  }
  const name = shQuote(s.name);
  if (s.capture) {
    const v = vars.shellName(s.capture);
    out.push(`say ${name}`, `if ! OUT=$(${cmd}); then fail ${name}; fi`, `${v}=\${OUT%%$'\\n'*}`);
  } else out.push(`say ${name}`, `if ! ${cmd}; then fail ${name}; fi`);
  if (s.undo) out.push(`UNDO+=(undo_${k})`);
  return out;
}

/** Kernel log lines that are reports of kernel bugs (and, unless the case injects faults, IO errors). */
function klogPattern(injectsFaults: boolean): string {
  const bugs = ['WARNING:', 'BUG:', 'Oops', 'KASAN', 'UBSAN', 'general protection fault', 'possible (circular|recursive) locking', 'inconsistent lock state', 'not cleared', 'INFO: task .* blocked', 'soft lockup', 'rcu.*stall', 'Kernel panic'];
  const io = ['I/O error', 'critical medium error', 'EXT4-fs error', 'XFS .*(error|corrupt|shut)', 'BTRFS (error|critical)', 'integrity', 'AEAD ERROR'];
  return (injectsFaults ? bugs : [...bugs, ...io]).join('|');
}

export interface ReproShOptions {
  header: string[];
}

/** The repro.sh for a validated case (loop devices over sparse files stand in for disks). Throws ReproUnsupported. */
export function generateReproSh(c: Case, info: StackInfo, opts: ReproShOptions): string {
  const env = reproEnv(c, info);
  const plan = reproPlan(c, info);
  const vars = new Vars();
  const tools = new Set<string>(['gcc', 'losetup', 'mount', 'umount', 'mountpoint', 'truncate', 'dmesg']);
  for (const l of info.layers) for (const t of layerModule(l).needs(l).tools) tools.add(t);
  for (const s of plan.setup) if (s.argv[0] && s.argv[0] !== 'blockfarm-exec' && !s.argv[0].includes('$')) tools.add(s.argv[0]);
  const steps = plan.setup.flatMap((s, k) => [...stepLines(s, k + 1, vars), '']);
  const args = reproArgs(c, info, env);
  const checks = plan.checks.flatMap((ch) => {
    const cmd = command(ch.argv, vars);
    return [`say ${shQuote(`check: ${ch.name}`)}`, `if ! ${cmd}; then echo "repro.sh: check '${ch.name.replace(/'/g, '')}' failed" >&2; CHECKS_FAILED=1; fi`];
  });
  const header = [
    ...opts.header,
    '',
    'WARNING: this script builds a stack of loop devices (and dm/md devices if the case has them),',
    'mounts filesystems, and drives the kernel into a state where it misbehaved. It may corrupt',
    'data, hang, or crash the machine it runs on. Run it as root in a VM or on a scratch machine.',
    '',
    'Usage: sudo ./repro.sh          (repro.c must be next to this script)',
    'Needs: gcc and liburing-dev, and ' + [...tools].filter((t) => t !== 'gcc').sort().join(', ') + '.',
    'Exit:  0 the kernel did what the model allows, 1 it did not (or a check or the kernel log',
    '       says so), 2 not root, 3 a tool is missing, repro.c does not build or a set-up step failed.',
    'Set REPRO_TMP to put the work directory elsewhere than /var/tmp.',
  ].map((l) => (l ? `# ${l.replace(/[\r\n]/g, ' ')}` : '#'));
  return [
    '#!/bin/bash',
    ...header,
    'set -u -o pipefail',
    '',
    'HERE=$(cd "$(dirname "$0")" && pwd)',
    'say() { printf "repro.sh: %s\\n" "$*" >&2; }',
    'fail() { say "set-up step failed: $*"; exit 3; }',
    '[ "$(id -u)" = 0 ] || { say "needs root (loop devices, mkfs, mount)"; exit 2; }',
    `for t in ${[...tools].sort().map(shQuote).join(' ')}; do`,
    '  command -v "$t" >/dev/null 2>&1 || { say "$t is not installed"; exit 3; }',
    'done',
    '[ -f "$HERE/repro.c" ] || { say "repro.c is not next to repro.sh"; exit 3; }',
    '',
    '# The blockfarm executor\'s set-up helpers, in shell.',
    'bf_calc() { local acc=$1; shift; while [ $# -ge 2 ]; do case $1 in',
    "  +) acc=$((acc + $2));; -) acc=$((acc - $2));; '*') acc=$((acc * $2));; /) acc=$((acc / $2));; %) acc=$((acc % $2));;",
    '  min) [ "$2" -lt "$acc" ] && acc=$2;; max) [ "$2" -gt "$acc" ] && acc=$2;; *) return 2;; esac; shift 2; done; echo "$acc"; }',
    'bf_field() { local n=$1 line; shift; line=$("$@") || return $?; line=${line%%$\'\\n\'*}; local -a f; read -r -a f <<< "$line"; [ "$n" -ge 1 ] && [ "$n" -le "${#f[@]}" ] || return 1; echo "${f[n-1]}"; }',
    'bf_if_exists() { local p=$1; shift; if [ -e "$p" ] || [ -L "$p" ]; then "$@"; fi; }',
    'bf_scsi_debug_dev() { local ms=${1:-10000} d; while [ "$ms" -gt 0 ]; do for d in /sys/bus/pseudo/drivers/scsi_debug/adapter*/host*/target*/*:*/block/*; do [ -e "$d" ] && [ -e "/dev/${d##*/}" ] && { echo "/dev/${d##*/}"; return 0; }; done; sleep 0.1; ms=$((ms - 100)); done; return 1; }',
    '',
    'WORK=$(mktemp -d "${REPRO_TMP:-/var/tmp}/blockfarm-repro.XXXXXX") || exit 3',
    'PFX="bfr-$$-"',
    'UNDO=()',
    'cleanup() {',
    '  local rc=$?',
    '  set +e',
    '  local i',
    '  for ((i = ${#UNDO[@]} - 1; i >= 0; i--)); do "${UNDO[i]}" || say "undo ${UNDO[i]} failed"; done',
    '  rm -rf "$WORK"',
    '  exit "$rc"',
    '}',
    'trap cleanup EXIT',
    "trap 'exit 130' INT",
    "trap 'exit 143' TERM",
    "trap 'exit 129' HUP",
    '',
    'say "building repro.c"',
    'gcc -O2 -o "$WORK/repro" "$HERE/repro.c" -luring -lpthread || { say "repro.c does not build (gcc, liburing-dev?)"; exit 3; }',
    '',
    '# A marker in the kernel log: what the kernel says after it is shown at the end.',
    'MARK="blockfarm-repro $$ $(date +%s)"',
    'echo "$MARK" > /dev/kmsg 2>/dev/null || true',
    '',
    '# ---- set-up (bottom-up) ----',
    ...steps,
    '# ---- the program ----',
    `"$WORK/repro" ${[...args.map((a) => `${shQuote(`${a.id}=`)}${vars.word(a.path)}`), ...reproVars(plan).map((v) => `${shQuote(`@${v}=`)}${vars.word(`\${${v}}`)}`)].join(' ')}`,
    'RC=$?',
    'CHECKS_FAILED=0',
    '',
    '# ---- post-run checks ----',
    ...checks,
    '',
    '# ---- the kernel log since the marker ----',
    'KLOG=$(dmesg 2>/dev/null | sed -n "/$MARK/,\\$p" | tail -n +2)',
    `REPORTS=$(printf '%s\\n' "$KLOG" | grep -E ${shQuote(klogPattern(caseInjectsFaults(c, info)))} || true)`,
    'if [ -n "$REPORTS" ]; then say "the kernel logged:"; printf \'%s\\n\' "$KLOG" | tail -n 200 >&2; fi',
    'if [ "$RC" = 0 ] && { [ "$CHECKS_FAILED" = 1 ] || [ -n "$REPORTS" ]; }; then RC=1; fi',
    'say "exit $RC"',
    'exit "$RC"',
    '',
  ].join('\n');
}

/** id=path arguments for repro.c: device nodes, file paths, mount points (as templates). */
export function reproArgs(c: Case, info: StackInfo, env: ReturnType<typeof reproEnv>): Array<{ id: string; path: string }> {
  const ids = reproObjects(c, info, caseExpectations(c, info));
  return ids.map((id) => {
    const l = info.layer(id)!;
    const path = l.kind === 'file' ? env.filePath(id) : l.kind === 'fs' ? env.mountPoint(id) : env.devicePath(id);
    return { id, path };
  });
}
