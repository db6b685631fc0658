import { PatchStrategy, setHeaderOptions, type V1Container, type V1StatefulSet } from '@kubernetes/client-node';
import type { KubeCluster } from './client.js';
import { KubeError } from './errors.js';

export type StatefulSet = V1StatefulSet;

export async function getStatefulSet(k: KubeCluster, namespace: string, name: string): Promise<StatefulSet | null> {
  try {
    return await k.call((o) => k.apps.readNamespacedStatefulSet({ name, namespace }, o));
  } catch (err) {
    if (err instanceof KubeError && err.kind === 'not-found') return null;
    throw err;
  }
}

/** Where a `--flag=value` entry sits in a template's container: its command or its args, and the index. */
export interface FlagPlace {
  container: number;
  list: 'command' | 'args';
  index: number;
  value: string;
}

/** A flag of a container of the StatefulSet's pod template (`--initial-cluster-state=new`), or null when the container does not set it. */
export function templateFlag(sts: StatefulSet, container: string, flag: string): FlagPlace | null {
  const containers: V1Container[] = sts.spec?.template?.spec?.containers ?? [];
  const ci = containers.findIndex((c) => c.name === container);
  if (ci < 0) return null;
  for (const list of ['args', 'command'] as const) {
    const entries = containers[ci]![list] ?? [];
    const index = entries.findIndex((a) => a.startsWith(`--${flag}=`));
    if (index >= 0) return { container: ci, list, index, value: entries[index]!.slice(flag.length + 3) };
  }
  return null;
}

/**
 * Sets a flag in the pod template with a JSON patch whose `test` ops check the
 * entry it replaces and the StatefulSet's `metadata.generation` as read, so a
 * template changed meanwhile is refused (422) instead of overwritten; "already"
 * when the flag has the value (a step run again).
 *
 * The value's test alone lets a late write through once the value is back where
 * it was (new → existing → new by the run that went on: a late `new → existing`
 * matches again). The generation counts changes of the spec only, so it pins the
 * write to the spec as read, and, unlike a resourceVersion precondition, it does
 * not move when the controller writes the status (which it does all the time).
 * `beforeWrite` runs between the read and the patch (the step's check that it
 * still owns its step): a change made after that check still fails the test.
 */
export async function setTemplateFlag(k: KubeCluster, namespace: string, name: string, container: string, flag: string, value: string, opts: { beforeWrite?: () => Promise<void> } = {}): Promise<'patched' | 'already'> {
  const sts = await getStatefulSet(k, namespace, name);
  if (!sts) throw new KubeError('not-found', `statefulset ${namespace}/${name} not found`, 404);
  const at = templateFlag(sts, container, flag);
  if (!at) throw new KubeError('error', `statefulset ${namespace}/${name}: container ${container} has no --${flag} in its command or args`);
  if (at.value === value) return 'already';
  await opts.beforeWrite?.();
  const path = `/spec/template/spec/containers/${at.container}/${at.list}/${at.index}`;
  const generation = sts.metadata?.generation;
  const body = [
    ...(generation !== undefined ? [{ op: 'test', path: '/metadata/generation', value: generation }] : []),
    { op: 'test', path, value: `--${flag}=${at.value}` },
    { op: 'replace', path, value: `--${flag}=${value}` },
  ];
  try {
    await k.call((o) => k.apps.patchNamespacedStatefulSet({ name, namespace, body }, setHeaderOptions('Content-Type', PatchStrategy.JsonPatch, o)));
  } catch (err) {
    if (err instanceof KubeError && err.status === 422) {
      throw new KubeError('conflict', `statefulset ${namespace}/${name} changed between the look and the patch (its spec is no longer generation ${generation ?? '?'} with --${flag}=${at.value}): --${flag}=${value} was not written`, 422);
    }
    throw err;
  }
  return 'patched';
}
