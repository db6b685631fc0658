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
