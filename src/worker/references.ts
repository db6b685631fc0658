import type { ClusterConfig } from '../config/schema.js';
import { platformOf } from '../platform/index.js';
import type { MemberReference } from '../platform/types.js';
import { referenceDrift, type ReferenceDrift, type ReferencedMember } from '../status/references.js';
import { sshTargetOf } from './ssh-target.js';
import { readRemote } from './steps/host-steps.js';

/** One file on one master, looked at. */
interface LookedAt {
  member: string;
  host: string;
  ref: MemberReference;
}
export type ReferenceLook =
  | (LookedAt & { state: 'absent' | 'unset' })
  | (LookedAt & { state: 'unreadable'; error: string })
  | (LookedAt & { state: 'ok' | 'drift'; entries: string[]; drift: ReferenceDrift });

/**
 * Reads, over SSH, every file on every master that names etcd's members (the
 * platform's references) and compares each with the member list. Read only; a
 * host that cannot be read is reported, not skipped silently.
 */
export async function lookAtReferences(cluster: ClusterConfig, members: ReferencedMember[], opts: { signal?: AbortSignal } = {}): Promise<ReferenceLook[]> {
  const platform = platformOf(cluster);
  const withHosts = members.map((m) => ({ ...m, inventoryHost: cluster.members.find((c) => c.name === m.name)?.host }));
  const perHost = await Promise.all(
    cluster.members.map(async (m) => {
      const out: ReferenceLook[] = [];
      for (const ref of platform.references(m)) {
        const base = { member: m.name, host: m.host, ref };
        try {
          const text = await readRemote(sshTargetOf(m), ref.path, opts.signal);
          if (text === null) {
            out.push({ ...base, state: 'absent' });
            continue;
          }
          const entries = ref.read(text);
          if (entries === null) {
            out.push({ ...base, state: 'unset' });
            continue;
          }
          const drift = referenceDrift(ref.names, entries, withHosts);
          out.push({ ...base, state: drift.stale.length || drift.missing.length ? 'drift' : 'ok', entries, drift });
        } catch (err) {
          out.push({ ...base, state: 'unreadable', error: (err as Error).message });
        }
      }
      return out;
    }),
  );
  return perHost.flat();
}
