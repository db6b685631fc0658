import type { ClickValue } from '../approvals/decide.js';
import type { Run, StepStatus } from '../runbook/types.js';
import { clip, type SlackMessage } from './status-message.js';

const ICON: Record<StepStatus, string> = {
  pending: ':white_circle:',
  awaiting_approval: ':lock:',
  approved: ':ballot_box_with_check:',
  running: ':hourglass_flowing_sand:',
  done: ':white_check_mark:',
  skipped: ':fast_forward:',
  failed: ':x:',
  not_run: ':heavy_minus_sign:',
};

const STATUS_LABEL: Record<Run['status'], string> = {
  running: 'RUNNING',
  awaiting_approval: 'WAITING FOR APPROVAL',
  done: 'DONE',
  failed: 'FAILED',
  cancelled: 'CANCELLED',
  rejected: 'REJECTED',
};

export const APPROVE_ACTION = 'medic_approve';
export const REJECT_ACTION = 'medic_reject';

export function encodeClick(v: ClickValue): string {
  return JSON.stringify({ r: v.runId, s: v.step, h: v.hash });
}

/** Parses a button value; anything that is not exactly what we put there is refused. */
export function decodeClick(value: unknown): ClickValue | null {
  if (typeof value !== 'string' || value.length > 300) return null;
  try {
    const o = JSON.parse(value) as { r?: unknown; s?: unknown; h?: unknown };
    if (typeof o.r !== 'string' || !/^r-[0-9a-f]{8}$/.test(o.r)) return null;
    if (typeof o.s !== 'number' || !Number.isInteger(o.s) || o.s < 0 || o.s > 100) return null;
    if (typeof o.h !== 'string' || !/^[0-9a-f]{64}$/.test(o.h)) return null;
    return { runId: o.r, step: o.s, hash: o.h };
  } catch {
    return null;
  }
}

const who = (p: string) => (p === '*' ? 'anyone in the channel' : p.startsWith('S') ? `<!subteam^${p}>` : `<@${p}>`);

/** The plan message: every step with its exact operation and outcome, the state it was planned against, and the buttons of the open gate. */
export function renderRun(run: Run): SlackMessage {
  const state = run.plannedState;
  const members = state.members
    .map((m) => `${m.idHex === state.leaderHex && m.reachable ? ':star: ' : ''}${m.name || '(unstarted)'} \`${m.idHex}\` ${m.learner ? 'learner' : 'voter'}, ${m.reachable ? 'reachable' : '*unreachable*'}`)
    .join(' · ');
  const gateStep = run.gate && run.records[run.gate.step]?.status === 'awaiting_approval' ? run.gate.step : null;
  const headline =
    run.status === 'awaiting_approval' && gateStep !== null
      ? `${STATUS_LABEL[run.status]} (step ${gateStep + 1})`
      : // The caveat's first clause ("etcd healthy, Kubernetes not yet") beside DONE: the rest is on the Ended line.
        run.ended?.caveat
        ? `${STATUS_LABEL[run.status]}: ${clip(run.ended.caveat.split(':')[0]!, 80)}`
        : STATUS_LABEL[run.status];

  const blocks: Record<string, unknown>[] = [
    { type: 'header', text: { type: 'plain_text', text: clip(`${run.title}: ${headline}`, 150) } },
    {
      type: 'section',
      text: {
        type: 'mrkdwn',
        text: clip(
          [
            `Run \`${run.runId}\` asked by <@${run.requestedBy}>${run.force ? ' · *FORCED* (target was healthy)' : ''}`,
            `*Planned against* (${state.at}): ${members}; leader \`${state.leaderHex ?? 'none'}\`, raft index ${state.raftIndex}, revision ${state.revision}`,
            run.rationale ? `*Why this plan:* ${run.rationale}` : '',
            `*Approvers:* ${run.approvers.map(who).join(', ') || 'nobody is configured (workspace.roles.approve)'}, never the requester. \`/etcd cancel ${run.runId}\` stops it between steps.`,
            run.ended ? `*Ended* ${run.ended.at}: ${run.ended.reason}` : '',
          ]
            .filter(Boolean)
            .join('\n'),
          3000,
        ),
      },
    },
    { type: 'divider' },
  ];

  run.steps.forEach((s, i) => {
    const rec = run.records[i]!;
    const outcome = rec.error ? `\n:x: ${rec.error}` : rec.summary ? `\n_${rec.summary}_` : '';
    const approved = rec.approvedBy ? `\napproved by <@${rec.approvedBy}> at ${rec.approvedAt}` : '';
    blocks.push({
      type: 'section',
      text: {
        type: 'mrkdwn',
        text: clip(`${ICON[rec.status]} *${i + 1}. ${s.title}*${s.destructive ? ' · :warning: destructive' : ''}\n\`${s.operation.replace(/`/g, "'")}\`${approved}${outcome}`, 3000),
      },
    });
    if (gateStep === i && run.gate) {
      const value = encodeClick({ runId: run.runId, step: i, hash: run.gate.hash });
      blocks.push({
        type: 'actions',
        block_id: `gate-${run.runId}-${i}-${run.gate.round}`,
        elements: [
          {
            type: 'button',
            action_id: APPROVE_ACTION,
            style: 'danger',
            text: { type: 'plain_text', text: clip(`Approve step ${i + 1}`, 75) },
            value,
            confirm: {
              title: { type: 'plain_text', text: 'Run a destructive step?' },
              text: { type: 'mrkdwn', text: clip(`${s.title} on ${run.cluster}. This changes the cluster; it is checked against the live state first.`, 300) },
              confirm: { type: 'plain_text', text: 'Approve and run' },
              deny: { type: 'plain_text', text: 'Back' },
            },
          },
          { type: 'button', action_id: REJECT_ACTION, text: { type: 'plain_text', text: 'Reject' }, value },
        ],
      });
    }
  });

  const gate = run.gate ? ` · gate ${run.gate.hash.slice(0, 12)} (round ${run.gate.round}) expires ${run.gate.expiresAt}` : '';
  blocks.push({ type: 'context', elements: [{ type: 'mrkdwn', text: clip(`plan ${run.planHash.slice(0, 12)}${gate}`, 2000) }] });
  return { text: `${run.title}: ${headline} (run ${run.runId})`, blocks };
}
