import { sh } from '../ssh/shell.js';

/**
 * Read-only lines a look at a master prints to learn where its certificates
 * are (Platform.pkiOnHost): its manifest (base64, one line), the files in its
 * pki dir, and (once the manifest is known) the discovery output its script
 * sources. File names may hold ':' (system:etcd-peer:<dns>.crt): quoted.
 */
export function manifestLookLines(config: string): string[] {
  return [sh`if [ -f ${config} ]; then printf 'manifest64=%s\n' "$(base64 -w0 < ${config})"; fi`];
}

export function pkiDirLookLines(pkiDir: string): string[] {
  return [sh`if [ -d ${pkiDir} ]; then for medic_f in ${pkiDir}/*; do [ -f "$medic_f" ] && printf 'pkifile=%s\n' "\${medic_f##*/}"; done; fi`];
}

export function environmentLookLines(file: string): string[] {
  return [sh`if [ -f ${file} ]; then while IFS= read -r medic_l || [ -n "$medic_l" ]; do printf 'env=%s\n' "$medic_l"; done < ${file}; fi`];
}

/** What those lines printed. */
export function parseClueLook(out: string): { manifest: string | null; files: string[]; environment: string | null } {
  const m = /^manifest64=(\S*)$/m.exec(out);
  const env = [...out.matchAll(/^env=(.*)$/gm)].map((x) => x[1]!);
  return {
    manifest: m ? Buffer.from(m[1]!, 'base64').toString('utf8') : null,
    files: [...out.matchAll(/^pkifile=(.+)$/gm)].map((x) => x[1]!),
    environment: env.length ? env.join('\n') : null,
  };
}
