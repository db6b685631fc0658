import { z } from 'zod';
import { alarmDisarm } from '../worker/steps/defrag-steps.js';
import type { Step, StepDefinition } from './types.js';

const params = z.object({ quotaBytes: z.number() });
export type AlarmDisarmStep = Step<'alarm-disarm', z.infer<typeof params>>;

/**
 * The NOSPACE alarms cleared (etcdctl alarm disarm), once every member's database is back under the quota it
 * runs with. `quotaBytes` is the inventory's, used only for a member that does not say its own.
 */
export const alarmDisarmStep = {
  kind: 'alarm-disarm',
  params,
  spec: (i: { quotaBytes: number; raised: string[] }): AlarmDisarmStep => ({
    kind: 'alarm-disarm',
    title: 'Disarm the NOSPACE alarm',
    destructive: false,
    operation: `once every member's database is below the quota it runs with (its --quota-backend-bytes, as etcd_server_quota_backend_bytes on its /metrics says; for a member that does not say, ${i.quotaBytes} bytes, etcd.quotaBytes in the inventory): maintenance.alarm(Deactivate, NOSPACE) for each NOSPACE alarm raised${i.raised.length ? ` (now on ${i.raised.join(', ')})` : ' (none now; one raised meanwhile is cleared too)'}, as etcdctl alarm disarm; skipped if none is raised. Other alarms (CORRUPT) are left alone`,
    params: { quotaBytes: i.quotaBytes },
  }),
  execute: (ctx, step) => alarmDisarm({ ...ctx.etcd, stop: ctx.stop, leaseLost: ctx.leaseLost }, step),
} satisfies StepDefinition<'alarm-disarm'>;
