/**
 * The seed corpus: hand-written cases, one or more per scenario of
 * SCENARIOS.md, named `s<N>-<what>.json`. Pure Node fs; no validation here
 * (callers run validateCase on what they load).
 */
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const SEEDS_DIR = fileURLToPath(new URL('./seeds/', import.meta.url));

export type Scenario = 'S1' | 'S2' | 'S3' | 'S4' | 'S5';

export interface SeedFile {
  /** File name inside the seeds directory, e.g. `s1-loop-dio-ext4.json`. */
  file: string;
  caseJson: unknown;
}

/** Every `*.json` in `dir`, sorted by name, parsed (a JSON syntax error throws, naming the file). */
export function loadSeedCases(dir: string = SEEDS_DIR): SeedFile[] {
  return readdirSync(dir)
    .filter((f) => f.endsWith('.json'))
    .sort()
    .map((file) => {
      const text = readFileSync(join(dir, file), 'utf8');
      try {
        return { file, caseJson: JSON.parse(text) as unknown };
      } catch (err) {
        throw new Error(`${file}: ${(err as Error).message}`);
      }
    });
}

/** The scenario a seed file belongs to, from its `s1-` … `s5-` prefix; undefined for other names. */
export function scenarioOfFileName(name: string): Scenario | undefined {
  const m = /^s([1-5])-/.exec(name.replace(/^.*[\\/]/, ''));
  return m ? (`S${m[1]}` as Scenario) : undefined;
}
