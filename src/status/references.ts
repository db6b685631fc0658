/** A member as the member list gives it, with the inventory host it runs on (its address in other files may be that name). */
export interface ReferencedMember {
  name: string;
  peerURLs: string[];
  clientURLs: string[];
  inventoryHost?: string;
}

/** How one file on one master compares with the member list. */
export interface ReferenceDrift {
  /** Entries that name no current member (a removed one, or an old address). */
  stale: string[];
  /** Current members the file does not name. */
  missing: string[];
  /** What the file should say: every current member, in the file's own form. */
  wanted: string[];
}

const hostPort = (url: string) => {
  const m = /^[a-z]+:\/\/(\[[^\]]+\]|[^/:]+)(?::(\d+))?/i.exec(url.trim());
  return m ? { host: m[1]!.toLowerCase(), port: m[2] ?? '' } : null;
};

/** Whether a client URL names this member: its address and port, the host part by any name the member goes by. */
function namesMember(url: string, m: ReferencedMember): boolean {
  const hp = hostPort(url);
  if (!hp) return false;
  return m.clientURLs.some((c) => {
    const own = hostPort(c);
    if (!own || (hp.port && own.port && hp.port !== own.port)) return false;
    return hp.host === own.host || (m.inventoryHost !== undefined && hp.host === m.inventoryHost.toLowerCase());
  });
}

/**
 * Compares a file's entries with the members: client URLs (master-config.yaml,
 * flanneld) match a member by address or inventory host name and port; an
 * initial cluster's `name=peer URL` entries must name each member by its name
 * and first peer URL. Members added but never started (no name yet) are left out.
 */
export function referenceDrift(names: 'client-urls' | 'members', entries: string[], members: ReferencedMember[]): ReferenceDrift {
  const current = members.filter((m) => m.name);
  if (names === 'members') {
    const wanted = current.map((m) => `${m.name}=${m.peerURLs[0] ?? ''}`).sort();
    return { stale: entries.filter((e) => !wanted.includes(e)), missing: wanted.filter((w) => !entries.includes(w)), wanted };
  }
  const wanted = current.map((m) => m.clientURLs[0]).filter((u): u is string => !!u);
  return {
    stale: entries.filter((e) => !current.some((m) => namesMember(e, m))),
    missing: current.filter((m) => m.clientURLs.length && !entries.some((e) => namesMember(e, m))).map((m) => m.clientURLs[0]!),
    wanted,
  };
}
