import type { Inventory, Role } from '../config/schema.js';

/** Looks up the members of a Slack user group (S…); cached by the caller's implementation. */
export type GroupMembers = (groupId: string) => Promise<string[]>;

export type Decision = { ok: true } | { ok: false; reason: string };

/**
 * Decides whether a user may run something needing `role` in `channelId`.
 * Pure apart from the group lookup, which happens only when a role lists groups
 * and the user is not listed by ID.
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
  for (const p of principals.filter((x) => x.startsWith('S'))) {
    if ((await groupMembers(p)).includes(userId)) return { ok: true };
  }
  return { ok: false, reason: `you need the *${role}* role (workspace.roles.${role} in the inventory)` };
}

/** Caches group lookups for a few minutes: membership rarely changes mid-incident, and acks must stay fast. */
export function cachedGroups(fetch: GroupMembers, ttlMs = 5 * 60_000, now = Date.now): GroupMembers {
  const cache = new Map<string, { at: number; users: string[] }>();
  return async (id) => {
    const hit = cache.get(id);
    if (hit && now() - hit.at < ttlMs) return hit.users;
    const users = await fetch(id);
    cache.set(id, { at: now(), users });
    return users;
  };
}
