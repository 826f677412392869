/**
 * The deployment files (infra/deploy) against the CLI they run: every option
 * they pass exists in `blockfarm <command> --help`, and the coordinator's V8
 * settings are the ones the benchmark measures. (No container engine or
 * systemd runs them here; `systemd-analyze verify` accepts the units.)
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { COORDINATOR_NODE_OPTIONS } from '../../coordinator/farm/coordinator.ts';
import { ROOT, blockfarm } from './helpers/farm.ts';

const deploy = (f: string) => readFileSync(join(ROOT, 'infra/deploy', f), 'utf8');

async function helpOf(cmd: string): Promise<string> {
  const p = blockfarm([cmd, '--help']);
  expect((await p.exited).code).toBe(0);
  return p.stdout();
}

function optionsIn(args: string): string[] {
  return [...args.matchAll(/(?:^|\s|")(--[a-z][a-z-]*)/g)].map((m) => m[1]!);
}

describe('deployment files', () => {
  it('systemd units pass only options the commands have', async () => {
    for (const [file, cmd] of [['blockfarm-coordinator.service', 'coordinator'], ['blockfarm-worker@.service', 'worker']] as const) {
      const unit = deploy(file);
      const exec = /^ExecStart=.*bin\/blockfarm\.js (\w+)(.*)$/m.exec(unit);
      expect(exec?.[1]).toBe(cmd);
      const help = await helpOf(cmd);
      for (const o of optionsIn(exec![2]!)) expect(help).toContain(o);
      expect(unit).toMatch(/^EnvironmentFile=\/etc\/blockfarm\/blockfarm\.env$/m);
    }
  }, 60_000);

  it('the compose services pass only options the commands have', async () => {
    const compose = deploy('compose.yaml');
    const commands = [...compose.matchAll(/^\s+command: \["(coordinator|worker)", (.*)\]$/gm)];
    expect(commands.map((m) => m[1]).sort()).toEqual(['coordinator', 'worker', 'worker']);
    for (const m of commands) {
      const help = await helpOf(m[1]!);
      for (const o of optionsIn(m[2]!)) expect(help).toContain(o);
    }
  }, 60_000);

  it("the coordinator runs with the V8 settings the memory benchmark measures", () => {
    expect(deploy('blockfarm-coordinator.service')).toContain(`Environment=NODE_OPTIONS="${COORDINATOR_NODE_OPTIONS}"`);
    expect(deploy('compose.yaml')).toContain(`NODE_OPTIONS: ${COORDINATOR_NODE_OPTIONS}`);
  });

  it('secrets come from the environment file, never from argv', () => {
    for (const f of ['blockfarm-coordinator.service', 'blockfarm-worker@.service', 'compose.yaml']) expect(deploy(f)).not.toMatch(/--redis[ "]/);
    expect(deploy('blockfarm.env.example')).toMatch(/^BLOCKFARM_REDIS_PASSWORD=/m);
  });
});
