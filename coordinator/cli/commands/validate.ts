/**
 * `blockfarm validate FILE|DIR...`: check case files against the case
 * language (shape and semantics) without running them.
 * stdout: `FILE: ok` per valid case, `FILE: path: message` per problem.
 * Exit: 0 all valid, 2 any invalid, unreadable or not JSON.
 */
import type { Command } from 'commander';
import { EXIT } from '../../../model/index.ts';
import { loadCasePaths, problemLine } from '../case-files.ts';
import type { CliContext, CommandHost } from '../context.ts';

export async function validateFiles(paths: readonly string[], ctx: CliContext): Promise<number> {
  let invalid = 0;
  for (const loaded of await loadCasePaths(paths)) {
    if (loaded.ok) {
      ctx.out(`${loaded.file}: ok`);
      continue;
    }
    invalid++;
    for (const p of loaded.problems) ctx.out(problemLine(loaded.file, p));
  }
  ctx.log.debug({ invalid }, 'validate done');
  return invalid ? EXIT.badInput : EXIT.pass;
}

export function registerValidate(program: Command, host: CommandHost): void {
  program
    .command('validate')
    .description('check case files (shape and meaning) without running them; directories expand to their *.json files')
    .argument('<paths...>', 'case files or directories of case files')
    .addHelpText('after', '\nExit codes: 0 all valid, 2 any invalid (each problem printed as FILE: path: message).')
    .action(async (paths: string[], _opts: unknown, cmd: Command) => {
      host.setExitCode(await validateFiles(paths, host.context(cmd)));
    });
}
