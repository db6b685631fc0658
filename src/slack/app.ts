import { App } from '@slack/bolt';
import type { Queue } from 'bullmq';
import type { Redis } from 'ioredis';
import type { Inventory } from '../config/schema.js';
import type { Settings } from '../config/load.js';
import type { Logger } from '../log.js';
import type { JobEnvelope } from '../queue/jobs.js';
import { enqueue, enqueueStep } from '../queue/queue.js';
import { APPROVE_ACTION, REJECT_ACTION } from '../render/run-message.js';
import { RunStore } from '../runbook/store.js';
import { cachedGroups } from './authorize.js';
import { BOT_WEB_API } from './poster.js';
import { boltLogger } from './bolt-logger.js';
import { handleClick } from './clicks.js';
import { registerCsrActions } from './csr-clicks.js';
import { handleCommandClick } from './command-button.js';
import { COMMAND_ACTION } from '../render/command-button.js';
import { handleSlashCommand, sanitize } from './slash-command.js';
import { recorder } from '../incident/record.js';
import { IncidentStore } from '../incident/store.js';
import { maskDeep, maskSecrets } from '../secrets/mask.js';
import * as metrics from '../metrics/registry.js';
import { healthEndpoint, metricsEndpoint, readyEndpoint } from '../metrics/endpoints.js';
import { countSlackError } from './count-calls.js';

export interface BotDeps {
  settings: Settings;
  inventory: Inventory;
  queue: Queue<JobEnvelope>;
  redis: Redis;
  log: Logger;
}

export interface Bot {
  app: App;
  /** The HTTP port actually bound (HTTP mode), useful when 0 was asked for. */
  port: number | null;
  stop(): Promise<void>;
}

/**
 * The Slack side: Bolt in HTTP mode (POST /slack/events) or Socket Mode when an
 * app token is set. It parses, authorizes, acks, and hands work to the queue;
 * it never talks to etcd, SSH or Kubernetes.
 */
export async function startBot(deps: BotDeps): Promise<Bot> {
  const { settings, log } = deps;
  const { botToken, signingSecret, appToken, apiUrl } = settings.slack;
  if (!botToken || !signingSecret) throw new Error('SLACK_BOT_TOKEN and SLACK_SIGNING_SECRET are required to run the bot');
  const socketMode = Boolean(appToken);

  // Liveness of the bot itself: it answers as long as it can take Slack's requests.
  // It does not depend on workers or Redis: with no worker alive Slack must still
  // reach the bot (to be told so, and for `/etcd cancel`), so the pod stays in service.
  // Readiness of the whole: does Redis answer, is a worker alive. 503 when either is not.
  const ready = readyEndpoint(deps.redis, settings.queuePrefix, { needWorker: true });

  const app = new App({
    token: botToken,
    signingSecret,
    appToken,
    socketMode,
    logger: boltLogger(log),
    // Bolt's conversation store is not used here; left on, it looks every request up and throws and
    // catches an error ("Conversation not found") for each, in the path of every ack.
    convoStore: false,
    clientOptions: { slackApiUrl: apiUrl, ...BOT_WEB_API },
    customRoutes: [
      { path: '/healthz', method: ['GET'], handler: healthEndpoint },
      { path: '/readyz', method: ['GET'], handler: (req, res) => void ready(req, res) },
      { path: '/metrics', method: ['GET'], handler: (req, res) => void metricsEndpoint(req, res) },
    ],
    // In Socket Mode the connection is opened through apps.connections.open: on the same Web API as every other call.
    installerOptions: socketMode ? { port: settings.port, clientOptions: { slackApiUrl: apiUrl } } : undefined,
  });

  // Requests from another Slack workspace (team) are refused before anything else looks at them.
  const teamId = deps.inventory.workspace.teamId;
  if (teamId) {
    app.use(async (args) => {
      const b = args.body as { team_id?: string; team?: { id?: string }; user?: { id?: string; team_id?: string }; user_id?: string };
      const from = b.team_id ?? b.team?.id ?? b.user?.team_id;
      if (from === teamId) return args.next();
      log.warn({ team: from ?? null, expected: teamId, user: b.user_id ?? b.user?.id ?? null }, 'request from another Slack team refused');
      const ack = (args as { ack?: (m?: unknown) => Promise<void> }).ack;
      if (ack) await ack(args.body && 'command' in (args.body as object) ? { response_type: 'ephemeral', text: ':no_entry: This bot serves another Slack workspace; nothing was done.' } : undefined);
    });
  }

  const record = recorder(new IncidentStore(deps.redis, settings.queuePrefix, settings.hmacKey), log);
  const groupMembers = cachedGroups(async (id) => {
    // Bolt makes its own client: the bot's one Web API call before an ack is counted here.
    const res = await app.client.usergroups.users.list({ usergroup: id }).catch((err: unknown) => {
      countSlackError('usergroups.users.list', err);
      throw err;
    });
    return res.users ?? [];
  });

  app.command('/etcd', async ({ command, ack, respond }) => {
    const t0 = performance.now();
    const outcome = await handleSlashCommand(
      { text: command.text ?? '', userId: command.user_id, channelId: command.channel_id, responseUrl: command.response_url },
      { inventory: deps.inventory, enqueue: (env) => enqueue(deps.queue, env), groupMembers, log },
    );
    await ack(maskDeep(outcome.ack));
    metrics.ackSeconds.observe({ command: outcome.counted.command }, (performance.now() - t0) / 1000);
    // The queueing and the timeline wait until the requests already received are read and acked: in a
    // burst, each ack would otherwise queue behind the Redis writes of every command before it.
    await new Promise((r) => setImmediate(r));
    const problem = await outcome.after?.();
    metrics.commands.inc({ command: outcome.counted.command, outcome: problem ? 'not-queued' : outcome.counted.outcome });
    if (problem) await respond({ response_type: 'ephemeral', text: maskSecrets(problem) });
    // After the ack: who typed what, and any denial, on the incident's timeline.
    await record(command.channel_id, { kind: 'command', actor: command.user_id, text: `/etcd ${sanitize(command.text ?? '')}` });
    if (outcome.denied) await record(command.channel_id, { kind: 'denied', actor: command.user_id, text: outcome.denied });
  });

  const store = new RunStore(deps.redis, settings.queuePrefix);
  const clickDeps = {
    store,
    workspace: deps.inventory.workspace,
    groupMembers,
    enqueueStep: (runId: string, index: number, by: { userId: string; channelId: string }, tag: string) => enqueueStep(deps.queue, runId, index, by, tag),
    now: () => new Date(),
    log,
    record,
    hmacKey: settings.hmacKey,
  };
  for (const [actionId, decision] of [
    [APPROVE_ACTION, 'approve'],
    [REJECT_ACTION, 'reject'],
  ] as const) {
    app.action(actionId, async ({ ack, body, action, respond }) => {
      await ack();
      const who = { userId: body.user.id, channelId: (body as { channel?: { id?: string } }).channel?.id ?? '' };
      const text = await handleClick(decision, (action as { value?: unknown }).value, who, clickDeps).catch((err: Error) => {
        log.error({ err: err.message }, 'click failed');
        return `:x: The click could not be handled (${err.message.slice(0, 200)}); nothing was done. Try again.`;
      });
      await respond({ response_type: 'ephemeral', replace_original: false, text: maskSecrets(text) });
    });
  }
  registerCsrActions(app, { workspace: deps.inventory.workspace, groupMembers, enqueue: (env) => enqueue(deps.queue, env), record, log });
  // A button that offers a command: its click runs what typing the command runs, as the clicker.
  app.action(COMMAND_ACTION, async ({ ack, body, action, respond }) => {
    await ack();
    const slashDeps = { inventory: deps.inventory, enqueue: (env: JobEnvelope) => enqueue(deps.queue, env), groupMembers, log, record };
    const click = { value: (action as { value?: unknown }).value, userId: body.user.id, channelId: (body as { channel?: { id?: string } }).channel?.id ?? '', responseUrl: (body as { response_url?: string }).response_url };
    await handleCommandClick(click, slashDeps, async (text) => void (await respond({ response_type: 'ephemeral', replace_original: false, text }))).catch((err: Error) => log.error({ err: err.message }, 'command button failed'));
  });
  // Any other action ID is not ours (an old message, a forged payload): say so, do nothing.
  app.action(/^(?!medic_approve$|medic_reject$|medic_command$|medic_csr_(approve|deny|approve_all)$).*/, async ({ ack, respond, body }) => {
    await ack();
    log.warn({ user: body.user.id }, 'unknown action id');
    await respond({ response_type: 'ephemeral', replace_original: false, text: ':no_entry: That button is not one this bot knows; nothing was done.' });
  });

  app.error(async (err) => {
    log.error({ err: err.message, code: (err as { code?: string }).code }, 'slack handler error');
  });

  let port: number | null = null;
  if (socketMode) {
    await app.start();
    port = settings.port;
  } else {
    const server = await app.start({ port: settings.port, host: settings.host });
    const addr = server.address();
    port = typeof addr === 'object' && addr ? addr.port : settings.port;
  }
  log.info({ mode: socketMode ? 'socket' : 'http', port }, 'bot listening');
  return { app, port, stop: () => app.stop().then(() => undefined) };
}
