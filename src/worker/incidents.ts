import type { Incident, IncidentStore } from '../incident/store.js';
import type { Chat } from '../chat/port.js';

/**
 * Opens the channel's incident if none is open, and posts its root message
 * (the timeline is mirrored into that message's thread).
 */
export async function openIncident(store: IncidentStore, chat: Chat, channelId: string, title: string, by: string): Promise<{ incident: Incident; created: boolean }> {
  const { incident, created } = await store.open(channelId, title, by);
  if (created) {
    const text = `:rotating_light: *Incident: ${title}* (opened by <@${by}>, \`${incident.id}\`). Everything etcd-medic sees and does for it follows in this thread. \`/etcd note <text>\` adds to it, \`/etcd timeline\` exports it, \`/etcd incident close\` ends it.`;
    const ts = await chat.post(channelId, { text: `Incident: ${title}`, blocks: [{ type: 'section', text: { type: 'mrkdwn', text: text.slice(0, 3000) } }] });
    if (ts) await store.setRoot(incident.id, ts);
  }
  return { incident, created };
}
