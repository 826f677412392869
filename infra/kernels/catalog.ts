/**
 * What the apt archive offers: linux-image packages of the flavours we boot
 * (generic, cloud, rt), found with `apt-cache search` and versioned with one
 * `apt-cache policy` call. Reads apt's package lists only; `apt-get update`
 * is the set-up's job (infra/setup.sh).
 */
import { compareNewestFirst, packageName, parseKernelId, upstreamOf } from './id.ts';
import { lastLine, runTool } from './proc.ts';

export interface AvailableKernel {
  id: string;
  package: string;
  /** Debian package version, e.g. 6.1.192-2. */
  packageVersion: string;
  /** Upstream kernel version, e.g. 6.1.192. */
  upstream: string;
}

export class AptError extends Error {
  override name = 'AptError';
}

const SEARCH = '^linux-image-[0-9]+\\.[0-9]+\\.[0-9]+-[0-9]+-(amd64|cloud-amd64|rt-amd64)$';

/** Candidate versions from `apt-cache policy` output ('(none)' is left out). */
export function parsePolicy(text: string): Map<string, string> {
  const out = new Map<string, string>();
  let pkg: string | undefined;
  for (const line of text.split('\n')) {
    const head = /^(\S+):$/.exec(line);
    if (head) {
      pkg = head[1];
      continue;
    }
    const cand = /^\s+Candidate:\s+(\S+)/.exec(line);
    if (cand && pkg && cand[1] !== '(none)') out.set(pkg, cand[1]!);
  }
  return out;
}

/** Candidate versions of these packages; absent from the map when apt has none. */
export async function candidateVersions(packages: readonly string[]): Promise<Map<string, string>> {
  if (packages.length === 0) return new Map();
  const r = await runTool('apt-cache', ['policy', ...packages]);
  if (r.code !== 0) throw new AptError(`apt-cache policy failed: ${lastLine(r)}`);
  return parsePolicy(r.stdout);
}

/** Every kernel of our flavours in the archive, newest first. */
export async function availableKernels(): Promise<AvailableKernel[]> {
  const r = await runTool('apt-cache', ['search', '--names-only', SEARCH]);
  if (r.code !== 0) throw new AptError(`apt-cache search failed: ${lastLine(r)}`);
  const ids = r.stdout
    .split('\n')
    .map((l) => l.split(' - ')[0]?.trim() ?? '')
    .map((p) => p.replace(/^linux-image-/, ''))
    .filter((id) => parseKernelId(id) !== undefined);
  const versions = await candidateVersions(ids.map((id) => packageName(id)));
  return [...new Set(ids)]
    .filter((id) => versions.has(packageName(id)))
    .sort(compareNewestFirst)
    .map((id) => {
      const v = versions.get(packageName(id))!;
      return { id, package: packageName(id), packageVersion: v, upstream: upstreamOf(v) };
    });
}
