/**
 * A service spec names its secrets and configs (the spec hash covers names, not ids); Swarm
 * wants each one's id beside its name. Filled in just before a create or update, so Docker is
 * asked only when a service that mounts them is written.
 */
import type Dockerode from 'dockerode';
import { AdapterError } from '../api/errors.js';
import type { SwarmObjectKind, SwarmObjectLookup } from './api.js';
import type { DockerServiceSpec } from './service-spec.js';

/** A spec that names secrets or configs Swarm does not have. */
export class SwarmObjectMissingError extends AdapterError {
  constructor(
    operation: string,
    readonly missing: { kind: SwarmObjectKind; name: string }[],
  ) {
    super(operation, missing.map((m) => `${m.kind} "${m.name}" not found`).join('; '), { recoverable: false });
    this.name = 'SwarmObjectMissingError';
  }
}

export async function withObjectIds(operation: string, spec: DockerServiceSpec, lookup: SwarmObjectLookup): Promise<DockerServiceSpec> {
  const container = (spec.TaskTemplate as { ContainerSpec?: Dockerode.ContainerSpec } | undefined)?.ContainerSpec;
  const secrets = container?.Secrets ?? [];
  const configs = container?.Configs ?? [];
  if (secrets.length === 0 && configs.length === 0) return spec;
  const names = (refs: Array<{ SecretName?: string; ConfigName?: string }>) => [...new Set(refs.map((r) => r.SecretName ?? r.ConfigName ?? ''))];
  const [secretIds, configIds] = await Promise.all([
    secrets.length ? lookup.findObjectIds('secret', names(secrets)) : new Map<string, string>(),
    configs.length ? lookup.findObjectIds('config', names(configs)) : new Map<string, string>(),
  ]);
  const missing = [
    ...names(secrets).filter((n) => !secretIds.has(n)).map((name) => ({ kind: 'secret' as const, name })),
    ...names(configs).filter((n) => !configIds.has(n)).map((name) => ({ kind: 'config' as const, name })),
  ];
  if (missing.length > 0) throw new SwarmObjectMissingError(operation, missing);
  const filled: Dockerode.ContainerSpec = {
    ...container,
    ...(secrets.length ? { Secrets: secrets.map((s) => ({ ...s, SecretID: secretIds.get(s.SecretName!)! })) } : {}),
    ...(configs.length ? { Configs: configs.map((c) => ({ ...c, ConfigID: configIds.get(c.ConfigName!)! })) } : {}),
  };
  return { ...spec, TaskTemplate: { ...spec.TaskTemplate, ContainerSpec: filled } };
}
