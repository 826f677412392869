/**
 * The `blockfarm` command line. Thin on purpose: each command lives in
 * ./commands/ and returns its exit code (model/verdict.ts EXIT); this file
 * wires them to commander and turns usage errors into exit 2 (commander's
 * own code 1 would read as "found a bug").
 */
import { Command, CommanderError } from 'commander';
import { EXIT } from '../../model/index.ts';
import { registerCampaign } from './commands/campaign.ts';
import { registerCoordinator } from './commands/coordinator.ts';
import { registerDashboard } from './commands/dashboard.ts';
import { registerDoctor } from './commands/doctor.ts';
import { registerGenerate } from './commands/generate.ts';
import { registerKernels } from './commands/kernels.ts';
import { registerRun } from './commands/run.ts';
import { registerValidate } from './commands/validate.ts';
import { registerWorker } from './commands/worker.ts';
import { registerBisect } from './commands/bisect.ts';
import { registerMinimize } from './commands/minimize.ts';
import { registerReport } from './commands/report.ts';
import { registerRepro } from './commands/repro.ts';
import { registerTriage } from './commands/triage.ts';
import { type CliContext, type CommandHost, createCliContext } from './context.ts';

/** Runs the CLI on argv (as process.argv) and returns the exit code. */
export async function runCli(argv: readonly string[]): Promise<number> {
  let exitCode: number = EXIT.pass;
  let lastContext: CliContext | undefined;
  const host: CommandHost = {
    context(cmd) {
      lastContext = createCliContext({ verbose: Boolean(cmd.optsWithGlobals().verbose) });
      return lastContext;
    },
    setExitCode(code) {
      exitCode = code;
    },
  };

  const program = new Command('blockfarm')
    .description('a fuzzing farm for the Linux block and storage stack')
    .option('-v, --verbose', 'debug logging on stderr (same as BLOCKFARM_LOG_LEVEL=debug)')
    .showSuggestionAfterError(true)
    .exitOverride();
  registerValidate(program, host);
  registerRun(program, host);
  registerDoctor(program, host);
  registerCampaign(program, host);
  registerGenerate(program, host);
  registerCoordinator(program, host);
  registerWorker(program, host);
  registerKernels(program, host);
  registerTriage(program, host);
  registerReport(program, host);
  registerMinimize(program, host);
  registerBisect(program, host);
  registerRepro(program, host);
  registerDashboard(program, host);
  program.addHelpText(
    'after',
    '\nExit codes (every command): 0 pass, 1 finding (divergence, crash, hang), 2 bad input,\n' +
      '3 unsupported on this target, 4 infrastructure error.\n' +
      'Logs go to stderr (BLOCKFARM_LOG_LEVEL, BLOCKFARM_LOG_FORMAT=json|pretty); results to stdout.',
  );
  for (const sub of program.commands) sub.exitOverride();

  try {
    await program.parseAsync([...argv]);
    return exitCode;
  } catch (err) {
    if (err instanceof CommanderError) {
      // commander has already printed its one-line message (or the help text).
      return err.code === 'commander.helpDisplayed' || err.code === 'commander.version' ? EXIT.pass : EXIT.badInput;
    }
    // A bug in blockfarm, not in the input: one line for people, the stack in the debug log.
    const ctx = lastContext ?? createCliContext({});
    ctx.log.debug({ err }, 'internal error');
    ctx.err(`blockfarm: internal error: ${(err as Error).message ?? String(err)} (run with --verbose for the stack)`);
    return EXIT.infra;
  }
}

process.exitCode = await runCli(process.argv);
