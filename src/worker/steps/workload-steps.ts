import { existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import type { ClusterConfig } from '../../config/schema.js';
import type { EtcdPool } from '../../etcd/pool.js';
import { KubeCluster } from '../../kube/client.js';
import { drainNode, podsOnNode, setUnschedulable } from '../../kube/drain.js';
import { createPdb, deletePdb, getPdb, pdbToRecreate } from '../../kube/pdbs.js';
import { createPod, deletePod, getPod, getPvc, isReady, waitPod, type Pod } from '../../kube/pods.js';
import { getStatefulSet, setTemplateFlag, templateFlag, type StatefulSet } from '../../kube/statefulsets.js';
import type { Logger } from '../../log.js';
import type { WorkloadPlace } from '../../platform/index.js';
import { WIPE_NOTHING_TO_DO, wipeScript } from '../../platform/statefulset.js';
import type { StepResult, StillOwns } from '../../runbook/engine.js';
import type { Run, StepOf } from '../../runbook/types.js';
import { viewCluster } from '../cluster-view.js';

export interface WorkloadStepContext {
  cluster: ClusterConfig;
  pool: EtcdPool;
  log: Logger;
  /** How long between two looks while waiting on a pod (default 500 ms). */
  pollMs?: number;
  /**
   * Asked right before each write to the admin cluster's API: null while this
   * worker still owns the step (for an undo: while the ended run still holds its
   * cluster), else why not. Absent: no check (a step run by hand in a test).
   */
  stillOwns?: StillOwns;
}

/** A write a step did not send: its worker no longer owns the step (or the ended run no longer holds its cluster). */
export class NotOwned extends Error {}

/**
 * Throws NotOwned unless this worker still owns its step. Called right before
 * each write to the API: a worker that lost its run lease while it waited (a
 * partition from Redis, a long pause) may find the step taken over by another
 * worker, which may have finished it and gone on: the run's later steps, or a
 * new run, may have changed the same object since, and a late write would undo
 * that (the template back on existing after the run set it to new, a node
 * cordoned again after the uncordon, a PDB deleted or made again).
 */
async function mayWrite(ctx: WorkloadStepContext, what: string): Promise<void> {
  const why = await ctx.stillOwns?.();
  if (why) throw new NotOwned(`${what} was not sent: ${why}. This worker writes nothing more for the step (another worker may run it now, or the run went on without it)`);
}

/** The same as a `beforeWrite` hook of src/kube. */
const writeHook = (ctx: WorkloadStepContext) => (what: string) => mayWrite(ctx, what);

/** The claim's volume sits on one node (WaitForFirstConsumer binding): the replica's node, whether or not its pod is bound now. */
const SELECTED_NODE = 'volume.kubernetes.io/selected-node';
const FLAG = 'initial-cluster-state';

function kubeOf(ctx: WorkloadStepContext): KubeCluster {
  return KubeCluster.forCluster(ctx.cluster);
}

/** The failed replica's node: where its claim's volume is, else where its pod is bound. Throws when neither says. */
async function replicaNode(k: KubeCluster, p: WorkloadPlace): Promise<string> {
  const pvc = await getPvc(k, p.namespace, p.claim);
  const pinned = pvc?.metadata?.annotations?.[SELECTED_NODE];
  if (pinned) return pinned;
  const pod = await getPod(k, p.namespace, p.pod);
  if (pod?.spec?.nodeName) return pod.spec.nodeName;
  throw new Error(`cannot tell the node of ${p.pod}: its claim ${p.claim} names none (${SELECTED_NODE}) and its pod is not bound to one`);
}

/**
 * Other pods of the same StatefulSet bound to the replica's node: other etcd
 * members. A drain evicts every pod of the node, and with the PDB deleted
 * nothing holds theirs back: a second member would go down with the failed
 * one (with three members, quorum lost). Returns their names.
 */
async function otherMembersOn(k: KubeCluster, p: WorkloadPlace, node: string): Promise<string[]> {
  const pods = await podsOnNode(k, node);
  return pods
    .filter((x) => x.metadata?.namespace === p.namespace && x.metadata?.name !== p.pod)
    .filter((x) => (x.metadata?.ownerReferences ?? []).some((r) => r.controller && r.kind === 'StatefulSet' && r.name === p.statefulSet))
    .map((x) => x.metadata!.name!)
    .sort();
}

function sharedNodeRefusal(p: WorkloadPlace, node: string, others: string[]): string {
  return `node ${node} of ${p.pod} also runs ${others.join(', ')} of statefulset ${p.namespace}/${p.statefulSet}: draining it would evict ${others.length === 1 ? 'that member' : 'those members'} too, with the PDB deleted nothing would hold ${others.length === 1 ? 'it' : 'them'} back, and etcd would lose a second member (with three, its quorum). Move ${others.join(', ')} to another node first (its claim's volume decides where it runs), or replace ${p.pod} by hand without draining the node.`;
}

/** Precheck: the admin cluster's API answers; the StatefulSet, the replica's pod, node and claim are there, and patching the template restarts nobody. */
export async function workloadCheck(ctx: WorkloadStepContext, step: StepOf<'workload-check'>): Promise<StepResult> {
  const p = step.params.place;
  const k = kubeOf(ctx);
  const sts = await getStatefulSet(k, p.namespace, p.statefulSet);
  if (!sts) throw new Error(`statefulset ${p.namespace}/${p.statefulSet} not found in the admin cluster (${k.where}): check the cluster's platform in the inventory`);
  const strategy = sts.spec?.updateStrategy?.type ?? 'RollingUpdate';
  // With RollingUpdate, changing the template would make the controller restart every member, one after another.
  if (strategy !== 'OnDelete') throw new Error(`statefulset ${p.namespace}/${p.statefulSet} has updateStrategy ${strategy}: patching its --${FLAG} would restart every etcd member in turn. Nothing was changed; set it to OnDelete first (as GKE on-prem ships it) or replace the member by hand.`);
  const flag = templateFlag(sts, p.container, FLAG);
  if (!flag) throw new Error(`container ${p.container} of statefulset ${p.namespace}/${p.statefulSet} has no --${FLAG}: this is not the layout the runbook knows. Nothing was changed.`);
  const pvc = await getPvc(k, p.namespace, p.claim);
  if (!pvc) throw new Error(`claim ${p.namespace}/${p.claim} of ${p.pod} not found: the runbook moves the data aside on it. Nothing was changed.`);
  const node = await replicaNode(k, p);
  const others = await otherMembersOn(k, p, node);
  if (others.length) throw new Error(`refusing to replace ${p.pod} this way: ${sharedNodeRefusal(p, node, others)} Nothing was changed.`);
  const pod = await getPod(k, p.namespace, p.pod);
  const pdb = await getPdb(k, p.namespace, p.pdb);
  const restarts = (pod?.status?.containerStatuses ?? []).reduce((n, c) => n + (c.restartCount ?? 0), 0);
  const podText = pod ? `pod ${p.pod} ${pod.status?.phase ?? 'unknown'}${isReady(pod) ? ', Ready' : ', not Ready'}, ${restarts} restarts` : `pod ${p.pod} absent`;
  const pdbText = pdb ? `PDB ${p.pdb} present (${pdb.spec?.minAvailable !== undefined ? `minAvailable ${pdb.spec.minAvailable}` : `maxUnavailable ${pdb.spec?.maxUnavailable}`}, ${pdb.status?.disruptionsAllowed ?? 0} disruptions allowed)` : `PDB ${p.pdb} absent`;
  return { summary: `admin cluster API ${k.where} answers; ${podText} on node ${node}; claim ${p.claim} ${pvc.status?.phase ?? 'unknown'}; ${pdbText}; statefulset ${p.statefulSet} OnDelete, --${FLAG}=${flag.value}` };
}

/** Where a run keeps the PDB it deleted, beside the run's backups: `<dir>/pdb-<name>.<run>.json`. */
export function savedPdbPath(dir: string, pdb: string, runId: string): string {
  return `${dir}/pdb-${pdb}.${runId}.json`;
}

/**
 * Saves the PDB's full object (to a file beside the run's backups, written
 * before the delete, and in the step's output on the run) and deletes it.
 * Looks first: a PDB already gone with its saved copy there was deleted by
 * this step before a crash, and is not saved again over that copy.
 */
export async function pdbDelete(ctx: WorkloadStepContext, step: StepOf<'pdb-delete'>, run: Run): Promise<StepResult> {
  const p = step.params.place;
  const k = kubeOf(ctx);
  const file = savedPdbPath(step.params.saveDir, p.pdb, run.runId);
  const pdb = await getPdb(k, p.namespace, p.pdb);
  if (!pdb) {
    if (existsSync(file)) return { skipped: true, summary: `PDB ${p.pdb} is already deleted; its saved copy is ${file}`, output: readFileSync(file, 'utf8') };
    return { skipped: true, summary: `there is no PDB ${p.namespace}/${p.pdb}: nothing to save or delete (none will be made at the end)` };
  }
  const saved = JSON.stringify(pdbToRecreate(pdb), null, 2);
  mkdirSync(dirname(file), { recursive: true });
  writeFileSync(`${file}.tmp`, saved, { mode: 0o600 });
  renameSync(`${file}.tmp`, file);
  // Only the object just saved: a late worker (its lease lost, the run long gone on) must not delete the
  // PDB that the run's last step, or someone, made again since.
  await mayWrite(ctx, `the delete of PDB ${p.namespace}/${p.pdb}`);
  const r = await deletePdb(k, p.namespace, p.pdb, pdb.metadata?.uid);
  if (r === 'another') throw new Error(`PDB ${p.namespace}/${p.pdb} was made again between the look and the delete (another object now): it was not deleted. Plan the replace again.`);
  return { summary: `PDB ${p.pdb} saved to ${file} and deleted`, output: saved };
}

/** The PDB the run saved: from its pdb-delete step's output on the run, else from the file. Null when it saved none. */
function savedPdb(run: Run, step: StepOf<'pdb-restore'>): Record<string, any> | null {
  const i = run.steps.findIndex((s) => s.kind === 'pdb-delete');
  const out = i >= 0 ? run.records[i]?.output : undefined;
  if (out?.trim().startsWith('{')) return JSON.parse(out);
  const file = savedPdbPath(step.params.saveDir, step.params.place.pdb, run.runId);
  return existsSync(file) ? JSON.parse(readFileSync(file, 'utf8')) : null;
}

/** Makes the saved PDB again; "already there" when one of its name exists. */
export async function pdbRestore(ctx: WorkloadStepContext, step: StepOf<'pdb-restore'>, run: Run): Promise<StepResult> {
  const p = step.params.place;
  const saved = savedPdb(run, step);
  if (!saved) return { skipped: true, summary: `this run saved no PDB ${p.pdb} (there was none): nothing to make again` };
  const k = kubeOf(ctx);
  await mayWrite(ctx, `the create of PDB ${p.namespace}/${p.pdb}`);
  const r = await createPdb(k, saved);
  if (r === 'created') return { summary: `PDB ${p.pdb} made again as it was saved` };
  // One of its name is there: put back by this run before, or made meanwhile by someone else (a person, an
  // operator of the admin cluster), maybe not as it was. Left as it is, but not called "as saved" when it is not.
  const live = await getPdb(k, p.namespace, p.pdb);
  if (!live || canonical(live.spec) === canonical(saved.spec)) return { skipped: true, summary: `PDB ${p.namespace}/${p.pdb} is already there: nothing done` };
  const file = savedPdbPath(step.params.saveDir, p.pdb, run.runId);
  const caveat = `PDB ${p.namespace}/${p.pdb} was made again by someone else, not as this run saved it (now ${budgetText(live.spec)}, saved ${budgetText(saved.spec)}): left as it is. To put the saved one back instead: \`kubectl -n ${p.namespace} replace --force -f ${file}\``;
  return { summary: `a PDB ${p.pdb} is there, but not the one the run saved: left as it is`, caveat };
}

/** JSON with sorted keys, to compare two specs whatever order their fields came in. */
function canonical(v: unknown): string {
  return JSON.stringify(v, (_k, x) => (x && typeof x === 'object' && !Array.isArray(x) ? Object.fromEntries(Object.entries(x).sort(([a], [b]) => a.localeCompare(b))) : x));
}

function budgetText(spec: Record<string, any> | undefined): string {
  const budget = spec?.minAvailable !== undefined ? `minAvailable ${spec.minAvailable}` : spec?.maxUnavailable !== undefined ? `maxUnavailable ${spec.maxUnavailable}` : 'no budget';
  return `${budget}, selector ${JSON.stringify(spec?.selector ?? {})}`;
}

export async function stsInitialState(ctx: WorkloadStepContext, step: StepOf<'sts-initial-state'>): Promise<StepResult> {
  const p = step.params.place;
  const r = await setTemplateFlag(kubeOf(ctx), p.namespace, p.statefulSet, p.container, FLAG, step.params.value, { beforeWrite: () => mayWrite(ctx, `the patch of statefulset ${p.namespace}/${p.statefulSet} to --${FLAG}=${step.params.value}`) });
  return r === 'patched'
    ? { summary: `statefulset ${p.statefulSet}: --${FLAG}=${step.params.value} in its template (OnDelete: no running member restarted)` }
    : { skipped: true, summary: `statefulset ${p.statefulSet} already has --${FLAG}=${step.params.value}: nothing done` };
}

export async function drain(ctx: WorkloadStepContext, step: StepOf<'drain'>, signal?: AbortSignal): Promise<StepResult> {
  const p = step.params.place;
  const k = kubeOf(ctx);
  const node = await replicaNode(k, p);
  // Looked again right before the cordon: a member may have been moved there since the precheck.
  const others = await otherMembersOn(k, p, node);
  if (others.length) throw new Error(`refusing to drain: ${sharedNodeRefusal(p, node, others)} Nothing was evicted; the node was not cordoned.`);
  const r = await drainNode(k, node, { timeoutMs: p.drainTimeoutSeconds * 1000, everyMs: ctx.pollMs ?? 500, signal, beforeWrite: writeHook(ctx) });
  const what = `${r.cordoned ? 'cordoned' : 'already cordoned'}; ${r.evicted.length ? `evicted ${r.evicted.join(', ')}` : 'nothing left to evict'}${r.skipped.length ? `; left ${r.skipped.join(', ')}` : ''}`;
  return { summary: `node ${node} drained: ${what}`, skipped: !r.cordoned && r.evicted.length === 0 };
}

/** The label that says which run made a utility pod. */
const RUN_LABEL = 'etcd-medic/run';

/** A utility pod's outcome, once it ended: moved (Succeeded), nothing left to move (exit 3), or failed; null while it runs. */
function utilityOutcome(pod: Pod): { kind: 'moved' | 'nothing' | 'failed'; exitCode?: number; message: string } | null {
  const term = pod.status?.containerStatuses?.[0]?.state?.terminated;
  const message = (term?.message ?? '').trim();
  if (pod.status?.phase === 'Succeeded') return { kind: 'moved', message };
  if (pod.status?.phase !== 'Failed') return null;
  return { kind: term?.exitCode === WIPE_NOTHING_TO_DO ? 'nothing' : 'failed', exitCode: term?.exitCode, message };
}

/**
 * Moves the replica's data aside on its claim with a utility pod bound to the
 * claim's node (spec.nodeName: the cordon does not keep it off). Refuses while
 * etcd still lists a started member of that name, or while the replica's pod
 * runs: only a removed member's data is moved.
 *
 * The pod is kept once it ended, and deleted by the uncordon (or by the run's
 * put-back when it ends before): a worker that dies after the pod did its work
 * and before the step is recorded leaves the pod's outcome in its status, and
 * the resumed step reads it there. Deleting it here would leave nothing in the
 * API to say what it did, and the resumed step would start a second pod on the
 * claim just to look. Of the ways to keep that record, this needs no right the
 * bot does not already have for the wipe (get and delete on pods): an
 * annotation on the claim would need `patch` on persistentvolumeclaims, which
 * also resizes volumes; the pod's log would need `get` on pods/log; a note in
 * Redis would let whoever can write Redis make the step skip the wipe.
 */
export async function wipeClaim(ctx: WorkloadStepContext, step: StepOf<'wipe-claim'>, run: Run, signal?: AbortSignal): Promise<StepResult> {
  const p = step.params.place;
  const k = kubeOf(ctx);
  const view = await viewCluster(ctx.cluster, ctx.pool);
  const still = view.report.members.find((m) => m.idHex && (m.name === p.pod || m.peerURLs.includes(step.params.peerUrl)));
  if (still) throw new Error(`refusing to move ${p.pod}'s data aside: etcd still lists it (${still.idHex}, ${still.started ? 'started' : 'not started'}). Nothing was changed.`);
  const replica = await getPod(k, p.namespace, p.pod);
  if (replica?.spec?.nodeName && replica.status?.phase === 'Running') throw new Error(`refusing to move ${p.pod}'s data aside: its pod runs on ${replica.spec.nodeName} (drain the node first). Nothing was changed.`);
  const node = await replicaNode(k, p);
  let pod = await getPod(k, p.namespace, p.utilityPod);
  if (pod && pod.metadata?.labels?.[RUN_LABEL] !== run.runId) throw new Error(`a pod ${p.namespace}/${p.utilityPod} exists that this run did not make: delete it or let it finish first. Nothing was changed.`);
  // This run's pod, already ended: an earlier execution of this step started it and stopped before recording.
  const before = pod && utilityOutcome(pod) ? pod : null;
  if (!pod) {
    await mayWrite(ctx, `the create of utility pod ${p.namespace}/${p.utilityPod}`);
    await createPod(k, p.namespace, {
      metadata: { name: p.utilityPod, namespace: p.namespace, labels: { [RUN_LABEL]: run.runId } },
      spec: {
        nodeName: node,
        restartPolicy: 'Never',
        containers: [
          {
            name: 'utility',
            image: p.utilityImage,
            command: ['sh', '-c', wipeScript(p.dataMountPath, run.runId)],
            terminationMessagePolicy: 'FallbackToLogsOnError',
            volumeMounts: [{ name: 'data', mountPath: p.dataMountPath }],
          },
        ],
        volumes: [{ name: 'data', persistentVolumeClaim: { claimName: p.claim } }],
      },
    });
  }
  pod = before ?? (await waitPod(k, p.namespace, p.utilityPod, { phases: ['Succeeded', 'Failed'] }, 120_000, ctx.pollMs ?? 500, signal).catch((err: Error) => {
    throw signal?.aborted ? new Error(`${err.message}; utility pod ${p.utilityPod} is left as it is (it may still be moving the data aside): \`kubectl -n ${p.namespace} logs ${p.utilityPod}\`, and \`kubectl -n ${p.namespace} delete pod ${p.utilityPod}\` once it has finished`) : err;
  }));
  const out = utilityOutcome(pod)!;
  const kept = `utility pod ${p.utilityPod} kept until the node is uncordoned`;
  const found = before ? `utility pod ${p.utilityPod} of this run had already ended (${pod.status?.phase}) when this step resumed; no second pod was started. ` : '';
  if (out.kind === 'nothing') {
    return { skipped: true, summary: `${found}nothing left to move on claim ${p.claim}: ${out.message.split('\n').pop()} (${kept})` };
  }
  if (out.kind === 'failed') {
    throw new Error(`${found}utility pod ${p.utilityPod} failed (exit ${out.exitCode ?? '?'}): ${out.message.slice(-500)}. It is left for a look: kubectl -n ${p.namespace} logs ${p.utilityPod}`);
  }
  return { skipped: !!before, summary: `${found}${p.pod}'s data on claim ${p.claim} moved aside to ${p.dataMountPath}/before-${run.runId} by utility pod ${p.utilityPod} on node ${node} (Succeeded; ${kept})` };
}

/**
 * Deletes this run's utility pod once it ended with the data moved aside (or
 * nothing left to move); "none" when there is none of this run's. A pod that
 * failed otherwise is left for a look, one still running is left to finish.
 */
async function deleteUtilityPod(ctx: WorkloadStepContext, k: KubeCluster, p: WorkloadPlace, runId: string): Promise<'deleted' | 'none' | { left: string }> {
  const pod = await getPod(k, p.namespace, p.utilityPod);
  if (!pod || pod.metadata?.labels?.[RUN_LABEL] !== runId) return 'none';
  const out = utilityOutcome(pod);
  if (!out) return { left: `utility pod ${p.namespace}/${p.utilityPod} still runs (it may still be moving the data aside): left as it is; \`kubectl -n ${p.namespace} logs ${p.utilityPod}\`, and delete it once it has finished` };
  if (out.kind === 'failed') return { left: `utility pod ${p.namespace}/${p.utilityPod} failed (exit ${out.exitCode ?? '?'}): left for a look; \`kubectl -n ${p.namespace} logs ${p.utilityPod}\`, then \`kubectl -n ${p.namespace} delete pod ${p.utilityPod}\`` };
  await mayWrite(ctx, `the delete of utility pod ${p.namespace}/${p.utilityPod}`);
  return (await deletePod(k, p.namespace, p.utilityPod)) === 'deleted' ? 'deleted' : 'none';
}

/** A run that ends after its wipe and before its uncordon: the utility pod the wipe kept is deleted. */
export async function undoWipeClaim(ctx: WorkloadStepContext, step: StepOf<'wipe-claim'>, run: Run): Promise<string | null> {
  const p = step.params.place;
  try {
    const r = await deleteUtilityPod(ctx, kubeOf(ctx), p, run.runId);
    if (r === 'none') return null;
    return r === 'deleted' ? `utility pod ${p.namespace}/${p.utilityPod} deleted (it had ended)` : `:warning: ${r.left}`;
  } catch (err) {
    if (err instanceof NotOwned) return `utility pod ${p.namespace}/${p.utilityPod} left as it is: ${err.message}`;
    return `:warning: could not delete utility pod ${p.namespace}/${p.utilityPod} (${(err as Error).message}): \`kubectl -n ${p.namespace} delete pod ${p.utilityPod}\` (it blocks the next run's wipe on this claim)`;
  }
}

/** Uncordons the replica's node and waits for its pod to run there again (made by the StatefulSet controller from the template). */
export async function uncordon(ctx: WorkloadStepContext, step: StepOf<'uncordon'>, run: Run, signal?: AbortSignal): Promise<StepResult> {
  const p = step.params.place;
  const k = kubeOf(ctx);
  const node = await replicaNode(k, p);
  // The wipe's pod, kept so that a resumed wipe could read what it did (see wipeClaim): its work is recorded now.
  const utility = await deleteUtilityPod(ctx, k, p, run.runId);
  const cleaned = utility === 'deleted' ? `; the wipe's utility pod ${p.utilityPod} deleted` : typeof utility === 'object' ? `; ${utility.left}` : '';
  // A waiting pod keeps the template it was made from (OnDelete): one made while the template said
  // `new` (before an earlier run put it back) would start the member with a new cluster's ID.
  // Not running, it is deleted, and the controller makes it again from the template as it is now.
  let remade = '';
  const waiting = await getPod(k, p.namespace, p.pod);
  const flag = waiting && templateFlag({ spec: { template: { spec: waiting.spec } } } as StatefulSet, p.container, FLAG);
  if (!waiting?.spec?.nodeName && flag?.value !== 'existing') {
    // The pod that starts will be made from the template as it is now: it must say `existing`. Someone's
    // patch (or a controller putting the StatefulSet back) may have set it to `new` since this run set it:
    // the member would then start a new cluster and never join. Refused before the node is uncordoned.
    const sts = await getStatefulSet(k, p.namespace, p.statefulSet);
    const now = sts && templateFlag(sts, p.container, FLAG);
    if (now?.value !== 'existing') {
      throw new Error(`refusing to uncordon node ${node}: ${p.pod}'s pod would be made from statefulset ${p.namespace}/${p.statefulSet}'s template, which says ${now ? `--${FLAG}=${now.value}` : `no --${FLAG}`} (changed after this run set it to existing, by someone or by a controller): the member would start a new cluster and never join. Nothing was done; the node stays cordoned. Find what changed the template, then plan the replace again.`);
    }
  }
  if (waiting && !waiting.spec?.nodeName && flag && flag.value !== 'existing') {
    await mayWrite(ctx, `the delete of ${p.namespace}/${p.pod}'s waiting pod`);
    await deletePod(k, p.namespace, p.pod);
    await waitPod(k, p.namespace, p.pod, { uidNot: waiting.metadata?.uid }, 30_000, ctx.pollMs ?? 500, signal);
    remade = `; its waiting pod had --${FLAG}=${flag.value} (made from an older template), so it was deleted and made again from the template`;
  }
  const r = await setUnschedulable(k, node, false, writeHook(ctx));
  const pod = await waitPod(k, p.namespace, p.pod, { phases: ['Running'] }, 120_000, ctx.pollMs ?? 500, signal);
  return { summary: `node ${node} ${r === 'changed' ? 'uncordoned' : 'was already schedulable'}; pod ${p.pod} Running on ${pod.spec?.nodeName}${remade}${cleaned}`, skipped: r === 'already' && !remade && utility !== 'deleted' };
}

/**
 * What a run that ends before its last step must not leave behind, for each of
 * the two steps that change the admin cluster: the StatefulSet back on
 * --initial-cluster-state=new, the saved PDB made again. Idempotent (says
 * "already" when the run put it back itself); a failure is a loud line with
 * the command that puts it back by hand.
 */
export async function undoInitialState(ctx: WorkloadStepContext, step: StepOf<'sts-initial-state'>): Promise<string | null> {
  if (step.params.value !== 'existing') return null;
  const p = step.params.place;
  try {
    const r = await setTemplateFlag(kubeOf(ctx), p.namespace, p.statefulSet, p.container, FLAG, 'new', { beforeWrite: () => mayWrite(ctx, `the patch of statefulset ${p.namespace}/${p.statefulSet} back to --${FLAG}=new`) });
    return r === 'patched' ? `statefulset ${p.namespace}/${p.statefulSet} set back to --${FLAG}=new` : `statefulset ${p.namespace}/${p.statefulSet} already on --${FLAG}=new`;
  } catch (err) {
    // Not a failure to put back: whoever freed the cluster put it back, and a new run may have set it since.
    if (err instanceof NotOwned) return `statefulset ${p.namespace}/${p.statefulSet} left as it is: ${err.message}`;
    return `:x: statefulset ${p.namespace}/${p.statefulSet} could NOT be set back to --${FLAG}=new (${(err as Error).message}). Do it by hand: \`kubectl -n ${p.namespace} edit statefulset ${p.statefulSet}\`, --${FLAG}=new`;
  }
}

/** A drained node is left cordoned (its replica's pod may not start as it is): said, with the command, not undone. */
export async function undoDrain(ctx: WorkloadStepContext, step: StepOf<'drain'>): Promise<string | null> {
  const p = step.params.place;
  try {
    const k = kubeOf(ctx);
    const node = await replicaNode(k, p);
    const n = await k.call((o) => k.core.readNode({ name: node }, o));
    if (!n.spec?.unschedulable) return null;
    return `:warning: node ${node} is left cordoned, ${p.pod}'s pod Pending: \`kubectl uncordon ${node}\` once ${p.pod} may start again (or plan the replace again)`;
  } catch (err) {
    return `:warning: could not look whether the node of ${p.pod} is still cordoned (${(err as Error).message}): \`kubectl get nodes\``;
  }
}

export async function undoPdbDelete(ctx: WorkloadStepContext, step: StepOf<'pdb-delete'>, run: Run): Promise<string | null> {
  const p = step.params.place;
  const file = savedPdbPath(step.params.saveDir, p.pdb, run.runId);
  try {
    const r = await pdbRestore(ctx, { ...step, kind: 'pdb-restore' }, run);
    return r.caveat ? `:warning: ${r.caveat}` : r.summary;
  } catch (err) {
    if (err instanceof NotOwned) return `PDB ${p.namespace}/${p.pdb} left as it is: ${err.message}`;
    return `:x: PDB ${p.namespace}/${p.pdb} could NOT be made again (${(err as Error).message}). Do it by hand: \`kubectl create -f ${file}\``;
  }
}
