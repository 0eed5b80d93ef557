import { readdir, readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { parseAllDocuments } from 'yaml';
import { InvalidInputError, type FieldProblem } from '../api/errors.js';
import { parseResource, type Resource } from '../api/resource.js';

/** One validated document and where it came from. */
export interface LoadedResource {
  resource: Resource;
  file: string;
  document: number;
}

/** Several files' or documents' problems at once; still exit 2. */
export class InvalidInputErrors extends InvalidInputError {
  readonly errors: InvalidInputError[];
  constructor(errors: InvalidInputError[]) {
    super(errors.flatMap((e) => e.problems));
    this.errors = errors;
    this.message = errors.map((e) => e.message).join('\n');
  }
}

const EXTENSIONS = /\.(ya?ml|json)$/i;

/** The files `-f` names: a file, `-` (stdin), or a directory's *.yaml/*.yml/*.json (not recursive), sorted. */
export async function expandPaths(paths: string[]): Promise<string[]> {
  const files: string[] = [];
  for (const path of paths) {
    if (path === '-') {
      files.push('-');
      continue;
    }
    const info = await stat(path).catch(() => {
      throw new InvalidInputError([{ path: '', message: 'no such file or directory' }], { file: path, document: 0 });
    });
    if (info.isDirectory()) {
      const names = (await readdir(path)).filter((n) => EXTENSIONS.test(n)).sort();
      files.push(...names.map((n) => join(path, n)));
    } else files.push(path);
  }
  return files;
}

export async function readInput(file: string): Promise<string> {
  if (file !== '-') return readFile(file, 'utf8');
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

/**
 * Parses and validates every document of one file. Throws one InvalidInputError naming
 * `file:document: field` for every problem in the file, so that nothing of an invalid file is
 * stored. Empty documents (a trailing `---`) are skipped but still counted.
 */
export function parseDocuments(file: string, text: string): LoadedResource[] {
  const docs = parseAllDocuments(text);
  const list = Array.isArray(docs) ? docs : [docs];
  const loaded: LoadedResource[] = [];
  const errors: InvalidInputError[] = [];
  list.forEach((doc, i) => {
    const document = i + 1;
    const location = { file, document };
    if (doc.errors.length > 0) {
      const problems: FieldProblem[] = doc.errors.map((e) => ({
        path: e.linePos ? `line ${e.linePos[0].line}` : '',
        message: e.message.split('\n')[0] ?? e.message,
      }));
      errors.push(new InvalidInputError(problems, location));
      return;
    }
    try {
      const value: unknown = doc.toJS({ maxAliasCount: 100 });
      if (value === null || value === undefined) return; // empty document
      loaded.push({ resource: parseResource(value, location), file, document });
    } catch (err) {
      if (err instanceof InvalidInputError) errors.push(err);
      else errors.push(new InvalidInputError([{ path: '', message: (err as Error).message }], location));
    }
  });
  const seen = new Map<string, number>();
  for (const l of loaded) {
    const id = `${l.resource.kind}/${l.resource.metadata.name}`;
    const earlier = seen.get(id);
    if (earlier !== undefined) {
      errors.push(new InvalidInputError([{ path: 'metadata.name', message: `duplicate of document ${earlier}` }], { file, document: l.document }));
    } else seen.set(id, l.document);
  }
  if (errors.length === 1) throw errors[0];
  if (errors.length > 1) throw new InvalidInputErrors(errors);
  return loaded;
}

/**
 * Every Environment's `spec.group` must name a group in this batch or one already stored.
 * Returns the problems (one per offending document).
 */
export function checkGroupReferences(batch: LoadedResource[], storedGroups: ReadonlySet<string>): InvalidInputError[] {
  const inBatch = new Set(batch.filter((l) => l.resource.kind === 'EnvironmentGroup').map((l) => l.resource.metadata.name));
  const errors: InvalidInputError[] = [];
  for (const l of batch) {
    if (l.resource.kind !== 'Environment') continue;
    const group = l.resource.spec.group;
    if (!inBatch.has(group) && !storedGroups.has(group)) {
      errors.push(
        new InvalidInputError([{ path: 'spec.group', message: `environmentgroup "${group}" not found (neither stored nor in this apply)` }], {
          file: l.file,
          document: l.document,
        }),
      );
    }
  }
  return errors;
}
