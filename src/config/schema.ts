import { z } from 'zod';

// Names end up in shell commands and file names on master hosts, so they are
// restricted to what etcd and Kubernetes accept for a member or node name.
export const NAME_PATTERN = /^[a-z0-9]([a-z0-9.-]{0,61}[a-z0-9])?$/;
const name = z.string().regex(NAME_PATTERN, 'a lowercase DNS-style name (a-z, 0-9, "-", ".")');

// Paths reach shell commands on the hosts; only plain absolute paths are allowed.
const absolutePath = z
  .string()
  .regex(/^\/[A-Za-z0-9._/-]*$/, 'an absolute path of letters, digits, ".", "_", "-" and "/"')
  .refine((p) => !p.split('/').includes('..'), 'expected a path without ".."');

// Where the bot finds a cluster's Kubernetes API: a kubeconfig file, or "in-cluster" when it runs
// in a pod of that cluster (its service account token and CA, KUBERNETES_SERVICE_HOST/PORT).
export const IN_CLUSTER = 'in-cluster';
const kubeconfig = z
  .string()
  .regex(/^(in-cluster|\/[A-Za-z0-9._/-]*)$/, 'the absolute path of a kubeconfig file, or "in-cluster"')
  .refine((p) => !p.split('/').includes('..'), 'expected a path without ".."');

const url = z.string().regex(/^https?:\/\/[A-Za-z0-9.-]+(:\d+)?$/, 'a URL like https://10.0.0.1:2379');
const host = z.string().regex(/^[A-Za-z0-9.-]+$/, 'a host name or IPv4 address');
const fingerprint = z
  .string()
  .regex(/^SHA256:[A-Za-z0-9+/]{43}$/, 'an OpenSSH fingerprint like SHA256:… (as `ssh-keygen -lf` prints it)');

// Slack user IDs (U…/W…) and user-group IDs (S…); "*" means everyone in an allowed channel.
const principal = z.string().regex(/^(\*|[UWS][A-Z0-9]{2,})$/, 'a Slack user ID (U…), user-group ID (S…) or "*"');

// A systemd unit name, as it reaches `systemctl` on the hosts.
const unitName = z.string().regex(/^[A-Za-z0-9][A-Za-z0-9@._-]{0,100}$/, 'a systemd unit name like etcd or atomic-openshift-master-api');

// Per-member overrides of the platform's paths (a host laid out differently from the others).
const hostPaths = {
  manifestsDir: absolutePath.optional(),
  dataDir: absolutePath.optional(),
  pkiDir: absolutePath.optional(),
  confFile: absolutePath.optional(),
  manifestFile: z.string().regex(/^[A-Za-z0-9._-]+\.yaml$/, 'a file name like etcd-member.yaml').optional(),
  masterConfig: absolutePath.optional(),
  flanneldConfig: absolutePath.optional(),
  // The kubelet's client certificate, its kubeconfig and the bootstrap kubeconfig it bootstraps with (/etcd kubelets renew).
  kubeletCert: absolutePath.optional(),
  kubeletConfig: absolutePath.optional(),
  kubeletBootstrapConfig: absolutePath.optional(),
};

// Where the kubelet keeps its credentials on a host, and its unit: every profile has one.
const kubeletDefaults = (d: { cert: string; config: string; bootstrap: string; unit: string }) => ({
  kubeletCert: absolutePath.default(d.cert),
  kubeletConfig: absolutePath.default(d.config),
  kubeletBootstrapConfig: absolutePath.default(d.bootstrap),
  kubeletUnit: unitName.default(d.unit),
});
const KUBEADM_KUBELET = { cert: '/var/lib/kubelet/pki/kubelet-client-current.pem', config: '/etc/kubernetes/kubelet.conf', bootstrap: '/etc/kubernetes/bootstrap-kubelet.conf', unit: 'kubelet' };

// How etcd runs on the masters: one entry per profile in src/platform.
const platform = z.discriminatedUnion('kind', [
  z
    .object({
      kind: z.literal('kubeadm'),
      manifestsDir: absolutePath.default('/etc/kubernetes/manifests'),
      dataDir: absolutePath.default('/var/lib/etcd'),
      pkiDir: absolutePath.default('/etc/kubernetes/pki/etcd'),
      ...kubeletDefaults(KUBEADM_KUBELET),
    })
    .strict(),
  // etcd as a systemd unit reading its flags from an EnvironmentFile (OpenShift 3.x, etcd installed as a service).
  z
    .object({
      kind: z.literal('systemd'),
      unit: unitName.default('etcd'),
      confFile: absolutePath.default('/etc/etcd/etcd.conf'),
      dataDir: absolutePath.default('/var/lib/etcd'),
      pkiDir: absolutePath.default('/etc/etcd'),
      // The API server's units, stopped while a snapshot replaces etcd's data (OpenShift 3 before 3.10).
      apiserverUnits: z.array(unitName).default(['atomic-openshift-master-api']),
      // The master configuration that lists etcd's client URLs (etcdClientInfo.urls).
      masterConfig: absolutePath.default('/etc/origin/master/master-config.yaml'),
      // flanneld's settings (FLANNEL_ETCD_ENDPOINTS), where flannel keeps its network in etcd.
      flanneldConfig: absolutePath.default('/etc/sysconfig/flanneld'),
      // OpenShift 3.10+ nodes: the node service runs the kubelet; its certificates under /etc/origin/node.
      ...kubeletDefaults({ cert: '/etc/origin/node/certificates/kubelet-client-current.pem', config: '/etc/origin/node/node.kubeconfig', bootstrap: '/etc/origin/node/bootstrap.kubeconfig', unit: 'atomic-openshift-node' }),
    })
    .strict(),
  // OpenShift 4: etcd a static pod whose container runs a /bin/sh -c script ending in `exec etcd …`, flags on that
  // line and in the container's env. The manifest is etcd-member.yaml on 4.1–4.3, etcd-pod.yaml from 4.4.
  z
    .object({
      kind: z.literal('openshift4'),
      manifestsDir: absolutePath.default('/etc/kubernetes/manifests'),
      manifestFile: z.string().regex(/^[A-Za-z0-9._-]+\.yaml$/, 'a file name like etcd-member.yaml').default('etcd-member.yaml'),
      dataDir: absolutePath.default('/var/lib/etcd'),
      pkiDir: absolutePath.default('/etc/ssl/etcd'),
      // The other control-plane static pods, stopped while a snapshot replaces etcd's data (as the seed's restore script does).
      controlPlaneManifests: z
        .array(z.string().regex(/^[A-Za-z0-9._-]+\.yaml$/, 'a file name like kube-apiserver-pod.yaml'))
        .default(['kube-scheduler-pod.yaml', 'kube-controller-manager-pod.yaml', 'kube-apiserver-pod.yaml']),
      // RHCOS: the kubelet bootstraps from /etc/kubernetes/kubeconfig into /var/lib/kubelet (the seed's kubelet recovery).
      ...kubeletDefaults({ cert: '/var/lib/kubelet/pki/kubelet-client-current.pem', config: '/var/lib/kubelet/kubeconfig', bootstrap: '/etc/kubernetes/kubeconfig', unit: 'kubelet' }),
    })
    .strict(),
  // etcd as a StatefulSet in an admin cluster (GKE on-prem kubeception): no SSH, everything through that cluster's API.
  z
    .object({
      kind: z.literal('statefulset'),
      // The user cluster's namespace in the admin cluster (USER_CLUSTER_NAME), and the objects there.
      namespace: name,
      statefulSet: name.default('kube-etcd'),
      container: name.default('kube-etcd'),
      pdb: name.default('kube-etcd-pdb'),
      // The StatefulSet's volumeClaimTemplate of etcd's data: the claim of pod P is `<claimTemplate>-<P>`.
      claimTemplate: name.default('data'),
      // Where etcd's pods mount that claim (their --data-dir), and where the utility pod mounts it.
      dataMountPath: absolutePath.default('/var/lib/etcd'),
      utilityImage: z.string().regex(/^[A-Za-z0-9][A-Za-z0-9._/:@-]{0,250}$/, 'an image reference like busybox:1.36').default('busybox:1.36'),
      // How long the drain of the failed replica's node may take before the step gives up.
      drainTimeoutSeconds: z.number().int().min(5).max(3600).default(300),
    })
    .strict(),
]);

const ssh = z
  .object({
    port: z.number().int().min(1).max(65535).default(22),
    user: z.string().regex(/^[a-z_][a-z0-9_-]{0,31}$/, 'a Unix user name'),
    keyFile: absolutePath,
    hostKeyFingerprint: fingerprint,
  })
  .strict();

// A worker node: its name as Kubernetes knows it, SSH access, and where its kubelet's files are when not where the platform says.
const node = z
  .object({
    name,
    host,
    ssh,
    kubeletCert: absolutePath.optional(),
    kubeletConfig: absolutePath.optional(),
    kubeletBootstrapConfig: absolutePath.optional(),
  })
  .strict();

const member = z
  .object({
    name,
    host,
    // Required on every platform that reaches its hosts (see the cluster check below); a statefulset cluster has none.
    ssh: ssh.optional(),
    ...hostPaths,
    // OpenShift 4.1–4.3: the member's etcd DNS name (etcd-N.<cluster domain>), which names its certificates
    // (system:etcd-peer:<it>.crt). Without it, learned from the master's /run/etcd/environment, its peer URL or its files.
    etcdDnsName: name.optional(),
  })
  .strict();

const cluster = z
  .object({
    name,
    etcd: z
      .object({
        endpoints: z.array(url).min(1),
        tls: z.object({ ca: absolutePath, cert: absolutePath, key: absolutePath }).strict().optional(),
        callTimeoutMs: z.number().int().min(100).max(60_000).default(2000),
        lagWarnEntries: z.number().int().min(1).default(1000),
        quotaBytes: z.number().int().min(1).default(2 * 1024 ** 3),
        // How long a step waits for a stopped member's etcd to be gone before it refuses to move its data dir.
        stopWaitSeconds: z.number().int().min(1).max(600).default(60),
        // The deadline of one member's defragment (and of the compaction before it): a large database blocks it for a while.
        defragTimeoutSeconds: z.number().int().min(5).max(3600).default(300),
      })
      .strict(),
    platform: platform.default({
      kind: 'kubeadm',
      manifestsDir: '/etc/kubernetes/manifests',
      dataDir: '/var/lib/etcd',
      pkiDir: '/etc/kubernetes/pki/etcd',
      kubeletCert: KUBEADM_KUBELET.cert,
      kubeletConfig: KUBEADM_KUBELET.config,
      kubeletBootstrapConfig: KUBEADM_KUBELET.bootstrap,
      kubeletUnit: KUBEADM_KUBELET.unit,
    }),
    members: z.array(member).min(1),
    // Kubernetes nodes beyond the masters (workers), reached over SSH like the masters: what
    // `/etcd kubelets renew` works on, besides the masters (which are nodes too).
    nodes: z.array(node).default([]),
    kubeconfig: kubeconfig.optional(),
    // The API load balancer in front of the masters, looked at after a replace: its URL (default: the kubeconfig's
    // server) and the backends its pool holds, as the operators configured it (host:port, as in haproxy's `server`
    // lines). The bot cannot read an outside load balancer's config: without this list it can only probe through it.
    apiLoadBalancer: z
      .object({
        url: url.optional(),
        backends: z.array(z.string().regex(/^(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9.-]+):\d{1,5}$/, 'host:port of a backend, as the load balancer lists it')).optional(),
      })
      .strict()
      .optional(),
    // How long the last step of a restore waits for kube-apiserver /readyz on every master and the
    // control-plane nodes Ready before the run ends "etcd healthy, Kubernetes not yet".
    kubeReadyWaitSeconds: z.number().int().min(0).max(1800).default(180),
    // A proactive watch (off unless set): a worker checks status every intervalSeconds and posts to
    // channel when the verdict or the diagnosis changes, with the diagnosis and its buttons.
    watch: z
      .object({
        intervalSeconds: z.number().int().min(1).max(86_400),
        channel: z.string().regex(/^[CG][A-Z0-9]{2,}$/, 'a Slack channel ID (C…)'),
      })
      .strict()
      .optional(),
  })
  .strict();

const roles = z
  .object({
    read: z.array(principal).default(['*']),
    operate: z.array(principal).default([]),
    destroy: z.array(principal).default([]),
    approve: z.array(principal).default([]),
  })
  .strict();

export const inventorySchema = z
  .object({
    workspace: z
      .object({
        allowedChannels: z.array(z.string().regex(/^[CGD][A-Z0-9]{2,}$/, 'a Slack channel ID (C…)')).default([]),
        roles: roles.default({ read: ['*'], operate: [], destroy: [], approve: [] }),
        approvalTtlMinutes: z.number().int().min(1).max(24 * 60).default(15),
        // The Slack workspace (team) ID: when set, commands and clicks from any other team are refused.
        teamId: z.string().regex(/^[TE][A-Z0-9]{2,}$/, 'a Slack team ID (T…)').optional(),
      })
      .strict()
      .default({
        allowedChannels: [],
        roles: { read: ['*'], operate: [], destroy: [], approve: [] },
        approvalTtlMinutes: 15,
      }),
    defaultCluster: name.optional(),
    // Where snapshots go: taken before every membership change, and by /etcd backup.
    backups: z
      .object({
        dir: absolutePath.default('/var/lib/etcd-medic/backups'),
        // Scheduled backups of every cluster: a cron pattern (with an optional seconds field), e.g. "0 */6 * * *".
        schedule: z.string().regex(/^[0-9*/,\- ]+$/, 'a cron pattern like "0 */6 * * *"').optional(),
        // How many backups to keep per cluster; older ones are deleted after each new backup.
        keep: z.number().int().min(1).max(10_000).default(48),
        // Where scheduled backups report (a channel ID); none: they only log.
        channel: z.string().regex(/^[CG][A-Z0-9]{2,}$/, 'a Slack channel ID (C…)').optional(),
      })
      .strict()
      .default({ dir: '/var/lib/etcd-medic/backups', keep: 48 }),
    clusters: z.array(cluster).min(1),
  })
  .strict()
  .superRefine((inv, ctx) => {
    const seen = new Set<string>();
    inv.clusters.forEach((c, i) => {
      if (seen.has(c.name)) {
        ctx.addIssue({ code: 'custom', path: ['clusters', i, 'name'], message: `duplicate cluster name "${c.name}"` });
      }
      seen.add(c.name);
      const memberNames = new Set<string>();
      c.members.forEach((m, j) => {
        if (memberNames.has(m.name)) {
          ctx.addIssue({ code: 'custom', path: ['clusters', i, 'members', j, 'name'], message: `duplicate member name "${m.name}"` });
        }
        memberNames.add(m.name);
        if (!m.ssh && c.platform.kind !== 'statefulset') {
          ctx.addIssue({ code: 'custom', path: ['clusters', i, 'members', j, 'ssh'], message: `required on a ${c.platform.kind} cluster: the bot reaches the member's host over SSH` });
        }
        // A path the cluster's platform has no use for is a typo or a wrong platform, not something to ignore.
        for (const key of Object.keys(hostPaths) as (keyof typeof hostPaths)[]) {
          if (m[key] !== undefined && !(key in c.platform)) {
            ctx.addIssue({ code: 'custom', path: ['clusters', i, 'members', j, key], message: `"${key}" has no meaning on a ${c.platform.kind} cluster (its paths: ${Object.keys(c.platform).filter((k) => k in hostPaths).join(', ')})` });
          }
        }
      });
      // The watch's buttons are clicked in its channel: outside the allowed channels every click would be refused.
      const allowed = inv.workspace.allowedChannels;
      if (c.watch && allowed.length > 0 && !allowed.includes(c.watch.channel)) {
        ctx.addIssue({
          code: 'custom',
          path: ['clusters', i, 'watch', 'channel'],
          message: `${c.watch.channel} is not in workspace.allowedChannels (${allowed.join(', ')}): the watch would post there, but every click on its buttons would be refused. Add it to allowedChannels or watch from an allowed channel`,
        });
      }
      c.nodes.forEach((n, j) => {
        if (memberNames.has(n.name)) {
          const why = c.members.some((m) => m.name === n.name) ? `"${n.name}" is a master (under members), and masters are nodes already: list it only there` : `duplicate node name "${n.name}"`;
          ctx.addIssue({ code: 'custom', path: ['clusters', i, 'nodes', j, 'name'], message: why });
        }
        memberNames.add(n.name);
      });
    });
    if (inv.defaultCluster && !inv.clusters.some((c) => c.name === inv.defaultCluster)) {
      ctx.addIssue({ code: 'custom', path: ['defaultCluster'], message: `no cluster named "${inv.defaultCluster}"` });
    }
  });

export type Inventory = z.infer<typeof inventorySchema>;
export type ClusterConfig = Inventory['clusters'][number];
export type MemberConfig = ClusterConfig['members'][number];
export type NodeConfig = ClusterConfig['nodes'][number];
/** A host the bot reaches over SSH: a master (a member) or a node. */
export type HostConfig = Pick<MemberConfig, 'name' | 'host' | 'ssh'> & Partial<Pick<MemberConfig, 'kubeletCert' | 'kubeletConfig' | 'kubeletBootstrapConfig'>>;

/** Every Kubernetes node of a cluster the bot can reach: its masters first, then its other nodes. */
export function nodesOf(c: ClusterConfig): HostConfig[] {
  return [...c.members, ...c.nodes];
}
export type Role = keyof Inventory['workspace']['roles'];

/**
 * Warnings about the inventory that do not stop the bot but that an operator
 * must see at start: everyone in an allowed channel may destroy or approve.
 */
export function inventoryWarnings(inv: Inventory): string[] {
  const out: string[] = [];
  for (const role of ['destroy', 'approve'] as const) {
    if (inv.workspace.roles[role].includes('*')) {
      out.push(`workspace.roles.${role} contains "*": anyone in ${inv.workspace.allowedChannels.length ? 'the allowed channels' : 'any channel the bot is in'} may ${role === 'destroy' ? 'start destructive runbooks' : 'approve destructive steps'}; list user or user-group IDs instead`);
    }
  }
  if (!inv.workspace.teamId) out.push('workspace.teamId is not set: requests are not checked against your Slack workspace; set it to your team ID (T…)');
  return out;
}
