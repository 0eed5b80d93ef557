/**
 * Docker's credential helper protocol, as the docker CLI speaks it: `docker-credential-<name>
 * get` (found on PATH) reads the server URL on stdin and prints `{ServerURL, Username, Secret}`;
 * Username `<token>` means Secret is an identity token. A helper that has nothing for the server
 * says "credentials not found" and exits non-zero: that is no credential, not an error.
 */
import { spawn } from 'node:child_process';
import type { RegistryCredential } from './credentials.js';

export type CredentialHelperRunner = (helper: string, serverUrl: string) => Promise<RegistryCredential | undefined>;

/** A helper that could not be run, failed, or answered something that is not its protocol. */
export class CredentialHelperError extends Error {
  constructor(
    readonly helper: string,
    readonly serverUrl: string,
    problem: string,
    opts: { cause?: unknown } = {},
  ) {
    super(`credential helper docker-credential-${helper} (get ${serverUrl}): ${problem}`, opts);
    this.name = 'CredentialHelperError';
  }
}

const NOT_FOUND = /credentials not found/i;

export function runCredentialHelper(helper: string, serverUrl: string, timeoutMs = 10_000): Promise<RegistryCredential | undefined> {
  const fail = (problem: string, cause?: unknown) => new CredentialHelperError(helper, serverUrl, problem, { cause });
  return new Promise((resolve, reject) => {
    const child = spawn(`docker-credential-${helper}`, ['get'], { stdio: ['pipe', 'pipe', 'pipe'], timeout: timeoutMs, killSignal: 'SIGKILL' });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    child.on('error', (err: NodeJS.ErrnoException) => reject(fail(err.code === 'ENOENT' ? 'not found on PATH' : err.message, err)));
    // A helper that exits without reading its input must not turn into an EPIPE crash.
    child.stdin.on('error', () => undefined);
    child.stdin.end(serverUrl);
    child.on('close', (code, signal) => {
      const said = (stdout.trim() || stderr.trim()).slice(0, 300);
      if (signal) return reject(fail(`killed by ${signal}${signal === 'SIGKILL' ? ` (no answer within ${timeoutMs} ms)` : ''}`));
      if (code !== 0) return NOT_FOUND.test(said) ? resolve(undefined) : reject(fail(`exit code ${code}${said ? `: ${said}` : ''}`));
      try {
        resolve(parseHelperAnswer(stdout));
      } catch (err) {
        reject(fail((err as Error).message, err));
      }
    });
  });
}

/** The credential in a helper's `get` answer. */
export function parseHelperAnswer(stdout: string): RegistryCredential {
  let answer: { Username?: unknown; Secret?: unknown };
  try {
    answer = JSON.parse(stdout) as typeof answer;
  } catch {
    throw new Error(stdout.trim() ? 'answer is not JSON' : 'empty answer');
  }
  if (typeof answer?.Secret !== 'string' || typeof answer.Username !== 'string') throw new Error('answer lacks Username or Secret');
  return answer.Username === '<token>' ? { identityToken: answer.Secret } : { username: answer.Username, password: answer.Secret };
}
