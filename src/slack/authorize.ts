import type { Inventory, Role } from '../config/schema.js';

/** Looks up the members of a Slack user group (S…); cached by the caller's implementation. */
export type GroupMembers = (groupId: string) => Promise<string[]>;

export type Decision = { ok: true } | { ok: false; reason: string };

/**
 * Decides whether a user may run something needing `role` in `channelId`.
 * Pure apart from the group lookup, which happens only when a role lists groups
 * and the user is not listed by ID. The groups are asked at once; a lookup that
 * fails or is too slow denies (fails closed), saying so, unless another group
 * already grants the role.
 */
export async function authorize(
  workspace: Inventory['workspace'],
  role: Role,
  userId: string,
  channelId: string,
  groupMembers: GroupMembers,
): Promise<Decision> {
  if (workspace.allowedChannels.length > 0 && !workspace.allowedChannels.includes(channelId)) {
    return { ok: false, reason: `this channel is not one the bot answers in (allowed: ${workspace.allowedChannels.map((c) => `<#${c}>`).join(', ')})` };
  }
  const principals = workspace.roles[role];
  if (principals.includes('*') || principals.includes(userId)) return { ok: true };
  const groups = principals.filter((x) => x.startsWith('S'));
  const looked = await Promise.allSettled(groups.map((g) => groupMembers(g)));
  if (looked.some((r) => r.status === 'fulfilled' && r.value.includes(userId))) return { ok: true };
  const failed = looked.flatMap((r, i) => (r.status === 'rejected' ? [`${groups[i]} (${(r.reason as Error)?.message ?? r.reason})`] : []));
  if (failed.length) {
    return {
      ok: false,
      reason: `needs the *${role}* role, and the Slack lookup of user group ${failed.join(', ')} failed, so membership could not be checked and the request is refused. Try again in a minute; if it keeps failing, check that the bot's token has the usergroups:read scope, or have your user ID listed in workspace.roles.${role}`,
    };
  }
  return { ok: false, reason: `you need the *${role}* role (workspace.roles.${role} in the inventory)` };
}

/**
 * Caches group lookups for a few minutes (membership rarely changes
 * mid-incident) and bounds them: a slash command must be acked within Slack's
 * 3 s, so a lookup that takes longer than `budgetMs` is reported as failed;
 * it keeps running and fills the cache for the next try. Concurrent misses
 * share one lookup. Failures are not cached.
 */
export function cachedGroups(fetch: GroupMembers, ttlMs = 5 * 60_000, now = Date.now, budgetMs = 1500): GroupMembers {
  const cache = new Map<string, { at: number; users: string[] }>();
  const inFlight = new Map<string, Promise<string[]>>();
  return async (id) => {
    const hit = cache.get(id);
    if (hit && now() - hit.at < ttlMs) return hit.users;
    let p = inFlight.get(id);
    if (!p) {
      p = fetch(id).then(
        (users) => {
          cache.set(id, { at: now(), users });
          return users;
        },
      );
      const q = p;
      void q.finally(() => inFlight.get(id) === q && inFlight.delete(id)).catch(() => undefined);
      inFlight.set(id, p);
    }
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`Slack did not answer within ${budgetMs} ms`)), budgetMs);
    });
    try {
      return await Promise.race([p, late]);
    } catch (err) {
      const e = err as { data?: { error?: string }; message?: string };
      throw new Error(e.data?.error ?? e.message ?? String(err));
    } finally {
      clearTimeout(timer);
    }
  };
}
