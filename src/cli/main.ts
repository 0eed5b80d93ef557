import { Command, CommanderError } from 'commander';
import { EXIT_INVALID } from './run.js';
import { registerResourceCommands } from './register-resources.js';

/**
 * The areas besides the resource commands, loaded only when the command line needs them: the
 * controller, the lab, the proxy and Docker's client take about 0.2 s of CPU to load, which
 * `berth apply` and `berth get` (run in loops, scripts and the controller's cold start) need not pay.
 */
const OTHER_AREAS: (() => Promise<(program: Command) => void>)[] = [
  () => import('./lab.js').then((m) => m.registerLabCommands),
  () => import('./controller.js').then((m) => m.registerControllerCommand),
  () => import('./proxy.js').then((m) => m.registerProxyCommand),
  () => import('./promote.js').then((m) => m.registerPromoteCommand),
  () => import('./run-job.js').then((m) => m.registerRunJobCommand),
  () => import('./releases.js').then((m) => m.registerReleaseCommands),
  () => import('./sim.js').then((m) => m.registerSimCommand),
];

/**
 * Each area of the CLI registers its own subcommands; main only assembles them. Add an area to
 * OTHER_AREAS when it lands. Given the command about to run, an area is left out when the
 * command is not its own; without one, every area is there (`berth --help`).
 */
export async function buildProgram(command?: string): Promise<Command> {
  const program = new Command('berth')
    .description('Declarative environments for Docker Swarm')
    .exitOverride()
    .showHelpAfterError();
  registerResourceCommands(program);
  if (command !== undefined && program.commands.some((c) => c.name() === command || c.aliases().includes(command))) return program;
  for (const register of await Promise.all(OTHER_AREAS.map((load) => load()))) register(program);
  return program;
}

export async function main(argv: string[]): Promise<number> {
  const program = await buildProgram(argv[2]);
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
