import { renderPostmortem } from '../../incident/postmortem.js';
import type { JobEnvelope } from '../../queue/jobs.js';
import type { WorkerContext } from '../context.js';
import { replyTo } from '../reply-to.js';
import { recorder } from '../../incident/record.js';
import { openIncident } from '../incidents.js';

type IncidentJob = JobEnvelope & { request: { name: 'incident' } };

/** `/etcd incident start|close`, `/etcd note`, `/etcd timeline`. */
export async function runIncident(env: IncidentJob, ctx: WorkerContext): Promise<string> {
  const d = env.request.data;
  const tell = async (text: string) => {
    await ctx.chat.ephemeral(replyTo(env), text);
    return text;
  };
  switch (d.action) {
    case 'start': {
      const { incident, created } = await openIncident(ctx.incidents, ctx.chat, env.channelId, d.text ?? 'etcd incident', env.userId);
      return tell(created ? `Incident \`${incident.id}\` opened: ${incident.title}.` : `Incident \`${incident.id}\` (${incident.title}) is already open in this channel; \`/etcd incident close\` ends it first.`);
    }
    case 'close': {
      const closed = await ctx.incidents.close(env.channelId, env.userId);
      return tell(closed ? `Incident \`${closed.id}\` closed. \`/etcd timeline\` still exports it.` : 'No incident is open in this channel.');
    }
    case 'note': {
      const open = await ctx.incidents.current(env.channelId);
      if (!open) return tell('No incident is open in this channel: `/etcd incident start <title>` opens one, then notes go on its timeline.');
      await recorder(ctx.incidents, ctx.log)(env.channelId, { kind: 'note', actor: env.userId, text: d.text ?? '' });
      return tell(`Noted on \`${open.id}\`.`);
    }
    case 'timeline': {
      const inc = await ctx.incidents.latest(env.channelId);
      if (!inc) {
        const gone = await ctx.incidents.deletedLatest(env.channelId);
        if (gone) return tell(`:rotating_light: Incident \`${gone}\` is in this channel's history but its record was deleted from Redis, with its timeline. The incident's thread in Slack is the record left.`);
        return tell('This channel has had no incident yet.');
      }
      // Entries and chain check in one atomic read: this command's own entry cannot land between them.
      const { entries, chain } = await ctx.incidents.readVerified(inc.id);
      const md = renderPostmortem(inc, entries, chain, new Date());
      const file = {
        channel: env.channelId,
        filename: `postmortem-${inc.id}.md`,
        title: `Postmortem draft: ${inc.title}`,
        content: md,
        comment: `Timeline of \`${inc.id}\` as a postmortem draft (${entries.length} entries, ${chain.ok ? `hash chain intact, head \`${chain.head.slice(0, 12)}\`` : `hash chain BROKEN at entry ${chain.seq}: ${chain.reason}`}).`,
      };
      // Into the incident's thread when it has a root message.
      await ctx.chat.upload(inc.rootTs ? { ...file, threadTs: inc.rootTs } : file);
      return `timeline of ${inc.id} uploaded`;
    }
  }
}
