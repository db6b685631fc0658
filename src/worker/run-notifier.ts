import type { Logger } from '../log.js';
import { renderRun } from '../render/run-message.js';
import type { RunNotifier } from '../runbook/engine.js';
import type { RunStore } from '../runbook/store.js';
import type { CommandOffer, Run } from '../runbook/types.js';
import { commandButtonBlock } from '../render/command-button.js';
import type { Chat } from '../chat/port.js';
import type { IncidentStore } from '../incident/store.js';
import { recorder } from '../incident/record.js';

/**
 * The plan message in the channel, redrawn as the run moves, and its thread
 * for each step's outcome. A Slack failure is logged, never fatal to a step:
 * the run's state in Redis is the record, the message is its view.
 */
export function chatRunNotifier(chat: Chat, store: RunStore, incidents: IncidentStore, log: Logger): RunNotifier {
  const record = recorder(incidents, log);
  return {
    async planChanged(run: Run) {
      const latest = (await store.get(run.runId)) ?? run;
      try {
        if (latest.messageTs) {
          await chat.update(latest.channelId, latest.messageTs, renderRun(latest));
          return;
        }
        const ts = await chat.post(latest.channelId, renderRun(latest));
        if (ts) await store.update(latest.runId, (r) => (r.messageTs ? null : { ...r, messageTs: ts }));
      } catch (err) {
        log.error({ run: run.runId, err: (err as Error).message }, 'could not draw the plan message');
      }
    },
    async record(run: Run, text: string) {
      await record(run.channelId, { kind: 'step', actor: 'bot', text, runId: run.runId, incidentId: run.incidentId });
    },
    async thread(run: Run, text: string, offer?: CommandOffer) {
      const latest = (await store.get(run.runId)) ?? run;
      // Every line of a run's thread is also an entry of its incident's timeline (the one it
      // started in, even if the channel's incident was closed since).
      await record(latest.channelId, { kind: 'step', actor: 'bot', text, runId: latest.runId, incidentId: latest.incidentId });
      try {
        const blocks: Record<string, unknown>[] = [{ type: 'section', text: { type: 'mrkdwn', text: text.slice(0, 3000) } }];
        if (offer) blocks.push(commandButtonBlock(offer, `offer-${latest.runId}-${latest.current}`));
        await chat.post(latest.channelId, { text, blocks }, latest.messageTs);
      } catch (err) {
        log.error({ run: run.runId, err: (err as Error).message }, 'could not post to the run thread');
      }
    },
  };
}
