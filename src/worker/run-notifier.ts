import type { Logger } from '../log.js';
import { renderRun } from '../render/run-message.js';
import type { RunNotifier } from '../runbook/engine.js';
import type { RunStore } from '../runbook/store.js';
import type { Run } from '../runbook/types.js';
import type { SlackPoster } from '../slack/poster.js';

/**
 * The plan message in the channel, redrawn as the run moves, and its thread
 * for each step's outcome. A Slack failure is logged, never fatal to a step:
 * the run's state in Redis is the record, the message is its view.
 */
export function slackRunNotifier(slack: SlackPoster, store: RunStore, log: Logger): RunNotifier {
  return {
    async planChanged(run: Run) {
      const latest = (await store.get(run.runId)) ?? run;
      try {
        if (latest.messageTs) {
          await slack.update(latest.channelId, latest.messageTs, renderRun(latest));
          return;
        }
        const ts = await slack.postTo(latest.channelId, renderRun(latest));
        if (ts) await store.update(latest.runId, (r) => (r.messageTs ? null : { ...r, messageTs: ts }));
      } catch (err) {
        log.error({ run: run.runId, err: (err as Error).message }, 'could not draw the plan message');
      }
    },
    async thread(run: Run, text: string) {
      const latest = (await store.get(run.runId)) ?? run;
      try {
        await slack.postTo(latest.channelId, { text, blocks: [{ type: 'section', text: { type: 'mrkdwn', text: text.slice(0, 3000) } }] }, latest.messageTs);
      } catch (err) {
        log.error({ run: run.runId, err: (err as Error).message }, 'could not post to the run thread');
      }
    },
  };
}
