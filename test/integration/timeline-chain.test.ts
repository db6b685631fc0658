import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { IncidentStore } from '../../src/incident/store.js';
import { connectRedis } from '../../src/queue/redis.js';

// Against the tests' real Redis (no lab): the chain's reads and writes as Redis orders them.
describe('the timeline chain in Redis', () => {
  const prefix = `t-chain-${randomBytes(3).toString('hex')}`;
  const key = randomBytes(32).toString('hex');
  let redis: ReturnType<typeof connectRedis>;
  let store: IncidentStore;

  beforeAll(() => {
    redis = connectRedis(inject('redisUrl'));
    store = new IncidentStore(redis, prefix, key);
  });
  afterAll(() => redis?.disconnect());

  it('never cries wolf: 200 checks while appends race them find zero broken chains', async () => {
    const { incident } = await store.open('CRACE', 'race', 'UALICE');
    let appending = true;
    let appended = 0;
    // Three writers, as bot and workers append at once (a command, a step, a note).
    const writers = [0, 1, 2].map(async (w) => {
      while (appending) {
        await store.append(incident.id, { kind: 'note', actor: 'UCAROL', text: `writer ${w} line ${appended}` });
        appended++;
      }
    });
    const alarms: string[] = [];
    let appendedDuringChecks = 0;
    for (let i = 0; i < 200; i++) {
      const before = appended;
      const { entries, chain } = await store.readVerified(incident.id);
      appendedDuringChecks += appended - before;
      if (!chain.ok) alarms.push(`check ${i}: ${chain.reason}`);
      else expect(chain.count).toBe(entries.length);
    }
    appending = false;
    await Promise.all(writers);
    console.log(`200 checks, ${appended} appends, ${appendedDuringChecks} of them while a check was in flight`);
    expect(appendedDuringChecks).toBeGreaterThan(50);
    expect(alarms).toEqual([]);
    expect(await store.verify(incident.id)).toEqual({ ok: true, count: appended + 1 });
  });

  const fresh = async (channel: string, notes = 4) => {
    const { incident } = await store.open(channel, 'tamper', 'UALICE');
    for (let i = 0; i < notes; i++) await store.append(incident.id, { kind: 'note', actor: 'UCAROL', text: `note ${i}` });
    return { id: incident.id, list: `${prefix}:timeline:${incident.id}` };
  };

  it('detects a consistent rewrite by someone who can write Redis but has no key', async () => {
    const { id, list } = await fresh('CREWRITE');
    // The fault: every entry re-chained with a key of the attacker's own, head and its signature too.
    const evil = new IncidentStore(redis, `${prefix}-evil`, randomBytes(32).toString('hex'));
    const { incident: other } = await evil.open('CREWRITE', 'tamper', 'UALICE');
    for (let i = 0; i < 4; i++) await evil.append(other.id, { kind: 'note', actor: 'UCAROL', text: i === 2 ? 'nobody approved anything' : `note ${i}` });
    for (const suffix of ['', ':head', ':headsig']) await redis.copy(`${prefix}-evil:timeline:${other.id}${suffix}`, `${list}${suffix}`, 'REPLACE');
    expect(await store.verify(id)).toMatchObject({ ok: false, seq: 1, reason: expect.stringContaining('signature does not match') });
  });

  it('detects entries cut off the end and a deleted chain', async () => {
    const { id, list } = await fresh('CTRUNC');
    const third = JSON.parse((await redis.lindex(list, 2))!) as { hash: string };
    // The fault: the last two entries removed and the head moved back to the new last entry.
    await redis.ltrim(list, 0, 2);
    await redis.set(`${list}:head`, third.hash);
    expect(await store.verify(id)).toEqual({ ok: false, seq: 3, reason: "the chain's head was rewritten (its signature does not match)" });

    const gone = await fresh('CDELETE');
    // The fault: the whole timeline deleted.
    await redis.del(gone.list, `${gone.list}:head`, `${gone.list}:headsig`);
    expect(await store.verify(gone.id)).toMatchObject({ ok: false, seq: 0, reason: expect.stringContaining('its entries were deleted') });
  });
});
