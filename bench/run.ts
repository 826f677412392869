/**
 * `npm run bench`: run every bench/*.bench.ts module's `benchmarks`, print one
 * table (figure, peer figure from the same run, ratio, goal, met or not) and
 * write bench/out/results.json. A missed goal is printed as GOAL MISSED; the
 * exit code stays 0 (goals are reported, not enforced here). A benchmark that
 * throws (e.g. its sanity check failed) exits 1.
 *
 * The process pins itself to one CPU with taskset when it can, so that the
 * JIT and GC threads share the core being measured: "ops/s on one core".
 *
 *   npm run bench [-- NAME_SUBSTRING...]
 */
import { spawnSync } from 'node:child_process';
import { mkdirSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import type { Benchmark, Row } from './harness.ts';

const HERE = dirname(fileURLToPath(import.meta.url));
const PIN_ENV = 'BLOCKFARM_BENCH_CPU';

function allowedCpus(): number[] {
  try {
    const line = readFileSync('/proc/self/status', 'utf8').split('\n').find((l) => l.startsWith('Cpus_allowed_list:'));
    if (!line) return [];
    const out: number[] = [];
    for (const part of line.split(':')[1]!.trim().split(',')) {
      const [a, b] = part.split('-').map(Number);
      for (let c = a!; c <= (b ?? a!); c++) out.push(c);
    }
    return out;
  } catch {
    return [];
  }
}

/** Re-run this script under `taskset -c CPU` unless already pinned; returns the exit code, or undefined to go on here. */
function pinToOneCore(): number | undefined {
  if (process.env[PIN_ENV] !== undefined) return undefined;
  const cpus = allowedCpus();
  if (cpus.length <= 1) {
    process.env[PIN_ENV] = cpus.length ? String(cpus[0]) : 'unknown';
    return undefined;
  }
  const cpu = String(cpus[cpus.length - 1]);
  const r = spawnSync('taskset', ['-c', cpu, process.execPath, ...process.execArgv, fileURLToPath(import.meta.url), ...process.argv.slice(2)], {
    stdio: 'inherit',
    env: { ...process.env, [PIN_ENV]: cpu },
  });
  if (r.error) {
    process.env[PIN_ENV] = 'not pinned (taskset unavailable)';
    return undefined;
  }
  return r.status ?? 1;
}

const fmtNum = (x: number): string =>
  x >= 100 ? Math.round(x).toLocaleString('en-US') : x >= 1 ? x.toFixed(2) : x.toPrecision(3);

interface RowOut extends Row {
  ratio?: number;
  met?: boolean;
}

function table(rows: string[][]): string {
  const widths = rows[0]!.map((_, c) => Math.max(...rows.map((r) => r[c]!.length)));
  const right = new Set([1, 3, 4]);
  const line = (r: string[]) => r.map((cell, c) => (right.has(c) ? cell.padStart(widths[c]!) : cell.padEnd(widths[c]!))).join('  ').trimEnd();
  return [line(rows[0]!), widths.map((w) => '-'.repeat(w)).join('  '), ...rows.slice(1).map(line)].join('\n');
}

async function main(): Promise<number> {
  const pinned = pinToOneCore();
  if (pinned !== undefined) return pinned;
  const filters = process.argv.slice(2);
  const files = readdirSync(HERE).filter((f) => f.endsWith('.bench.ts')).sort();
  const results: Array<{ file: string; name: string; description: string; seconds: number; rows: RowOut[] }> = [];
  let failed = false;
  console.log(`blockfarm bench: node ${process.version}, ${os.cpus()[0]?.model ?? 'unknown cpu'}, cpu ${process.env[PIN_ENV]}`);
  for (const file of files) {
    const mod = (await import(pathToFileURL(join(HERE, file)).href)) as { benchmarks?: Benchmark[] };
    for (const b of mod.benchmarks ?? []) {
      if (filters.length && !filters.some((f) => b.name.includes(f))) continue;
      console.log(`\n# ${b.name}: ${b.description}`);
      const t0 = performance.now();
      let rows: Row[];
      try {
        rows = await b.run();
      } catch (err) {
        console.log(`  FAILED: ${(err as Error).stack ?? String(err)}`);
        failed = true;
        continue;
      }
      const out: RowOut[] = rows.map((r) => ({
        ...r,
        ratio: r.peer ? r.figure / r.peer.figure : undefined,
        met: r.goal ? r.figure >= r.goal.min : undefined,
      }));
      for (const r of out) if (r.note) console.log(`  ${r.name}: ${r.note}`);
      results.push({ file, name: b.name, description: b.description, seconds: (performance.now() - t0) / 1000, rows: out });
    }
  }

  const cells = [['benchmark', 'figure', 'unit', 'peer figure', 'ratio', 'goal', 'status']];
  for (const b of results)
    for (const r of b.rows)
      cells.push([
        `${b.name} / ${r.name}`,
        fmtNum(r.figure),
        r.unit,
        r.peer ? fmtNum(r.peer.figure) : '-',
        r.ratio !== undefined ? `${r.ratio >= 1 ? r.ratio.toFixed(1) : r.ratio.toPrecision(2)}x` : '-',
        r.goal?.text ?? '-',
        r.met === undefined ? '-' : r.met ? 'met' : 'GOAL MISSED',
      ]);
  console.log(`\n${table(cells)}`);
  const peers = [...new Set(results.flatMap((b) => b.rows.flatMap((r) => (r.peer ? [r.peer.name] : []))))];
  if (peers.length) console.log(`\npeer: ${peers.join('; ')} (ratio = figure / peer figure, same run, same program)`);
  const missed = results.flatMap((b) => b.rows.filter((r) => r.met === false).map((r) => `${b.name} / ${r.name}: ${fmtNum(r.figure)} ${r.unit}, goal ${r.goal!.text}`));
  if (missed.length) console.log(`\nGOAL MISSED (${missed.length}):\n${missed.map((m) => `  ${m}`).join('\n')}`);
  else if (results.some((b) => b.rows.some((r) => r.goal))) console.log('\nall goals met');

  const outDir = join(HERE, 'out');
  mkdirSync(outDir, { recursive: true });
  const report = {
    date: new Date().toISOString(),
    node: process.version,
    cpu: os.cpus()[0]?.model,
    pinnedCpu: process.env[PIN_ENV],
    goalsMissed: missed,
    failed,
    benchmarks: results,
  };
  writeFileSync(join(outDir, 'results.json'), `${JSON.stringify(report, null, 2)}\n`);
  console.log(`\nwrote ${join('bench', 'out', 'results.json')}`);
  return failed ? 1 : 0;
}

process.exitCode = await main();
