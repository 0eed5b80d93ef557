import { Command, CommanderError } from 'commander';
import { EXIT_INVALID } from './run.js';
import { registerResourceCommands } from './register-resources.js';
import { registerLabCommands } from './lab.js';
import { registerControllerCommand } from './controller.js';
import { registerProxyCommand } from './proxy.js';
import { registerPromoteCommand } from './promote.js';
import { registerRunJobCommand } from './run-job.js';
import { registerReleaseCommands } from './releases.js';
import { registerSimCommand } from './sim.js';

/**
 * Each area of the CLI registers its own subcommands; main only assembles them.
 * Add a `register…` call here when a new area lands.
 */
export function buildProgram(): Command {
  const program = new Command('berth')
    .description('Declarative environments for Docker Swarm')
    .exitOverride()
    .showHelpAfterError();
  registerResourceCommands(program);
  registerLabCommands(program);
  registerControllerCommand(program);
  registerProxyCommand(program);
  registerPromoteCommand(program);
  registerRunJobCommand(program);
  registerReleaseCommands(program);
  registerSimCommand(program);
  return program;
}

export async function main(argv: string[]): Promise<number> {
  const program = buildProgram();
  try {
    await program.parseAsync(argv);
  } catch (err) {
    if (err instanceof CommanderError) {
      // --help and --version end up here with exit code 0.
      return err.exitCode === 0 ? 0 : EXIT_INVALID;
    }
    throw err;
  }
  return typeof process.exitCode === 'number' ? process.exitCode : 0;
}
