import type { StepResult } from '../../runbook/engine.js';
import { sh } from '../../ssh/shell.js';
import type { StepOf } from '../../steps/types.js';
import { keepCopyLine, lockWaitSeconds, readRemote, runScript, writeRemote, type HostStepContext } from './host-steps.js';
import { memberLockPath, underMemberLock, type MemberLock } from './member-lock.js';

const same = (a: string[], b: string[]) => a.length === b.length && a.every((x, i) => x === b[i]);

/**
 * Rewrites the files on one master that name etcd's members (master-config.yaml,
 * etcd.conf's ETCD_INITIAL_CLUSTER, flanneld) to name exactly the current
 * members, each original kept aside under the run's name, then restarts what
 * reads them (the API server). A file that no longer says what the plan saw
 * is refused, not overwritten; one already rewritten is left as it is, and
 * what reads it is still restarted (a worker may have died in between).
 */
export async function rewriteReferences(ctx: HostStepContext, step: StepOf<'rewrite-references'>, runId: string, signal?: AbortSignal): Promise<StepResult> {
  const m = ctx.cluster.members.find((x) => x.name === step.host);
  if (!m) throw new Error(`member ${step.host} is not in ${ctx.cluster.name}'s inventory`);
  const target = ctx.target(m.name);
  const refs = ctx.platform.references(m);
  const lock: MemberLock = { path: memberLockPath(step.params.asideDir), waitSeconds: lockWaitSeconds(ctx.cluster) };
  const out: string[] = [];
  const applies = new Map<string, string[]>();
  for (const f of step.params.files) {
    const ref = refs.find((r) => r.path === f.path);
    if (!ref?.rewrite) throw new Error(`${f.path} is not a file this platform rewrites on ${m.name} (the inventory changed since planning?): plan again`);
    const text = await readRemote(target, f.path, signal);
    if (text === null) throw new Error(`${f.path} is gone from ${m.name} since planning: nothing rewritten there; plan again`);
    const now = ref.read(text) ?? [];
    const aside = `${step.params.asideDir}/${f.path.split('/').pop()}.${runId}`;
    if (same(now, f.to)) {
      out.push(`${f.path} already names ${f.to.join(', ')}: not rewritten`);
    } else if (!same(now, f.from)) {
      throw new Error(`${f.path} on ${m.name} changed since planning: it names ${now.join(', ') || 'nothing'}, the plan saw ${f.from.join(', ') || 'nothing'}. Nothing was rewritten there; plan again`);
    } else {
      // Whole or not at all: a copy cut short by a dying worker would be kept as "the original".
      await runScript(target, underMemberLock(lock, [sh`mkdir -p ${step.params.asideDir}`, keepCopyLine(f.path, aside, { preserve: true })].join('\n')), { timeoutMs: 60_000 + lock.waitSeconds * 1000, signal });
      out.push(await writeRemote(target, f.path, ref.rewrite(text, f.to), [], { lock, signal }));
      out.push(`${f.path}: ${f.what} now ${f.to.join(', ')} (the original kept at ${aside})`);
    }
    if (ref.apply) applies.set(ref.apply.text, ref.apply.lines);
  }
  for (const [text, lines] of applies) {
    out.push(await runScript(target, underMemberLock(lock, lines.join('\n')), { timeoutMs: 180_000 + lock.waitSeconds * 1000, signal }));
    out.push(`then: ${text}`);
  }
  return { summary: `${step.params.files.map((f) => f.what).join(', ')} on ${m.name} name the current members${applies.size ? `; ${[...applies.keys()].join('; ')}` : ''}`, output: out.join('\n') };
}
