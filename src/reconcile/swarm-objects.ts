/**
 * Before an environment's services are planned: do the Swarm secrets and configs they name
 * exist? A missing one holds the whole environment (nothing running is touched) with a condition
 * that names it. Docker is asked only when an environment's references change: once they all
 * existed they are not looked up again (Swarm refuses to remove a secret or config a service
 * uses; the Docker adapter looks the ids up again when it writes a service, and a write that
 * finds one gone makes the reconciler forget the environment's references).
 */
import type { Environment } from '../api/index.js';
import type { SwarmObjectKind, SwarmObjectLookup } from '../swarm/api.js';

export interface MissingObject {
  service: string;
  kind: SwarmObjectKind;
  name: string;
}

interface Reference {
  service: string;
  kind: SwarmObjectKind;
  name: string;
}

function references(env: Environment): Reference[] {
  return Object.entries(env.spec.services).flatMap(([service, svc]) => [
    ...(svc.secrets ?? []).map((r) => ({ service, kind: 'secret' as const, name: r.source })),
    ...(svc.configs ?? []).map((r) => ({ service, kind: 'config' as const, name: r.source })),
  ]);
}

export class SwarmObjectCheck {
  /** Per environment, the references (as one key) last found all present. */
  private readonly present = new Map<string, string>();

  constructor(private readonly lookup: SwarmObjectLookup) {}

  async missing(env: Environment): Promise<MissingObject[]> {
    const name = env.metadata.name;
    const refs = references(env);
    const key = JSON.stringify(refs.map((r) => [r.kind, r.name]).sort());
    if (refs.length === 0 || this.present.get(name) === key) return [];
    const namesOf = (kind: SwarmObjectKind) => [...new Set(refs.filter((r) => r.kind === kind).map((r) => r.name))];
    const found = new Map<SwarmObjectKind, Map<string, string>>();
    for (const kind of ['secret', 'config'] as const) {
      const names = namesOf(kind);
      found.set(kind, names.length > 0 ? await this.lookup.findObjectIds(kind, names) : new Map());
    }
    const missing = refs.filter((r) => !found.get(r.kind)!.has(r.name));
    if (missing.length === 0) this.present.set(name, key);
    else this.present.delete(name);
    return missing;
  }

  /** The environment is gone: its references are no longer remembered. */
  forget(env: string): void {
    this.present.delete(env);
  }
}

export function missingObjectsMessage(missing: MissingObject[]): string {
  return missing.map((m) => `${m.service}: ${m.kind} "${m.name}" not found (docker ${m.kind} create ${m.name} …)`).join('; ');
}
