import { describe, expect, it } from 'vitest';
import { authorize, cachedGroups } from '../../src/slack/authorize.js';

const workspace = {
  allowedChannels: ['CINCIDENT'],
  roles: { read: ['*'], operate: ['UOPS'], destroy: ['UOPS'], approve: ['ULEAD', 'SONCALL'] },
  approvalTtlMinutes: 15,
};
const groups = async (id: string) => (id === 'SONCALL' ? ['UBOB'] : []);

describe('authorize', () => {
  it('answers only in allowed channels, naming them', async () => {
    const d = await authorize(workspace, 'read', 'UANY', 'CRANDOM', groups);
    expect(d).toEqual({ ok: false, reason: 'this channel is not one the bot answers in (allowed: <#CINCIDENT>)' });
  });

  it('lets "*" read, and names the missing role otherwise', async () => {
    expect(await authorize(workspace, 'read', 'UANY', 'CINCIDENT', groups)).toEqual({ ok: true });
    expect(await authorize(workspace, 'operate', 'UANY', 'CINCIDENT', groups)).toEqual({
      ok: false,
      reason: 'you need the *operate* role (workspace.roles.operate in the inventory)',
    });
    expect(await authorize(workspace, 'operate', 'UOPS', 'CINCIDENT', groups)).toEqual({ ok: true });
  });

  it('resolves user groups, and caches the lookup', async () => {
    let calls = 0;
    let now = 0;
    const cached = cachedGroups(async (id) => (calls++, groups(id)), 1000, () => now);
    expect(await authorize(workspace, 'approve', 'UBOB', 'CINCIDENT', cached)).toEqual({ ok: true });
    expect(await authorize(workspace, 'approve', 'UEVE', 'CINCIDENT', cached)).toMatchObject({ ok: false });
    expect(calls).toBe(1);
    now = 2000;
    await authorize(workspace, 'approve', 'UEVE', 'CINCIDENT', cached);
    expect(calls).toBe(2);
  });
});

describe('the user-group lookup before an ack', () => {
  const onlyGroups = { ...workspace, roles: { ...workspace.roles, destroy: ['SONCALL'] } };

  it('denies within its budget when Slack is slow, saying the lookup failed and what to do; the late answer fills the cache', async () => {
    let answer!: (users: string[]) => void;
    const cached = cachedGroups(() => new Promise((r) => (answer = r)), 60_000, Date.now, 200);
    const t0 = Date.now();
    const d = await authorize(onlyGroups, 'destroy', 'UBOB', 'CINCIDENT', cached);
    expect(Date.now() - t0).toBeLessThan(1000);
    expect(d).toEqual({
      ok: false,
      reason:
        'needs the *destroy* role, and the Slack lookup of user group SONCALL (Slack did not answer within 200 ms) failed, so membership could not be checked and the request is refused. Try again in a minute; if it keeps failing, check that the bot\'s token has the usergroups:read scope, or have your user ID listed in workspace.roles.destroy',
    });
    answer(['UBOB']);
    await new Promise((r) => setTimeout(r, 10));
    expect(await authorize(onlyGroups, 'destroy', 'UBOB', 'CINCIDENT', cached)).toEqual({ ok: true });
  });

  it('fails closed on a Slack error, without caching the failure', async () => {
    let calls = 0;
    const cached = cachedGroups(async () => {
      if (++calls === 1) throw Object.assign(new Error('An API error occurred: missing_scope'), { data: { error: 'missing_scope' } });
      return ['UBOB'];
    });
    expect(await authorize(onlyGroups, 'destroy', 'UBOB', 'CINCIDENT', cached)).toMatchObject({ ok: false, reason: expect.stringContaining('user group SONCALL (missing_scope) failed') });
    expect(await authorize(onlyGroups, 'destroy', 'UBOB', 'CINCIDENT', cached)).toEqual({ ok: true });
  });

  it('grants through a group that answered even when another group lookup failed', async () => {
    const two = { ...workspace, roles: { ...workspace.roles, destroy: ['SBROKEN', 'SONCALL'] } };
    const cached = cachedGroups(async (id) => {
      if (id === 'SBROKEN') throw new Error('ratelimited');
      return ['UBOB'];
    });
    expect(await authorize(two, 'destroy', 'UBOB', 'CINCIDENT', cached)).toEqual({ ok: true });
  });
});
