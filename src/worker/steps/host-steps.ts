import { parse as parseYaml, stringify } from 'yaml';
import type { ClusterConfig } from '../../config/schema.js';
import type { StepResult } from '../../runbook/engine.js';
import { param } from '../../runbook/params.js';
import type { StepSpec } from '../../runbook/types.js';
import { sshExec, type SshTarget } from '../../ssh/exec.js';
import { quoteScript, sh } from '../../ssh/shell.js';

export interface HostStepContext {
  cluster: ClusterConfig;
  target(memberName: string): SshTarget;
}


/** Runs a bash script remotely; every value in it was quoted by `sh`. Non-zero exit is an error with the output. */
export async function runScript(target: SshTarget, script: string, opts: { input?: string; timeoutMs?: number } = {}) {
  const r = await sshExec(target, `bash -c ${quoteScript(script)}`, { input: opts.input, commandTimeoutMs: opts.timeoutMs ?? 60_000 });
  const out = `${r.stdout}${r.stderr ? `\n${r.stderr}` : ''}`.trim();
  if (r.code !== 0) throw new Error(`on ${target.host}: exit ${r.code}${r.signal ? ` (${r.signal})` : ''}: ${out.slice(0, 800)}`);
  return out;
}

/**
 * Stops the member the kubeadm way (its static-pod manifest moved out of the
 * kubelet's directory), confirms nothing listens on its client port any more,
 * and moves its data dir aside under a name tied to this run. Each part looks
 * first, so a retry never moves a second directory aside.
 */
export async function stopAndMoveAside(ctx: HostStepContext, step: StepSpec): Promise<StepResult> {
  const p = (k: string) => param(step, k);
  const script = moveAsideScript({ manifest: p('manifest'), manifestAside: p('manifestAside'), asideDir: p('asideDir'), dataDir: p('dataDir'), dataAside: p('dataAside'), clientHost: p('clientHost'), waitSeconds: 60 });
  const out = await runScript(ctx.target(step.host!), script, { timeoutMs: 90_000 });
  const nothingDone = /manifest already away/.test(out) && /already moved aside|no data dir/.test(out);
  return { summary: nothingDone ? 'already stopped with its data dir aside: nothing done' : `etcd stopped; data dir kept at ${p('dataAside')}`, output: out, skipped: nothingDone };
}

/**
 * The script that stops a member the kubeadm way and keeps its data: the
 * manifest moves out of the kubelet's directory, the client port must close
 * (bounded), the data dir moves aside under a name tied to the run. Each part
 * looks first, so running it twice never moves a second directory aside.
 */
export function moveAsideScript(p: { manifest: string; manifestAside: string; asideDir: string; dataDir: string; dataAside: string; clientHost: string; waitSeconds: number }): string {
  return [
    'set -eu',
    sh`mkdir -p ${p.asideDir}`,
    sh`if [ -e ${p.manifest} ]; then`,
    sh`  if [ -e ${p.manifestAside} ]; then echo both ${p.manifest} and ${p.manifestAside} exist, refusing to overwrite >&2; exit 3; fi`,
    sh`  mv ${p.manifest} ${p.manifestAside}; echo manifest moved to ${p.manifestAside}`,
    sh`else echo manifest already away from ${p.manifest}; fi`,
    sh`for i in $(seq 1 ${p.waitSeconds * 2}); do if ! (exec 3<>/dev/tcp/${p.clientHost}/2379) 2>/dev/null; then break; fi; sleep 0.5; done`,
    sh`if (exec 3<>/dev/tcp/${p.clientHost}/2379) 2>/dev/null; then echo etcd still listens on ${p.clientHost} port 2379 after ${p.waitSeconds} s >&2; exit 4; fi`,
    'echo "etcd is stopped (nothing listens on the client port)"',
    sh`if [ -e ${p.dataAside} ]; then echo data dir already moved aside to ${p.dataAside}`,
    sh`elif [ -e ${p.dataDir} ]; then mv ${p.dataDir} ${p.dataAside}; echo data dir moved to ${p.dataAside}`,
    sh`else echo no data dir at ${p.dataDir}; fi`,
  ].join('\n');
}

/** Sets (or adds) `--flag=value` in an etcd command line. */
export function setFlag(command: string[], flag: string, value: string): string[] {
  const out = withoutFlag(command, flag);
  out.push(`--${flag}=${value}`);
  return out;
}

/** Takes `--flag` and `--flag=…` out of an etcd command line. */
export function withoutFlag(command: string[], flag: string): string[] {
  return command.filter((a) => a !== `--${flag}` && !a.startsWith(`--${flag}=`));
}

/**
 * Another master's manifest made into this host's: its address, data dir and
 * pki dir replaced by this host's. For a member whose host had no manifest left.
 */
export function adaptManifest(text: string, from: { ip: string; dataDir: string; pkiDir: string }, to: { ip: string; dataDir: string; pkiDir: string }): string {
  const ip = new RegExp(`(?<![\\d.])${from.ip.replace(/\./g, '\\.')}(?![\\d])`, 'g');
  return text.split(from.dataDir).join(to.dataDir).split(from.pkiDir).join(to.pkiDir).replace(ip, to.ip);
}

/**
 * Writes the member's manifest back from the copy moved aside, with the flags a
 * member joining an existing cluster needs; the kubelet then starts etcd.
 */
export async function writeManifest(ctx: HostStepContext, step: StepSpec, liveInitialCluster: string): Promise<StepResult> {
  const p = (k: string) => param(step, k);
  if (liveInitialCluster !== p('initialCluster')) {
    throw new Error(`the member list changed since planning: it now gives --initial-cluster=${liveInitialCluster}, the plan said ${p('initialCluster')}`);
  }
  const target = ctx.target(step.host!);
  const current = await runScript(target, sh`if [ -e ${p('manifest')} ]; then cat ${p('manifest')}; fi`);
  let template = await runScript(target, sh`if [ -e ${p('manifestAside')} ]; then cat ${p('manifestAside')}; fi`);
  let source = p('manifestAside');
  if (!template && step.params.templateFrom) {
    // The host had no manifest left (a rebuilt or wiped master): start from the survivor's, adapted.
    const peer = ctx.target(p('templateFrom'));
    const theirs = await runScript(peer, sh`cat ${p('templateManifest')}`);
    template = adaptManifest(theirs, { ip: p('templateIp'), dataDir: p('templateDataDir'), pkiDir: p('templatePkiDir') }, { ip: p('targetIp'), dataDir: p('dataDir'), pkiDir: p('targetPkiDir') });
    source = `${p('templateFrom')}'s ${p('templateManifest')}, adapted`;
  }
  if (!template) {
    throw new Error(
      `no manifest to start ${p('name')} from: ${p('manifestAside')} does not exist (the host had no etcd manifest when it was stopped). Put the member's etcd manifest at that path (for example another master's, adapted to this host) and run the replace again.`,
    );
  }
  const doc = parseYaml(template) as { spec: { containers: { name: string; command: string[] }[] } };
  const container = doc.spec.containers.find((c) => c.name === 'etcd') ?? doc.spec.containers[0];
  if (!container?.command) throw new Error(`${p('manifestAside')} has no etcd container command`);
  let cmd = container.command.map(String);
  cmd = setFlag(cmd, 'name', p('name'));
  cmd = setFlag(cmd, 'initial-cluster', p('initialCluster'));
  cmd = setFlag(cmd, 'initial-cluster-state', 'existing');
  cmd = withoutFlag(cmd, 'force-new-cluster');
  container.command = cmd;
  const manifest = stringify(doc);
  if (current.trim() === manifest.trim()) return { skipped: true, summary: `${p('manifest')} is already written with state existing: nothing done` };
  if (current) throw new Error(`${p('manifest')} exists with other contents; refusing to overwrite it (move it away or check the host)`);

  // The new member must start from an empty data dir, or it would come up as the removed member.
  const tmp = `${p('manifest').replace(/\/[^/]+$/, '')}/.etcd.yaml.medic-tmp`;
  const out = await runScript(
    target,
    [
      'set -eu',
      sh`if [ -e ${p('dataDir')} ] && [ -n "$(ls -A ${p('dataDir')})" ]; then echo ${p('dataDir')} is not empty, refusing to start a removed member on old data >&2; exit 5; fi`,
      sh`cat > ${tmp}`,
      sh`mv ${tmp} ${p('manifest')}`,
      sh`echo wrote ${p('manifest')}`,
    ].join('\n'),
    { input: manifest },
  );
  return { summary: `manifest written from ${source} with --initial-cluster-state=existing; the kubelet starts etcd`, output: `${out}\n--initial-cluster=${p('initialCluster')}` };
}
