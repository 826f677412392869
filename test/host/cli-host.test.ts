/** `blockfarm run --target host --allow-host` end to end, as a user runs it: real process, real kernel. */
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { describe, expect, it } from 'vitest';

const skipReason = process.getuid?.() !== 0 ? 'not root' : !existsSync('/dev/loop-control') ? 'no /dev/loop-control' : undefined;
if (skipReason) console.log(`skipping the host CLI tests: ${skipReason}`);

function blockfarm(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, ['bin/blockfarm.js', ...args], { timeout: 600_000, maxBuffer: 64 * 1024 * 1024 }, (err, stdout, stderr) => {
      resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr });
    });
  });
}

describe.skipIf(skipReason)('blockfarm run on the host', () => {
  it('runs S2 and S5 seeds on this kernel: pass, exit 0, one JSON object', async () => {
    for (const seed of ['corpus/seeds/s2-btrfs-uring-dio-partial-fault.json', 'corpus/seeds/s5-xfs-mmap-fallocate-race.json']) {
      const r = await blockfarm(['run', seed, '--target', 'host', '--allow-host', '--json']);
      const out = JSON.parse(r.stdout) as { verdict: string; target: string; divergences: unknown[] };
      expect(out, r.stderr).toMatchObject({ verdict: 'pass', target: 'host', divergences: [] });
      expect(r.code).toBe(0);
    }
  });

  it('says unsupported (exit 3) with the missing module for a dm stack this kernel cannot build', async () => {
    const r = await blockfarm(['run', 'corpus/seeds/s4-raw-live-table-swap.json', '--target', 'host', '--allow-host', '--json']);
    const out = JSON.parse(r.stdout) as { verdict: string; reason?: string };
    if (out.verdict === 'unsupported') {
      expect(out.reason).toMatch(/has no dm-mod/);
      expect(r.code).toBe(3);
    } else expect(out.verdict).toBe('pass'); // a host kernel with device mapper runs it
  });
});
