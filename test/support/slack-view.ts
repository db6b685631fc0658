import { expect } from 'vitest';
import type { FakeSlack } from '../../src/lab/fake-slack.js';

import { waitForGate } from '../../src/lab/slack-view.js';

export { latest, textOf, threadOf, waitForGate, waitForRunStatus, type Buttons } from '../../src/lab/slack-view.js';

/** The ephemeral answer a click or command got through its response_url. */
export async function answerAt(slack: FakeSlack, responseUrl: string): Promise<string> {
  const id = responseUrl.split('/').pop()!;
  const r = await slack.waitFor((x) => x.kind === 'response_url' && x.method === id, 20_000);
  expect(r.body.response_type).toBe('ephemeral');
  return String(r.body.text);
}

/**
 * Someone asks for a replace of a member whose disk broke, and a second person
 * approves both of its destructive steps as they come: the plan message's ts.
 */
export async function replaceWithApprovals(
  t: { slack: FakeSlack; lab: { corruptMember(name: string): Promise<void> }; command(text: string, o: { user: string }): Promise<unknown>; click(p: { user: string; messageTs: string; actionId: string; blockId: string; value: string }): Promise<{ responseUrl: string }> },
  member: string,
  who: { requester: string; approver: string },
): Promise<string> {
  await t.lab.corruptMember(member);
  const since = t.slack.lastSeq;
  await t.command(`replace ${member}`, { user: who.requester });
  const plan = await t.slack.waitFor((r) => r.method === 'chat.postMessage' && new RegExp(`^Replace ${member} in `).test(String(r.body.text)), 30_000, since);
  for (const step of [1, 2]) {
    const g = await waitForGate(t.slack, plan.ts!, step);
    await answerAt(t.slack, (await t.click({ user: who.approver, messageTs: plan.ts!, actionId: 'medic_approve', blockId: g.blockId, value: g.approve })).responseUrl);
  }
  return plan.ts!;
}
