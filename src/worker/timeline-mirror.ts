import type { Incident, IncidentStore } from '../incident/store.js';
import type { Logger } from '../log.js';
import type { Chat } from '../chat/port.js';

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
 *
 * Each message ends with a checkpoint: the chain's length and head so far. The
 * thread is a copy outside Redis: whoever compares the export of `/etcd timeline`
 * with the last checkpoint sees a chain that was cut or replaced. The mirror
 * compares too: if an entry it posted no longer has the hash it had, it says so
 * in the thread.
 */
export function startTimelineMirror(store: IncidentStore, chat: Chat, log: Logger, owner: string, everyMs = 1000): { stop(): Promise<void> } {
  let stopped = false;
  let running: Promise<void> = Promise.resolve();
  // The last checkpoint this process posted per incident, and those already found rewritten.
  const posted = new Map<string, { seq: number; hash: string }>();
  const alarmed = new Set<string>();
  const alarm = async (inc: Incident, what: string) => {
    alarmed.add(inc.id);
    log.error({ incident: inc.id, what }, 'timeline rewritten in Redis');
    const text = `:rotating_light: The timeline in Redis no longer matches what it was: ${what}. Someone with access to Redis rewrote or deleted it; this thread is the copy to trust. \`/etcd timeline\` says where the chain breaks.`;
    await chat.post(inc.channelId, { text, blocks: [{ type: 'section', text: { type: 'mrkdwn', text } }] }, inc.rootTs).catch(() => undefined);
  };
  const tick = async () => {
    for (const id of await store.openIds()) {
      if (stopped) return;
      if (!(await store.leaseMirror(id, owner, everyMs * 5))) continue;
      const inc = await store.get(id);
      if (!inc?.rootTs) continue;
      const cp = posted.get(id);
      if (cp && !alarmed.has(id)) {
        // Cheap, every tick: the last entry this thread showed still has the hash it had.
        const now = await store.entryAt(id, cp.seq);
        if (now?.hash !== cp.hash) await alarm(inc, `entry ${cp.seq} (head \`${cp.hash.slice(0, 12)}\` in the checkpoint above) was ${now ? 'replaced' : 'removed'}`);
      }
      const from = (await store.mirroredUpTo(id)) + 1;
      const pending = await store.entries(id, from);
      if (pending.length > 0 && !alarmed.has(id)) {
        // Before posting more: the whole chain, checked against its signatures.
        const { chain } = await store.readVerified(id);
        if (!chain.ok) await alarm(inc, `the chain breaks at entry ${chain.seq}: ${chain.reason}`);
      }
      if (pending.length === 0) {
        if (inc.closedAt) {
          await store.doneMirroring(id);
          posted.delete(id);
        }
        continue;
      }
      let text = '';
      let last = from - 1;
      let head = '';
      for (const e of pending) {
        const line = `${ICON[e.kind] ?? ''} ${e.at.slice(11, 19)}Z ${e.actor === 'bot' || e.actor === 'schedule' ? e.actor : `<@${e.actor}>`}: ${e.text}`;
        const clipped = line.length > 2900 ? `${line.slice(0, 2880)}… (cut)` : line;
        if (text && text.length + clipped.length + 1 > 2900) break;
        text = text ? `${text}\n${clipped}` : clipped;
        last = e.seq;
        head = e.hash;
      }
      const checkpoint = `checkpoint: ${last} entries, head \`${head.slice(0, 12)}\``;
      try {
        await chat.post(inc.channelId, { text, blocks: [{ type: 'section', text: { type: 'mrkdwn', text } }, { type: 'context', elements: [{ type: 'mrkdwn', text: checkpoint }] }] }, inc.rootTs);
        await store.setMirrored(id, last);
        posted.set(id, { seq: last, hash: head });
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
