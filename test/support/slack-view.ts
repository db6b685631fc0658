import { expect } from 'vitest';
import type { FakeSlack } from '../../src/lab/fake-slack.js';

export { latest, textOf, threadOf, waitForGate, waitForRunStatus, type Buttons } from '../../src/lab/slack-view.js';

/** The ephemeral answer a click or command got through its response_url. */
export async function answerAt(slack: FakeSlack, responseUrl: string): Promise<string> {
  const id = responseUrl.split('/').pop()!;
  const r = await slack.waitFor((x) => x.kind === 'response_url' && x.method === id, 20_000);
  expect(r.body.response_type).toBe('ephemeral');
  return String(r.body.text);
}
