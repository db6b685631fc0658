import type { Chat, ReplyTo } from '../../chat/port.js';
import { told } from '../job-failed.js';

/**
 * The inventory changed between the ack and the job (a worker with another config): the requester
 * hears which cluster and what to type, once. The error still reaches the timeline; it is marked
 * as told only when the line went out, so a requester without a response_url hears it in the channel.
 */
export async function refuseUnknownCluster(chat: Chat, to: ReplyTo, cluster: string): Promise<never> {
  const said = await chat.ephemeral(to, `Cluster "${cluster}" is not in this worker's inventory. Type \`/etcd help\` for the known clusters.`);
  const err = new Error(`unknown cluster ${cluster}`);
  throw said ? told(err) : err;
}
