/**
 * The run's life cycle: bad plans (exit 2, nothing run), a set-up step that
 * fails at every position (exit 3, everything before it undone, nothing of
 * ours left attached or mounted, nothing of anybody else touched), SIGTERM
 * during set-up and during the program, op timeouts (also of exec ops and
 * with threads waiting at a barrier), and SIGKILL leaving its record.
 */
import { execFile } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { PlanOp, SetupStep } from '../../worker/executor/protocol.ts';
import {
  cleanup,
  done,
  dump,
  eventsOf,
  io,
  noBinary,
  noRoot,
  leftovers,
  loopDevice,
  loopDevices,
  mkfs,
  mountSteps,
  plan,
  result,
  runPlan,
  sparseFile,
  tempDir,
} from './harness.ts';

const run = promisify(execFile);

let dir: string;
beforeAll(async () => {
  dir = await tempDir('life');
});
afterAll(async () => {
  await cleanup(dir);
});

describe.skipIf(noBinary)('bad plans', () => {
  const cases: Array<[string, string, RegExp]> = [
    ['not JSON', '{"version": 1, ', /bad plan: not JSON: .* at byte \d+/],
    ['not an object', '[1, 2]', /bad plan: plan: expected an object/],
    ['missing seed', '{"version":1,"setup":[],"geometry":[],"threads":[],"final":[],"candidates":[],"checks":[]}', /missing 'seed'/],
    ['version 2', JSON.stringify({ ...plan({}), version: 2 }), /'version' = 2 is outside/],
    ['unknown op kind', JSON.stringify(plan({ threads: [[{ id: 1, kind: 'teleport' } as unknown as PlanOp]] })), /threads\[0\]\[0\]: 'kind' has an unknown value 'teleport'/],
    ['negative offset', JSON.stringify(plan({ threads: [[io(1, 'write', '/x', -1, 10)]] })), /threads\[0\]\[0\]: 'offset' = -1/],
    ['undefined variable', JSON.stringify(plan({ threads: [[io(1, 'write', '${nope}', 0, 10)]] })), /'\$\{nope\}' .* is not captured by an earlier set-up step/],
    ['variable before its capture', JSON.stringify(plan({ setup: [{ name: 'a', argv: ['echo', '${x}'] }, { name: 'b', argv: ['echo'], capture: 'x' }] })), /setup\[0\]/],
    ['mapping overrun', JSON.stringify(plan({ threads: [[{ id: 1, kind: 'mmap-write', path: '/x', offset: 4000, length: 200, mapLength: 4096 }]] })), /exceeds mapLength/],
    [
      'barriers that would deadlock',
      JSON.stringify(plan({ threads: [[{ id: 1, kind: 'barrier', name: 'a' }], [{ id: 2, kind: 'barrier', name: 'b' }]] })),
      /barriers are global/,
    ],
  ];
  for (const [what, text, message] of cases)
    it(`exits 2 on ${what}, running nothing`, async () => {
      const marker = path.join(dir, `never-${what.replace(/\W/g, '_')}`);
      // A plan that parses up to a point must still not start any set-up step.
      const out = await runPlan(text.replace('"setup":[]', JSON.stringify({ setup: [{ name: 'touch', argv: ['touch', marker] }] }).slice(1, -1)));
      expect(out.code, dump(out)).toBe(2);
      expect(out.events).toHaveLength(1);
      expect(done(out)!.ok).toBe(false);
      expect(done(out)!.message).toMatch(message);
      expect((await run('ls', [dir])).stdout).not.toContain('never-');
    });
});

/** A stack of our own: file, loop, ext4, mount, a file in it, a loop over that file. */
function stack(tag: string): { steps: SetupStep[]; mnt: string } {
  const img = path.join(dir, `${tag}.img`);
  const mnt = path.join(dir, `${tag}-mnt`);
  const inner = path.join(mnt, 'inner');
  return {
    mnt,
    steps: [
      sparseFile('image', img, '64M'),
      loopDevice('dev', img),
      mkfs('ext4', '${dev}'),
      ...mountSteps('ext4', '${dev}', mnt),
      { name: 'inner file', argv: ['truncate', '-s', '8M', inner] },
      loopDevice('inner', inner, { directIo: true }),
    ],
  };
}

describe.skipIf(noBinary)('keepStack', () => {
  const steps = (file: string): SetupStep[] => [{ name: 'make', argv: ['touch', file], undo: ['rm', '-f', file] }];
  it('leaves what set-up built when the run reaches its end, and undoes it on a failed step as ever', async () => {
    const kept = path.join(dir, 'kept');
    const o = await runPlan(plan({ setup: steps(kept), keepStack: true }));
    expect(o.code, dump(o)).toBe(0);
    expect(done(o)?.ok, dump(o)).toBe(true);
    expect(eventsOf(o, 'undo'), dump(o)).toEqual([]);
    await expect(run('test', ['-e', kept])).resolves.toBeDefined();

    const undone = path.join(dir, 'undone');
    const f = await runPlan(plan({ setup: [...steps(undone), { name: 'fail', argv: ['false'] }], keepStack: true }));
    expect(f.code, dump(f)).toBe(3);
    expect(eventsOf(f, 'undo').map((e) => [e.name, e.ok]), dump(f)).toEqual([['make', true]]);
    await expect(run('test', ['-e', undone])).rejects.toThrow();

    // Without keepStack the normal end undoes, as before.
    const plain = path.join(dir, 'plain');
    const p = await runPlan(plan({ setup: steps(plain) }));
    expect(eventsOf(p, 'undo').map((e) => e.name), dump(p)).toEqual(['make']);
    await expect(run('test', ['-e', plain])).rejects.toThrow();
  });
});

describe.skipIf(noRoot)('teardown on every path', () => {
  let bystanderDir: string;
  let bystander: string;

  // A loop device that is not ours: it must survive every run untouched.
  beforeAll(async () => {
    bystanderDir = await mkdtemp(path.join(os.tmpdir(), 'bf-exec-bystander-'));
    const f = path.join(bystanderDir, 'img');
    await writeFile(f, Buffer.alloc(1 << 20));
    bystander = (await run('losetup', ['--find', '--show', f])).stdout.trim();
  });
  afterAll(async () => {
    if (bystander) await run('losetup', ['-d', bystander]).catch(() => {});
    await rm(bystanderDir, { recursive: true, force: true });
  });

  async function expectClean(): Promise<void> {
    expect(await leftovers(dir)).toEqual({ loops: [], mounts: [] });
    expect((await loopDevices()).map((l) => l.name)).toContain(bystander);
  }

  const failures: Array<[string, (s: SetupStep) => SetupStep, number]> = [
    ['exits 1', (s) => ({ ...s, argv: ['false'] }), 1],
    ['cannot be started', (s) => ({ ...s, argv: ['/nonexistent/tool'] }), 127],
    ['times out', (s) => ({ ...s, argv: ['sleep', '30'], timeoutMs: 200 }), 124],
  ];

  it('undoes every earlier step, in reverse, when a step fails at any position', async () => {
    const before = await loopDevices();
    const { steps } = stack('leak');
    for (let k = 0; k < steps.length; k++) {
      for (const [how, inject, exit] of k === 1 || k === 4 ? failures : failures.slice(0, 1)) {
        const setup = steps.map((s, i) => (i === k ? inject(s) : s));
        const out = await runPlan(plan({ setup, threads: [[io(1, 'write', '${inner}', 0, 4096)]] }));
        const where = `step ${k} (${steps[k]!.name}) ${how}\n${dump(out)}`;
        expect(out.code, where).toBe(3);
        const setupEvents = eventsOf(out, 'setup');
        expect(setupEvents.map((e) => e.ok), where).toEqual([...new Array<boolean>(k).fill(true), false]);
        expect(setupEvents[k], where).toMatchObject({ step: k, ok: false, exit });
        const undone = eventsOf(out, 'undo');
        const expectUndone = steps.map((s, i) => (i < k && s.undo ? i : -1)).filter((i) => i >= 0).reverse();
        expect(undone.map((u) => u.step), where).toEqual(expectUndone);
        expect(undone.every((u) => u.ok), where).toBe(true);
        expect(done(out)).toMatchObject({ ok: false, message: `set-up step ${k} (${steps[k]!.name}) failed` });
        expect(eventsOf(out, 'result'), where).toEqual([]);
        await expectClean();
      }
    }
    // And with no failure: the program runs and everything is undone as well.
    const out = await runPlan(plan({ setup: steps, threads: [[io(1, 'write', '${inner}', 0, 4096, { direct: true })]] }));
    expect(out.code, dump(out)).toBe(0);
    expect(result(out, 1).ret).toBe(4096);
    expect(eventsOf(out, 'undo').map((u) => u.step)).toEqual([6, 4, 3, 1, 0]);
    await expectClean();
    // Nobody else's loop device went away because of us.
    const after = (await loopDevices()).map((l) => l.name);
    for (const l of before) if (!l['back-file']?.startsWith(dir)) expect(after, `${l.name} (${l['back-file']})`).toContain(l.name);
  });

  it('SIGTERM during a set-up step kills it and undoes the earlier ones', async () => {
    const { steps } = stack('term-setup');
    const setup = [...steps.slice(0, 2), { name: 'slow', argv: ['sleep', '30'] }];
    const out = await runPlan(plan({ setup }), {
      onEvent: (ev, child) => {
        if (ev.ev === 'setup' && ev.step === 1) setTimeout(() => child.kill('SIGTERM'), 100);
      },
    });
    expect(out.code, dump(out)).toBe(5);
    expect(out.ms).toBeLessThan(10_000);
    expect(eventsOf(out, 'setup')[2]).toMatchObject({ step: 2, ok: false, exit: 130 });
    expect(eventsOf(out, 'undo').map((u) => [u.step, u.ok])).toEqual([
      [1, true],
      [0, true],
    ]);
    expect(done(out)!.message).toMatch(/interrupted by SIGTERM during set-up step 2/);
    await expectClean();
  });

  it('SIGTERM mid-program stops the threads and tears the mounted stack down', async () => {
    const { steps, mnt } = stack('term-run');
    const f = path.join(mnt, 'data');
    const out = await runPlan(
      plan({
        setup: [...steps, { name: 'data file', argv: ['truncate', '-s', '0', f] }],
        threads: [
          [io(1, 'write', f, 0, 65536), { id: 2, kind: 'barrier', name: 'b' }, { id: 3, kind: 'sleep', ms: 30_000 }, { id: 10, kind: 'barrier', name: 'never' }],
          [io(4, 'write', '${inner}', 0, 4096, { direct: true }), { id: 5, kind: 'barrier', name: 'b' }, { id: 6, kind: 'barrier', name: 'never' }],
          [{ id: 7, kind: 'barrier', name: 'b' }, { id: 8, kind: 'exec', argvs: [['sleep', '30']] }, { id: 9, kind: 'barrier', name: 'never' }],
        ],
      }),
      {
        onEvent: (ev, child) => {
          if (ev.ev === 'result' && ev.op === 7) setTimeout(() => child.kill('SIGTERM'), 200);
        },
      },
    );
    expect(out.code, dump(out)).toBe(5);
    expect(out.ms).toBeLessThan(15_000);
    expect(result(out, 1).ret).toBe(65536);
    expect(result(out, 4).ret).toBe(4096);
    // Interrupted ops report nothing: the sleep did not sleep, the exec's child was killed.
    for (const op of [3, 8, 6, 9, 10]) expect(out.events.some((e) => e.ev === 'result' && e.op === op), `op ${op}`).toBe(false);
    expect(eventsOf(out, 'undo').map((u) => [u.step, u.ok])).toEqual([
      [6, true],
      [4, true],
      [3, true],
      [1, true],
      [0, true],
    ]);
    expect(done(out)).toMatchObject({ ok: false, message: 'interrupted by SIGTERM' });
    await expectClean();
  });

  it('an op timeout reports the op, releases threads waiting at a barrier and tears down', async () => {
    const { steps } = stack('timeout');
    const out = await runPlan(
      plan({
        opTimeoutMs: 400,
        setup: steps,
        threads: [
          [{ id: 1, kind: 'sleep', ms: 20_000 }, { id: 2, kind: 'barrier', name: 'b' }],
          [{ id: 3, kind: 'barrier', name: 'b' }, io(4, 'write', '${inner}', 0, 4096)],
          [{ id: 5, kind: 'exec', argvs: [['sleep', '30']] }, { id: 6, kind: 'barrier', name: 'b' }],
        ],
      }),
    );
    expect(out.code, dump(out)).toBe(5);
    expect(out.ms).toBeLessThan(15_000);
    // Every thread whose op is past the limit when the watchdog looks gets a timeout event. Both stuck ops
    // usually are, but on a loaded machine one thread may start its op late enough to be under the limit
    // at that moment: it is then interrupted without an event. Neither may report a result.
    const timeouts = eventsOf(out, 'timeout').map((t) => ({ at: [t.op, t.thread], ms: t.ms }));
    expect(timeouts.length).toBeGreaterThanOrEqual(1);
    for (const t of timeouts) {
      expect([[1, 0], [5, 2]]).toContainEqual(t.at);
      expect(t.ms).toBeGreaterThanOrEqual(400);
    }
    for (const op of [1, 5]) expect(out.events.some((e) => e.ev === 'result' && e.op === op), `op ${op}`).toBe(false);
    expect(out.events.some((e) => e.ev === 'result' && e.op === 4)).toBe(false);
    expect(eventsOf(out, 'undo').map((u) => u.step)).toEqual([6, 4, 3, 1, 0]);
    expect(done(out)).toMatchObject({ ok: false, message: 'an op timed out' });
    await expectClean();
  });

  it('SIGKILL leaves on record what was set up (the caller undoes it from the events)', async () => {
    const img = path.join(dir, 'killed.img');
    const out = await runPlan(plan({ setup: [sparseFile('image', img, '16M'), loopDevice('dev', img), { name: 'hang', argv: ['sleep', '30'] }] }), {
      onEvent: (ev, child) => {
        if (ev.ev === 'setup' && ev.step === 1) child.kill('SIGKILL');
      },
    });
    expect(out.signal).toBe('SIGKILL');
    const loop = eventsOf(out, 'setup')[1];
    expect(loop).toMatchObject({ ok: true, captured: expect.stringMatching(/^\/dev\/loop\d+$/) });
    const captured = (loop as { captured: string }).captured;
    expect(await leftovers(dir)).toMatchObject({ loops: [captured] });
    await run('losetup', ['-d', captured]);
    await expectClean();
  });
});
