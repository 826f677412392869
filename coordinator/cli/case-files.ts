/**
 * Case files on disk: expanding FILE|DIR arguments and loading one file into
 * a validated case. Every problem becomes a `FILE: path: message` line; no
 * exception escapes for a missing file, bad JSON or an invalid case.
 */
import { promises as fsp } from 'node:fs';
import { join } from 'node:path';
import { type Case, type StackInfo, validateCase } from '../../model/index.ts';

export interface CaseProblem {
  /** A path into the case ('stack.layers[1].members'), or '(file)' for problems with the file itself. */
  path: string;
  message: string;
}

export type LoadedCase =
  | { ok: true; file: string; theCase: Case; info: StackInfo }
  | { ok: false; file: string; problems: CaseProblem[] };

/** A case file argument after expansion: a file to load, or an argument that names nothing usable. */
export type CasePath = { file: string; problem?: undefined } | { file: string; problem: string };

export function problemLine(file: string, p: CaseProblem): string {
  return p.path === '(file)' ? `${file}: ${p.message}` : `${file}: ${p.path}: ${p.message}`;
}

function describeFsError(err: unknown): string {
  const e = err as NodeJS.ErrnoException;
  switch (e.code) {
    case 'ENOENT': return 'no such file or directory';
    case 'EACCES':
    case 'EPERM': return 'permission denied';
    case 'EISDIR': return 'is a directory';
    case 'ENOTDIR': return 'a path component is not a directory';
    default: return e.code ? `${e.code}: ${e.message}` : String(e.message ?? err);
  }
}

/**
 * Files first as given, directories replaced by their *.json files in name
 * order (not recursive). A missing path or a directory without cases is kept
 * as a problem so the caller reports it in order.
 */
export async function expandCasePaths(args: readonly string[]): Promise<CasePath[]> {
  const out: CasePath[] = [];
  for (const arg of args) {
    let isDir: boolean;
    try {
      isDir = (await fsp.stat(arg)).isDirectory();
    } catch (err) {
      out.push({ file: arg, problem: `cannot read: ${describeFsError(err)}` });
      continue;
    }
    if (!isDir) {
      out.push({ file: arg });
      continue;
    }
    let names: string[];
    try {
      names = (await fsp.readdir(arg, { withFileTypes: true }))
        .filter((d) => d.name.endsWith('.json') && !d.isDirectory())
        .map((d) => d.name)
        .sort();
    } catch (err) {
      out.push({ file: arg, problem: `cannot read directory: ${describeFsError(err)}` });
      continue;
    }
    if (names.length === 0) out.push({ file: arg, problem: 'directory holds no *.json case files' });
    for (const n of names) out.push({ file: join(arg, n) });
  }
  return out;
}

/** Where a JSON.parse error happened, as line and column (Node 20's messages give only a position). */
function jsonErrorLine(text: string, err: Error): string {
  const msg = err.message;
  const m = /at position (\d+)/.exec(msg);
  if (!m || /line \d+/.test(msg)) return msg;
  const pos = Number(m[1]);
  const before = text.slice(0, pos);
  const line = before.split('\n').length;
  const column = pos - before.lastIndexOf('\n');
  return `${msg} (line ${line}, column ${column})`;
}

export async function loadCaseFile(file: string): Promise<LoadedCase> {
  let text: string;
  try {
    text = await fsp.readFile(file, 'utf8');
  } catch (err) {
    return { ok: false, file, problems: [{ path: '(file)', message: `cannot read: ${describeFsError(err)}` }] };
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (err) {
    return { ok: false, file, problems: [{ path: '(file)', message: `not valid JSON: ${jsonErrorLine(text, err as Error)}` }] };
  }
  const v = validateCase(json);
  if (!v.ok) return { ok: false, file, problems: v.issues.map((i) => ({ path: i.path, message: i.message })) };
  return { ok: true, file, theCase: v.value, info: v.info };
}

/** Expand and load, keeping argument order. */
export async function loadCasePaths(args: readonly string[]): Promise<LoadedCase[]> {
  const out: LoadedCase[] = [];
  for (const p of await expandCasePaths(args)) {
    if (p.problem !== undefined) out.push({ ok: false, file: p.file, problems: [{ path: '(file)', message: p.problem }] });
    else out.push(await loadCaseFile(p.file));
  }
  return out;
}
