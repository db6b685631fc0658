import { randomBytes } from 'node:crypto';
import { inject } from 'vitest';
import type { Inventory } from '../../src/config/schema.js';
import { IncidentStore } from '../../src/incident/store.js';
import { createLogger } from '../../src/log.js';
import { connectRedis } from '../../src/queue/redis.js';
import { newRun } from '../../src/runbook/new-run.js';
import { RunStore } from '../../src/runbook/store.js';
import type { ObservedState, Run, StepSpec } from '../../src/runbook/types.js';
import type { WorkerContext } from '../../src/worker/context.js';
import { chatRunNotifier } from '../../src/worker/run-notifier.js';
import { MemoryChat } from './memory-chat.js';

export const HMAC_KEY = 'k'.repeat(64);

/**
 * A worker's context for unit tests of what job handlers say: the chat in memory,
 * runs and incidents in the tests' real Redis (under a prefix of their own), the
 * run notifier the worker uses. What a handler would need beyond these (etcd,
 * SSH, backups) is absent: give it in `over`.
 */
export function chatContext(inventory: Inventory, over: Partial<WorkerContext> = {}) {
  const redis = connectRedis(inject('redisUrl'));
  const prefix = `unit-chat-${randomBytes(4).toString('hex')}`;
  const chat = new MemoryChat();
  const log = createLogger('silent');
  const store = new RunStore(redis, prefix);
  const incidents = new IncidentStore(redis, prefix, HMAC_KEY);
  const enqueued: { runId: string; index: number; tag?: string }[] = [];
  const ctx: WorkerContext = {
    workerId: 'w-unit',
    inventory,
    pool: null as never,
    chat,
    store,
    backups: null as never,
    incidents,
    notifier: chatRunNotifier(chat, store, incidents, log),
    hmacKey: HMAC_KEY,
    enqueueStep: async (runId, index, tag) => void enqueued.push({ runId, index, ...(tag ? { tag } : {}) }),
    undoOnEnd: async () => [],
    log,
    ...over,
  };
  return { ctx, chat, store, incidents, enqueued, close: () => redis.quit() };
}

const T0 = new Date('2026-11-27T01:00:00.000Z');
export const STATE: ObservedState = {
  members: [{ idHex: 'a1', name: 'm1', learner: false, started: true, reachable: true, peerURLs: ['https://10.0.0.1:2380'] }],
  leaderHex: 'a1',
  raftIndex: 1,
  revision: 1,
  at: T0.toISOString(),
};

/** A run of the given steps on `cluster` (its lock is taken when it is stored), requested by UALICE in `channel`. */
export function aRun(inventory: Inventory, runId: string, channel: string, steps: StepSpec[], cluster = 'prod', now = T0): Run {
  return newRun(inventory, { runId, cluster, target: 'm1', steps, plannedState: STATE, runbook: 'replace', title: 'Replace m1 in prod', requestedBy: 'UALICE', channelId: channel }, now);
}
