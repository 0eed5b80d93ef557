import type { Command } from 'commander';
import { RegistryClient } from '../registry/client.js';
import { defaultAuthFile, loadDockerCredentials, type CredentialLookup } from '../registry/credentials.js';

export interface RegistryFlags {
  registryAuthFile?: string;
  insecureRegistries?: string;
  /** `--no-resolve-digests` sets it false. */
  resolveDigests?: boolean;
}

/** `--registry-auth-file` and `--insecure-registries`, for the commands that talk to image registries. */
export function addRegistryOptions(cmd: Command): Command {
  return cmd
    .option('--registry-auth-file <path>', 'Docker config.json with registry credentials (env BERTH_REGISTRY_AUTH_FILE, default ~/.docker/config.json)')
    .option('--insecure-registries <hosts>', 'comma-separated registries (host:port) spoken to over plain http, as dockerd --insecure-registry (env BERTH_INSECURE_REGISTRIES)')
    .option('--no-resolve-digests', 'run images as the spec writes them, without resolving tags to digests (a simulated Swarm whose registry does not exist)');
}

/** The credentials of `--registry-auth-file` (or its default): for digest look-ups and for Swarm's pulls. */
export function registryCredentials(flags: RegistryFlags, env: NodeJS.ProcessEnv = process.env): CredentialLookup {
  return loadDockerCredentials(flags.registryAuthFile ?? defaultAuthFile(env));
}

/** The registry client, or none with --no-resolve-digests. */
export function registryClient(flags: RegistryFlags, credentials: CredentialLookup, env: NodeJS.ProcessEnv = process.env): RegistryClient | undefined {
  if (flags.resolveDigests === false) return undefined;
  const insecure = (flags.insecureRegistries ?? env.BERTH_INSECURE_REGISTRIES ?? '').split(',').map((h) => h.trim()).filter(Boolean);
  return new RegistryClient({ credentials, insecure });
}
