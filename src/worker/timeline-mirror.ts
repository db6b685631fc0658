import type { IncidentStore } from '../incident/store.js';
import type { Logger } from '../log.js';
import type { SlackPoster } from '../slack/poster.js';

const ICON: Record<string, string> = {
  incident: ':rotating_light:',
  command: ':keyboard:',
  denied: ':no_entry:',
  plan: ':clipboard:',
  approval: ':ballot_box_with_check:',
  rejection: ':no_entry_sign:',
  step: ':gear:',
  state: ':bar_chart:',
  note: ':memo:',
  run: ':arrow_forward:',
};

/**
 * Mirrors each open incident's timeline into its root message's thread: at most
 * one message per incident per tick (about one a second), several entries
 * batched in it. The pointer moves only after Slack took the message, so a
 * Slack outage (500s, 429 with Retry-After, which the Web API client waits out)
 * delays the mirror but loses nothing.
 */
export function startTimelineMirror(store: IncidentStore, slack: SlackPoster, log: Logger, owner: string, everyMs = 1000): { stop(): Promise<void> } {
  let stopped = false;
  let running: Promise<void> = Promise.resolve();
  const tick = async () => {
    for (const id of await store.openIds()) {
      if (stopped) return;
      if (!(await store.leaseMirror(id, owner, everyMs * 5))) continue;
      const inc = await store.get(id);
      if (!inc?.rootTs) continue;
      const from = (await store.mirroredUpTo(id)) + 1;
      const pending = await store.entries(id, from);
      if (pending.length === 0) {
        if (inc.closedAt) await store.doneMirroring(id);
        continue;
      }
      let text = '';
      let last = from - 1;
      for (const e of pending) {
        const line = `${ICON[e.kind] ?? ''} ${e.at.slice(11, 19)}Z ${e.actor === 'bot' || e.actor === 'schedule' ? e.actor : `<@${e.actor}>`}: ${e.text}`;
        const clipped = line.length > 2900 ? `${line.slice(0, 2880)}… (cut)` : line;
        if (text && text.length + clipped.length + 1 > 2900) break;
        text = text ? `${text}\n${clipped}` : clipped;
        last = e.seq;
      }
      try {
        await slack.postTo(inc.channelId, { text, blocks: [{ type: 'section', text: { type: 'mrkdwn', text } }] }, inc.rootTs);
        await store.setMirrored(id, last);
      } catch (err) {
        log.warn({ incident: id, err: (err as Error).message }, 'timeline mirror: Slack did not take the message; will retry');
      }
    }
  };
  const timer = setInterval(() => {
    running = running.then(tick).catch((err: Error) => log.warn({ err: err.message }, 'timeline mirror tick failed'));
  }, everyMs);
  timer.unref();
  return {
    async stop() {
      stopped = true;
      clearInterval(timer);
      await running;
    },
  };
}
