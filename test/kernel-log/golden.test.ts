/**
 * Walks every golden file in worker/kernel-log/testdata/ and checks that the
 * parser finds exactly the reports the file's header block lists, in order.
 *
 * A golden file starts with a header block, ended by the first blank line:
 *   NOTE: free text (ignored)
 *   TITLE: the title of the next expected report (one TITLE per report)
 *   ALT: an alternative title of that report (zero or more)
 *   TYPE: its kind (one of REPORT_KINDS)
 *   CRASH: yes | no
 * A file without TITLE lines expects no reports. The rest is the log.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { REPORT_KINDS, firstCrash, parseKernelLog, type ReportKind } from '../../worker/kernel-log/parse.ts';

const TESTDATA = join(dirname(fileURLToPath(import.meta.url)), '../../worker/kernel-log/testdata');

interface Expected {
  title: string;
  alts: string[];
  kind?: ReportKind;
  crash?: boolean;
}

interface Golden {
  name: string;
  expected: Expected[];
  log: string;
}

function readGolden(name: string): Golden {
  const text = readFileSync(join(TESTDATA, name), 'utf8');
  const split = text.indexOf('\n\n');
  if (split < 0) throw new Error(`${name}: no blank line after the header block`);
  const expected: Expected[] = [];
  for (const line of text.slice(0, split).split('\n')) {
    const m = /^([A-Z]+): ?(.*)$/.exec(line);
    if (!m) throw new Error(`${name}: bad header line ${JSON.stringify(line)}`);
    const [, key, value = ''] = m;
    const cur = expected[expected.length - 1];
    if (key === 'TITLE') { expected.push({ title: value, alts: [] }); continue; }
    if (key === 'NOTE') continue;
    if (!cur) throw new Error(`${name}: ${key} before any TITLE`);
    if (key === 'ALT') cur.alts.push(value);
    else if (key === 'TYPE') {
      if (!(REPORT_KINDS as readonly string[]).includes(value)) throw new Error(`${name}: unknown TYPE ${value}`);
      cur.kind = value as ReportKind;
    } else if (key === 'CRASH') {
      if (value !== 'yes' && value !== 'no') throw new Error(`${name}: CRASH must be yes or no`);
      cur.crash = value === 'yes';
    } else throw new Error(`${name}: unknown header ${key}`);
  }
  for (const e of expected) {
    if (e.kind === undefined || e.crash === undefined) throw new Error(`${name}: "${e.title}" needs TYPE and CRASH`);
  }
  return { name, expected, log: text.slice(split + 2) };
}

const files = readdirSync(TESTDATA).filter((f) => f.endsWith('.txt')).sort();
const goldens = files.map(readGolden);

describe('golden kernel logs', () => {
  it('has golden files for every report kind', () => {
    expect(files.length).toBeGreaterThanOrEqual(25);
    const kinds = new Set(goldens.flatMap((g) => g.expected.map((e) => e.kind)));
    for (const k of REPORT_KINDS) expect(kinds, `no golden file of kind ${k}`).toContain(k);
    expect(goldens.some((g) => g.expected.length === 0), 'a noise-only file').toBe(true);
    expect(goldens.some((g) => g.expected.length >= 2), 'a file with several reports').toBe(true);
  });

  for (const g of goldens) {
    it(g.name, () => {
      const reports = parseKernelLog(g.log);
      const got = reports.map((r) => ({ title: r.title, alts: r.altTitles, kind: r.kind, crash: r.crash }));
      expect(got).toEqual(g.expected);
      // Every report points into the log and starts at its header.
      const lines = g.log.split('\n');
      for (const r of reports) {
        expect(r.firstLine).toBeLessThanOrEqual(r.line);
        expect(r.line).toBeLessThanOrEqual(r.lastLine);
        expect(r.raw).toEqual(lines.slice(r.firstLine - 1, r.lastLine));
        expect(r.lines.length).toBeGreaterThan(0);
      }
      expect(firstCrash(reports)?.title).toBe(g.expected.find((e) => e.crash)?.title);
    });
  }
});
