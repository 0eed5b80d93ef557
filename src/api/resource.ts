import { z } from 'zod';
import { InvalidInputError, type FieldProblem, type InputLocation } from './errors.js';
import { environmentSchema, type Environment } from './environment.js';
import { groupSchema, type EnvironmentGroup } from './group.js';
import { API_VERSION } from './metadata.js';

export type Resource = EnvironmentGroup | Environment;
export type Kind = Resource['kind'];

/** The plural names used in etcd keys and on the command line (`berth get envs`). */
export const KINDS = {
  EnvironmentGroup: { plural: 'groups', schema: groupSchema },
  Environment: { plural: 'environments', schema: environmentSchema },
} as const;

export type KindPlural = (typeof KINDS)[Kind]['plural'];

/** Turns zod issues into dotted field paths, as `berth apply` reports them. */
export function toFieldProblems(issues: readonly z.core.$ZodIssue[], prefix: (string | number)[] = []): FieldProblem[] {
  return issues.flatMap((issue) => {
    const path = [...prefix, ...issue.path.map((p) => (typeof p === 'symbol' ? String(p) : p))];
    if (issue.code === 'unrecognized_keys') {
      return issue.keys.map((key) => ({ path: joinPath([...path, key]), message: 'unknown field' }));
    }
    return [{ path: joinPath(path), message: issue.message }];
  });
}

function joinPath(path: (string | number)[]): string {
  return path.map((p, i) => (typeof p === 'number' ? `[${p}]` : i === 0 ? p : `.${p}`)).join('');
}

/**
 * Validates one parsed document as a berth resource. `kind` and `apiVersion` are checked first
 * so that a document of the wrong kind gets one clear error instead of a page of field errors.
 */
export function parseResource(doc: unknown, location?: InputLocation): Resource {
  if (typeof doc !== 'object' || doc === null || Array.isArray(doc)) {
    throw new InvalidInputError([{ path: '', message: 'must be a mapping with apiVersion, kind, metadata and spec' }], location);
  }
  const { apiVersion, kind } = doc as Record<string, unknown>;
  if (apiVersion !== API_VERSION) {
    throw new InvalidInputError([{ path: 'apiVersion', message: `must be ${API_VERSION}` }], location);
  }
  if (kind !== 'EnvironmentGroup' && kind !== 'Environment') {
    throw new InvalidInputError([{ path: 'kind', message: 'must be EnvironmentGroup or Environment' }], location);
  }
  const result = KINDS[kind].schema.safeParse(doc);
  if (!result.success) throw new InvalidInputError(toFieldProblems(result.error.issues), location);
  return result.data;
}

/** Validates a status (or any other value) against a schema, for data read back from etcd. */
export function parseWith<T>(schema: z.ZodType<T>, value: unknown, what: string): T {
  const result = schema.safeParse(value);
  if (!result.success) {
    throw new InvalidInputError(toFieldProblems(result.error.issues), { file: what, document: 1 });
  }
  return result.data;
}
