import { createHmac } from 'node:crypto';

/** Slack's v0 request signature: HMAC-SHA256 of `v0:<timestamp>:<body>` with the signing secret. */
export function slackSignature(secret: string, timestamp: number, body: string): string {
  return `v0=${createHmac('sha256', secret).update(`v0:${timestamp}:${body}`).digest('hex')}`;
}

export interface SlashCommandParams {
  text: string;
  userId: string;
  channelId: string;
  responseUrl: string;
  command?: string;
  teamId?: string;
}

/** A slash command's fields as Slack sends them (form fields over HTTP, the payload of a Socket Mode envelope). */
export function slashCommandPayload(p: SlashCommandParams): Record<string, string> {
  return {
    token: 'deprecated-verification-token',
    team_id: p.teamId ?? 'TLAB',
    team_domain: 'lab',
    channel_id: p.channelId,
    channel_name: 'incident',
    user_id: p.userId,
    user_name: p.userId.toLowerCase(),
    command: p.command ?? '/etcd',
    text: p.text,
    api_app_id: 'ALAB',
    response_url: p.responseUrl,
    trigger_id: `${Date.now()}.trigger`,
  };
}

export function slashCommandBody(p: SlashCommandParams): string {
  return new URLSearchParams(slashCommandPayload(p)).toString();
}

export interface SignedPostResult {
  status: number;
  body: string;
  ms: number;
}

/**
 * Posts a body to the bot's events URL the way Slack does: form-encoded, signed.
 * `timestamp` and `secret` can be overridden to forge a stale or wrong signature.
 */
export async function postSigned(
  url: string,
  secret: string,
  body: string,
  opts: { timestamp?: number; signature?: string } = {},
): Promise<SignedPostResult> {
  const ts = opts.timestamp ?? Math.floor(Date.now() / 1000);
  const t0 = performance.now();
  const res = await fetch(url, {
    method: 'POST',
    headers: {
      'content-type': 'application/x-www-form-urlencoded',
      'x-slack-request-timestamp': String(ts),
      'x-slack-signature': opts.signature ?? slackSignature(secret, ts, body),
    },
    body,
  });
  const text = await res.text();
  return { status: res.status, body: text, ms: performance.now() - t0 };
}

/** Parses an ack body (Bolt answers JSON when the listener acked with a message). */
export function ackText(body: string): string {
  try {
    return String((JSON.parse(body) as { text?: string }).text ?? '');
  } catch {
    return body;
  }
}

export interface ClickParams {
  userId: string;
  channelId: string;
  messageTs: string;
  actionId: string;
  blockId: string;
  value: string;
  responseUrl: string;
}

/** A button click as Slack describes it: a block_actions payload. */
export function blockActionsPayload(p: ClickParams): Record<string, unknown> {
  return {
    type: 'block_actions',
    user: { id: p.userId, username: p.userId.toLowerCase(), team_id: 'TLAB' },
    team: { id: 'TLAB', domain: 'lab' },
    api_app_id: 'ALAB',
    token: 'deprecated-verification-token',
    trigger_id: `${Date.now()}.trigger`,
    channel: { id: p.channelId, name: 'incident' },
    container: { type: 'message', message_ts: p.messageTs, channel_id: p.channelId, is_ephemeral: false },
    message: { type: 'message', ts: p.messageTs, text: '' },
    response_url: p.responseUrl,
    actions: [{ type: 'button', action_id: p.actionId, block_id: p.blockId, value: p.value, action_ts: String(Date.now() / 1000) }],
  };
}

/** A button click as Slack posts it over HTTP: a form body with the JSON payload. */
export function blockActionsBody(p: ClickParams): string {
  return new URLSearchParams({ payload: JSON.stringify(blockActionsPayload(p)) }).toString();
}
