import { z } from 'zod';
import type { ClusterConfig } from '../config/schema.js';
import { platformOf } from '../platform/index.js';
import { stopAndMoveAside } from '../worker/steps/host-steps.js';
import { MOVE_ASIDE, uniq } from './host-tools.js';
import { hostPlace } from './places.js';
import { sshText } from './plan-text.js';
import { stoppedLeftBehind } from './stopped-left.js';
import type { Step, StepDefinition } from './types.js';

// `listen`: host:port where its etcd may still be found (client and peer URLs).
const params = hostPlace.pick({ config: true, configAside: true, asideDir: true, dataDir: true, dataAside: true, clientHost: true, listen: true });
export type StopAndMoveAsideStep = Step<'stop-and-move-aside', z.infer<typeof params>> & { host: string };

/** The failed member stopped the platform's way, and its data dir moved aside under a name tied to the run. */
export const stopAndMoveAsideStep = {
  kind: 'stop-and-move-aside',
  params,
  spec(i: { cluster: ClusterConfig; member: string; place: { config: string; configAside: string; asideDir: string; dataDir: string; dataAside: string }; clientHost: string; listen: string[] }): StopAndMoveAsideStep {
    const p = i.place;
    return {
      kind: 'stop-and-move-aside',
      title: `Stop etcd on ${i.member} and move its data dir aside`,
      destructive: true,
      host: i.member,
      operation: `on ${sshText(i.cluster, i.member)}: ${platformOf(i.cluster).stopText(p)}; wait until etcd is gone (nothing on ${i.listen.join(', ')}, no etcd process on ${p.dataDir}); mv ${p.dataDir} ${p.dataAside}`,
      params: { config: p.config, configAside: p.configAside, asideDir: p.asideDir, dataDir: p.dataDir, dataAside: p.dataAside, clientHost: i.clientHost, listen: i.listen },
    };
  },
  // Host steps stop their SSH command once this worker lost the run lease (another may run the step now).
  execute: (ctx, step) => stopAndMoveAside(ctx.host, step, ctx.leaseLost),
  hosts: { tools: uniq(MOVE_ASIDE), members: (step) => [{ member: step.host }] },
  // Ended before the run wrote its config back: where its config and data are, said loudly.
  leftBehind: (run, index, step) => stoppedLeftBehind(run, index, [{ name: step.host, ...step.params }]),
} satisfies StepDefinition<'stop-and-move-aside'>;
