import { z } from 'zod';
import type { ClusterConfig, MemberConfig } from '../config/schema.js';
import { platformOf } from '../platform/index.js';
import { viewCluster } from '../worker/cluster-view.js';
import { writeManifest } from '../worker/steps/host-steps.js';
import { CHECKED_IO, CHECKED_READ, LOCKED, uniq } from './host-tools.js';
import { sh } from '../ssh/shell.js';
import { sshText } from './plan-text.js';
import type { Step, StepDefinition } from './types.js';

const params = z.object({
  config: z.string(),
  configAside: z.string(),
  asideDir: z.string(),
  name: z.string(),
  peerUrl: z.string(),
  initialCluster: z.string(),
  dataDir: z.string(),
  // A host with no config left starts from another member's, adapted: where it is and what to replace.
  templateFrom: z.string().optional(),
  templateConfig: z.string().optional(),
  templateIp: z.string().optional(),
  templateDataDir: z.string().optional(),
  templatePkiDir: z.string().optional(),
  targetIp: z.string().optional(),
  targetPkiDir: z.string().optional(),
  /** The host's own config (or its copy aside) only: an operator writes each master's (OpenShift 4.4+), so no peer's is adapted. */
  ownConfigOnly: z.boolean().optional(),
});
export type WriteManifestStep = Step<'write-manifest', z.infer<typeof params>> & { host: string };

interface Place {
  config: string;
  configAside: string;
  asideDir: string;
  dataDir: string;
  pkiDir: string;
}

/** Whose config to adapt when this host has none (see Platform.adaptConfig). */
interface Template {
  member: MemberConfig;
  place: Pick<Place, 'config' | 'dataDir' | 'pkiDir'>;
}

type WriteManifestInput = { cluster: ClusterConfig; member: MemberConfig; place: Omit<Place, 'pkiDir'>; peerUrl: string; initialCluster: string } & (
  | { runbook: 'replace' }
  /** A host the replace found rebuilt (no config of its own): its config is built from a healthy peer's. */
  | { runbook: 'replace'; template: Template; place: Place; rebuilt: true }
  | { runbook: 'restore-quorum'; /** whose config to adapt when this host has none left */ template: Template; place: Place }
);

/** The member's config written back with the flags of a member joining an existing cluster, and etcd started the platform's way. */
export const writeManifestStep = {
  kind: 'write-manifest',
  params,
  spec(i: WriteManifestInput): WriteManifestStep {
    const { member: m, place: f } = i;
    const platform = platformOf(i.cluster);
    // 4.4+'s etcd-pod.yaml is written by the etcd operator for one node (its NODE_<node>_ variables, its certificates): a peer's would start etcd as the peer.
    const ownConfigOnly = platform.etcdOperator !== null;
    const template = 'template' in i && !ownConfigOnly ? i : null;
    const adapted = template && `${template.template.member.name}'s ${platform.configNoun} (${template.template.place.config} on ${sshText(i.cluster, template.template.member.name)}) adapted to ${m.host}: name, advertise and listen URLs, data dir, certificate paths`;
    const from = !template ? `from ${f.configAside}` : 'rebuilt' in template ? `from ${adapted}` : `from ${f.configAside} (or, if it had none, from ${adapted})`;
    const base = { config: f.config, configAside: f.configAside, asideDir: f.asideDir, name: m.name, peerUrl: i.peerUrl, initialCluster: i.initialCluster, dataDir: f.dataDir };
    return {
      kind: 'write-manifest',
      title: i.runbook === 'replace' ? `Start etcd on ${m.name} with state "existing"` : `Start ${m.name} with state "existing"`,
      destructive: false,
      host: m.name,
      operation: `on ${sshText(i.cluster, m.name)}: write ${f.config} ${from}, with --initial-cluster-state=existing --initial-cluster=${i.initialCluster}; ${platform.startText('start')} on an empty ${f.dataDir}`,
      params: !template
        ? { ...base, ...(ownConfigOnly ? { ownConfigOnly } : {}) }
        : {
            ...base,
            templateFrom: template.template.member.name,
            templateConfig: template.template.place.config,
            templateIp: template.template.member.host,
            templateDataDir: template.template.place.dataDir,
            templatePkiDir: template.template.place.pkiDir,
            targetIp: m.host,
            targetPkiDir: template.place.pkiDir,
          },
    };
  },
  async execute(ctx, step) {
    const view = await viewCluster(ctx.cluster, ctx.pool);
    // The exact --initial-cluster `member add` prints: every member by name, the new one by the name it will take.
    const { peerUrl, name } = step.params;
    const initial = view.report.members
      .map((m) => `${m.started ? m.name : m.peerURLs.includes(peerUrl) ? name : '(unstarted)'}=${m.peerURLs[0]}`)
      .sort()
      .join(',');
    return writeManifest(ctx.host, step, initial, ctx.leaseLost);
  },
  hosts: {
    tools: uniq([...LOCKED, 'ls', ...CHECKED_IO]),
    // The template member's config is read (with cat) when the host has none left to start from.
    members: (step) => [{ member: step.host }, ...(step.params.templateFrom ? [{ member: step.params.templateFrom, tools: CHECKED_READ }] : [])],
    layout: (step) => {
      const { config, configAside, name } = step.params;
      // OpenShift 4.4+: the etcd operator writes each master's etcd-pod.yaml for that node, so another master's is not adapted.
      if (step.params.ownConfigOnly) {
        return [
          sh`if [ ! -e ${config} ] && [ ! -e ${configAside} ]; then echo "layout:"${name}"'s host has no "${config}": on OpenShift 4.4+ the etcd operator writes each master's etcd-pod.yaml for that node (its NODE_<node>_ variables and certificates), so another master's is not adapted. Put "${name}"'s own back at "${config}" (a backup's, or the operator's copy under /etc/kubernetes/static-pod-resources/etcd-pod-<revision>/), then ask again"; fi`,
        ];
      }
      // Planned on a host that had its config: a host rebuilt since (same SSH host key) has none to start from, which the
      // step would find only after the member was removed and added again. Looked at before every destructive step.
      if (step.params.templateFrom) return [];
      return [
        sh`if [ ! -e ${config} ] && [ ! -e ${configAside} ]; then echo "layout:there is no etcd config at "${config}" (nor the copy this run keeps, "${configAside}"): the host had one when the replace was planned, so it looks rebuilt since; nothing would start the new member there. Ask for the replace again: its plan then builds the config from a healthy peer's"; fi`,
      ];
    },
  },
} satisfies StepDefinition<'write-manifest'>;
