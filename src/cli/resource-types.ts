import type { Kind } from '../api/resource.js';
import { UsageError } from './run.js';

const ALIASES: Record<string, Kind> = {
  group: 'EnvironmentGroup',
  groups: 'EnvironmentGroup',
  environmentgroup: 'EnvironmentGroup',
  environmentgroups: 'EnvironmentGroup',
  env: 'Environment',
  envs: 'Environment',
  environment: 'Environment',
  environments: 'Environment',
};

/** `groups`, `group`, `envs`, `env`, `environment(s)`, `environmentgroup(s)` → kind. */
export function kindFromArg(arg: string): Kind {
  const kind = ALIASES[arg.toLowerCase()];
  if (!kind) throw new UsageError(`unknown resource type "${arg}": use groups or envs`);
  return kind;
}

/** The lower-case name used in CLI output and errors: `environmentgroup/qa-pool`. */
export function kindLabel(kind: Kind): string {
  return kind.toLowerCase();
}
