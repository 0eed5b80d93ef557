/**
 * etcd's TLS and password settings: flags over the environment (BERTH_ETCD_CA, BERTH_ETCD_CERT,
 * BERTH_ETCD_KEY, BERTH_ETCD_USERNAME, BERTH_ETCD_PASSWORD_FILE). Only file paths are held; the
 * files are read when the client is made, so a password never sits in flags, env or logs.
 */
import fs from 'node:fs';
import type { IOptions } from 'etcd3';
import { z } from 'zod';

export interface EtcdSecurityFlags {
  etcdCa?: string | undefined;
  etcdCert?: string | undefined;
  etcdKey?: string | undefined;
  etcdUsername?: string | undefined;
  etcdPasswordFile?: string | undefined;
}

const path = z.string().min(1);
export const etcdSecurity = z
  .object({
    caFile: path.optional(),
    certFile: path.optional(),
    keyFile: path.optional(),
    username: z.string().min(1).optional(),
    passwordFile: path.optional(),
  })
  .refine((s) => (s.certFile === undefined) === (s.keyFile === undefined), { message: 'BERTH_ETCD_CERT and BERTH_ETCD_KEY go together' })
  .refine((s) => (s.certFile === undefined && s.keyFile === undefined) || s.caFile !== undefined, {
    message: 'a client certificate (BERTH_ETCD_CERT) needs BERTH_ETCD_CA',
  })
  .refine((s) => (s.username === undefined) === (s.passwordFile === undefined), {
    message: 'BERTH_ETCD_USERNAME and BERTH_ETCD_PASSWORD_FILE go together',
  });
export type EtcdSecurity = z.infer<typeof etcdSecurity>;

export class EtcdSecurityError extends Error {}

/** The settings in force, or undefined when none is set. Throws EtcdSecurityError on a bad combination. */
export function etcdSecurityFrom(flags: EtcdSecurityFlags, env: NodeJS.ProcessEnv): EtcdSecurity | undefined {
  const pick = (flag: string | undefined, name: string) => flag ?? (env[name] || undefined);
  const raw = {
    caFile: pick(flags.etcdCa, 'BERTH_ETCD_CA'),
    certFile: pick(flags.etcdCert, 'BERTH_ETCD_CERT'),
    keyFile: pick(flags.etcdKey, 'BERTH_ETCD_KEY'),
    username: pick(flags.etcdUsername, 'BERTH_ETCD_USERNAME'),
    passwordFile: pick(flags.etcdPasswordFile, 'BERTH_ETCD_PASSWORD_FILE'),
  };
  if (Object.values(raw).every((v) => v === undefined)) return undefined;
  const parsed = etcdSecurity.safeParse(Object.fromEntries(Object.entries(raw).filter(([, v]) => v !== undefined)));
  if (!parsed.success) throw new EtcdSecurityError(`etcd connection settings: ${parsed.error.issues.map((i) => i.message).join('; ')}`);
  return parsed.data;
}

/** The etcd3 client options for `security`, reading its files now. */
export function etcdClientOptions(security: EtcdSecurity, read: (file: string) => Buffer = (f) => fs.readFileSync(f)): Pick<IOptions, 'credentials' | 'auth'> {
  const options: Pick<IOptions, 'credentials' | 'auth'> = {};
  if (security.caFile) {
    options.credentials = {
      rootCertificate: read(security.caFile),
      ...(security.certFile && security.keyFile ? { certChain: read(security.certFile), privateKey: read(security.keyFile) } : {}),
    };
  }
  if (security.username && security.passwordFile) {
    // A trailing newline in the file is not part of the password.
    options.auth = { username: security.username, password: read(security.passwordFile).toString('utf8').replace(/\r?\n$/, '') };
  }
  return options;
}
