import type { ClusterConfig } from '../config/schema.js';
import type { CsrReviewStore } from '../csr/review-store.js';
import { recorder } from '../incident/record.js';
import type { IncidentStore } from '../incident/store.js';
import type { KubeCluster } from '../kube/client.js';
import { policyContext } from '../kube/csr-policy.js';
import type { Csr } from '../kube/csrs.js';
import { listNodes } from '../kube/nodes.js';
import type { Logger } from '../log.js';
import type { RunStore } from '../runbook/store.js';
import type { Run } from '../runbook/types.js';
import type { Chat } from '../chat/port.js';
import { describeRow, postCsrReview } from './csr-review.js';
import type { CsrThread } from './steps/kube-steps.js';

/** What a step needs to show CSRs in its run's thread. */
export interface RunCsrDeps {
  chat: Chat;
  reviews: CsrReviewStore;
  runs: RunStore;
  incidents: IncidentStore;
}

/**
 * CSR review messages in a run's thread (under its plan message), each CSR once
 * per run: the uids posted are kept in Redis under the run, so a step resumed
 * by another worker does not post them again. They are also marked as posted
 * for the run's incident, so the incident's CSR watch does not show them a
 * second time in the incident's thread.
 */
export function runCsrThread(deps: RunCsrDeps, run: Run, cluster: ClusterConfig, k: KubeCluster, log: Logger): CsrThread {
  const scope = `run:${run.runId}`;
  return {
    async announce(uids: string[], text: string): Promise<boolean> {
      const latest = (await deps.runs.get(run.runId)) ?? run;
      const claimed = await deps.reviews.claimPosted(`${scope}:approved`, uids);
      if (claimed.length === 0) return false;
      try {
        await deps.chat.post(latest.channelId, { text, blocks: [{ type: 'section', text: { type: 'mrkdwn', text: text.slice(0, 3000) } }] }, latest.messageTs);
        await recorder(deps.incidents, log)(latest.channelId, { kind: 'state', actor: 'bot', runId: latest.runId, incidentId: latest.incidentId, text });
      } catch (err) {
        await deps.reviews.unclaimPosted(`${scope}:approved`, claimed);
        throw err;
      }
      return true;
    },
    async show(csrs: Csr[], title: string): Promise<string[]> {
      const latest = (await deps.runs.get(run.runId)) ?? run;
      const claimed = new Set(await deps.reviews.claimPosted(scope, csrs.map((c) => c.metadata!.uid!)));
      const fresh = csrs.filter((c) => claimed.has(c.metadata!.uid!));
      if (fresh.length === 0) return [];
      const forIncident = latest.incidentId ? await deps.reviews.claimPosted(latest.incidentId, [...claimed]) : [];
      try {
        // Nodes not listed: the CSRs are still shown, judged against the inventory's masters only.
        const policy = policyContext(await listNodes(k).catch(() => []), cluster);
        const { review, rows } = await postCsrReview(deps.chat, deps.reviews, {
          cluster: cluster.name,
          channelId: latest.channelId,
          threadTs: latest.messageTs,
          incidentId: latest.incidentId,
          by: 'bot',
          title,
          csrs: fresh,
          policy,
        });
        await recorder(deps.incidents, log)(latest.channelId, {
          kind: 'state',
          actor: 'bot',
          runId: latest.runId,
          incidentId: latest.incidentId,
          text: `${title}: posted in the run's thread for review (${review.id}): ${rows.map(describeRow).join('; ')}`,
        });
        return rows.map((r) => r.name);
      } catch (err) {
        // Not posted: given back, so the next look posts them.
        await deps.reviews.unclaimPosted(scope, [...claimed]);
        if (latest.incidentId) await deps.reviews.unclaimPosted(latest.incidentId, forIncident);
        throw err;
      }
    },
  };
}
