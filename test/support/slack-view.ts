import { expect } from 'vitest';
import type { FakeSlack, SlackRecord } from '../../src/lab/fake-slack.js';

import { textOf, waitForGate } from '../../src/lab/slack-view.js';

export { latest, textOf, threadOf, waitForGate, waitForRunStatus, type Buttons } from '../../src/lab/slack-view.js';

/** The ephemeral answer a click or command got through its response_url. */
export async function answerAt(slack: FakeSlack, responseUrl: string): Promise<string> {
  const id = responseUrl.split('/').pop()!;
  const r = await slack.waitFor((x) => x.kind === 'response_url' && x.method === id, 20_000);
  expect(r.body.response_type).toBe('ephemeral');
  return String(r.body.text);
}

type ReplaceLab = { slack: FakeSlack; lab: { corruptMember(name: string): Promise<void> }; command(text: string, o: { user: string }): Promise<unknown>; click(p: { user: string; messageTs: string; actionId: string; blockId: string; value: string }): Promise<{ responseUrl: string }> };

/** A member's disk breaks and `requester` asks for its replace: the plan message's ts and the run's ID, once step 1 waits for approval. */
export async function planReplace(t: ReplaceLab, member: string, requester: string): Promise<{ ts: string; runId: string }> {
  await t.lab.corruptMember(member);
  const since = t.slack.lastSeq;
  await t.command(`replace ${member}`, { user: requester });
  const plan = await t.slack.waitFor((r) => r.method === 'chat.postMessage' && new RegExp(`^Replace ${member} in `).test(String(r.body.text)), 30_000, since);
  const g1 = await waitForGate(t.slack, plan.ts!, 1);
  return { ts: plan.ts!, runId: g1.blockId.match(/r-[0-9a-f]{8}/)![0] };
}

/** `approver` clicks Approve on step `step` of the plan message once its gate is drawn; the ephemeral answer. */
export async function approveStep(t: ReplaceLab, ts: string, step: number, approver: string): Promise<string> {
  const g = await waitForGate(t.slack, ts, step);
  return answerAt(t.slack, (await t.click({ user: approver, messageTs: ts, actionId: 'medic_approve', blockId: g.blockId, value: g.approve })).responseUrl);
}

/**
 * Someone asks for a replace of a member whose disk broke, and a second person
 * approves both of its destructive steps as they come: the plan message's ts.
 */
export async function replaceWithApprovals(t: ReplaceLab, member: string, who: { requester: string; approver: string }): Promise<string> {
  const { ts } = await planReplace(t, member, who.requester);
  for (const step of [1, 2]) await approveStep(t, ts, step, who.approver);
  return ts;
}

type RunLab = { slack: FakeSlack; command(text: string, o: { user: string }): Promise<unknown> };

/** `user` types `/etcd <text>`; the channel message whose text matches `header` (a plan, or a refusal), with the run's ID when it names one. */
export async function planRun(t: RunLab, text: string, header: RegExp, user = 'UALICE'): Promise<{ ts: string; runId: string; msg: SlackRecord }> {
  const since = t.slack.lastSeq;
  await t.command(text, { user });
  const msg = await t.slack.waitFor((r) => r.method === 'chat.postMessage' && header.test(String(r.body.text)), 60_000, since);
  const runId = /run (r-[0-9a-f]{8})/.exec(String(msg.body.text))?.[1] ?? '';
  return { ts: msg.ts!, runId, msg };
}

/** `user` types `/etcd backup`: the backup's ID and revision, from the channel's message. */
export async function takeBackup(t: RunLab, user = 'UALICE'): Promise<{ id: string; revision: number; text: string }> {
  const since = t.slack.lastSeq;
  await t.command('backup', { user });
  const msg = await t.slack.waitFor((r) => r.method === 'chat.postMessage' && String(r.body.text).includes('Backup taken'), 30_000, since);
  const text = textOf(msg);
  return { id: /\*(\d{4}-\d{2}-\d{2}_\d{6}(-\d+)?)\* of \*\S+\*/.exec(text)![1]!, revision: Number(/revision (\d+),/.exec(text)![1]), text };
}
