import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ackText } from '../../src/lab/signed-requests.js';
import { startMedicLab, type MedicLab } from '../support/medic-lab.js';

describe('the user-group lookup before an ack', () => {
  let t: MedicLab;

  beforeAll(async () => {
    // Operators are a Slack user group only: every operate command needs the lookup.
    t = await startMedicLab('slack-limits', 68, { roles: { operate: ['SONCALL'] }, botOnly: true });
    t.slack.groups.set('SONCALL', ['UBOB']);
  });
  afterAll(async () => {
    await t?.stop();
  });

  it('fails closed within Slack\'s 3 s when the lookup fails, saying so and what to do; works again once Slack answers', async () => {
    // The fault: Slack answers usergroups.users.list with 500s (the client's bounded retries included).
    t.slack.fail('usergroups.users.list', 500, 3);
    const denied = await t.command('backup', { user: 'UBOB' });
    expect(denied.status).toBe(200);
    expect(denied.ms).toBeLessThan(3000);
    expect(ackText(denied.body)).toMatch(
      /^Not allowed: `\/etcd backup` needs the \*operate\* role, and the Slack lookup of user group SONCALL \(.+\) failed, so membership could not be checked and the request is refused\. Try again in a minute; if it keeps failing, check that the bot's token has the usergroups:read scope, or have your user ID listed in workspace\.roles\.operate\.$/,
    );

    const allowed = await t.command('backup', { user: 'UBOB' });
    expect(ackText(allowed.body)).toMatch(/job `/);
    expect(allowed.ms).toBeLessThan(3000);
  });
});
