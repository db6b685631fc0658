import type { Run } from '../runbook/types.js';
import type { LeftBehind } from './types.js';

/** A member a step stopped the platform's way: its config and data dir, and where the run keeps them. */
interface Stopped {
  name: string;
  config: string;
  configAside: string;
  dataDir: string;
  dataAside: string;
}

const FINISHED = ['done', 'skipped'];

/** Whether a step after `index` wrote the member's config again and so started it (a grow-back's write, a restore's). */
function startedAgain(run: Run, index: number, name: string): boolean {
  return run.steps.some((s, i) => i > index && FINISHED.includes(run.records[i]?.status ?? '') && ((s.kind === 'write-manifest' && s.host === name) || (s.kind === 'restore-snapshot' && s.params.name === name)));
}

/**
 * What a run that ends early leaves of the members one of its steps stopped
 * (stop-and-move-aside, fence) and no later step started again: where their
 * config and data are, and what carries on or goes back. One line for the
 * thread; null when every member it stopped runs again (or it stopped none).
 */
export function stoppedLeftBehind(run: Run, index: number, members: Stopped[], untouched?: (error: string) => string[]): LeftBehind | null {
  const status = run.records[index]?.status ?? '';
  if (!['done', 'skipped', 'running', 'failed'].includes(status)) return null;
  const error = run.records[index]?.error ?? '';
  // Refused before it changed anything on the host (etcd found still running, the lock busy). A step on several
  // hosts says which (`untouched`): one host's refusal does not make the others' stop unsaid.
  const asIs = status !== 'failed' ? [] : untouched ? untouched(error) : /refusing to fence|nothing was done by this one/.test(error) ? members.map((m) => m.name) : [];
  const left = members.filter((m) => !asIs.includes(m.name) && !startedAgain(run, index, m.name));
  if (left.length === 0) return null;
  const names = left.map((m) => m.name).join(', ');
  const may = FINISHED.includes(status) ? '' : ' (its step did not finish: each may be stopped, or still running)';
  const where = left.map((m) => `${m.name}: ${m.config} kept at ${m.configAside}, data at ${m.dataAside}`).join('; ');
  const cluster = run.cluster;
  if (run.runbook === 'restore') {
    const back = left.map((m) => `on ${m.name} \`test ! -e ${m.config} && mv -T ${m.dataAside} ${m.dataDir} && mv ${m.configAside} ${m.config}\``).join('; ');
    return { line: `etcd stopped by this run and not started again on ${names}${may}: ${where}. To go back to the data from before the restore (every member, never only some): ${back}; or ask for the restore again` };
  }
  if (run.runbook === 'restore-quorum') {
    // Once the survivor leads a new cluster, quorum holds: each fenced member comes back by a replace, not another restore-quorum.
    const survivorUp = run.steps.some((s, i) => i > index && FINISHED.includes(run.records[i]?.status ?? '') && (s.kind === 'force-new-cluster' || (s.kind === 'restore-snapshot' && !s.params.initialCluster)));
    const next = survivorUp ? left.map((m) => `\`/etcd replace ${m.name} ${cluster}\``).join(', ') : `\`/etcd restore-quorum ${cluster}\``;
    return { line: `etcd of ${names} fenced by this run and not started again${may}: ${where}. Not to be started on that data${survivorUp ? ' now that the survivor runs as a new cluster' : ' once the survivor runs as a new cluster'} (cluster ID mismatch): ${next} carries on` };
  }
  return { line: `etcd of ${names} stopped by this run and not started again${may}: ${where}. \`/etcd replace ${left[0]!.name} ${cluster}\` again carries on from here` };
}
