import type { EtcdManifestParams } from './manifest.js';

/** What a lab OpenShift 4 master's etcd-member.yaml says, and where its discovery output is. */
export interface EtcdMemberParams extends EtcdManifestParams {
  /** What the discovery init container writes on a real master (ETCD_IPV4_ADDRESS, ETCD_DNS_NAME); the script sources it. */
  environmentFile: string;
}

/** The control-plane static pods that OpenShift 4's restore script stops beside etcd. */
export const CONTROL_PLANE_PODS = ['kube-scheduler-pod.yaml', 'kube-controller-manager-pod.yaml', 'kube-apiserver-pod.yaml'];

const y = (v: string) => JSON.stringify(v);

/** A lab master's etcd DNS name (a real one's is etcd-N.<cluster domain>), which its certificates are named by. */
export function labEtcdDnsName(name: string): string {
  return `${name}.lab.example.com`;
}

/** The file the discovery init container writes: read by the script, never exported to etcd. */
export function discoveryEnvironment(ip: string, name: string): string {
  return `ETCD_IPV4_ADDRESS=${ip}\nETCD_DNS_NAME=${labEtcdDnsName(name)}\n`;
}

/** A 4.1–4.3 master's certificate file as the signer's requests name it: `system:etcd-peer:<etcd DNS name>.crt`. */
export function ocp4CertFile(kind: 'server' | 'peer' | 'metric', dnsName: string, ext: 'crt' | 'key'): string {
  return `system:etcd-${kind}:${dnsName}.${ext}`;
}

/**
 * etcd-member.yaml as OpenShift 4.1–4.3 lays it out (machine-config-operator's
 * template): the etcd-member container runs `/bin/sh -c` with a script that
 * sources the discovery output and ends in `exec etcd \` with a flag a line,
 * and takes the rest from its env. Some flags on each side, as a recovered
 * master has them (the recovery script patches ETCD_INITIAL_CLUSTER and the
 * member's name into env). The lab's /bin/sh is dash: `.` for `source`, no
 * pipefail. Listen URLs are the host's own address (three members share this
 * machine), where a real master listens on 0.0.0.0 (and its metrics proxy on
 * 127.0.0.1:9977). The certificates are named by ETCD_DNS_NAME as on a real
 * master (`system:etcd-peer:<dns>.crt`); the etcd-metrics container's
 * grpc-proxy serves metrics with the metric pair (`system:etcd-metric:<dns>`,
 * signed by the etcd metric signer, `metric-ca.crt`) and reaches etcd with the
 * peer pair. The lab's kubelet runs a pod's first container only: the proxy
 * is written, not run (its endpoint is the DNS name, which the lab does not
 * resolve).
 */
export function etcdMemberManifest(p: EtcdMemberParams): string {
  const client = p.clientPort ?? 2379;
  const peer = p.peerPort ?? 2380;
  return `apiVersion: v1
kind: Pod
metadata:
  name: etcd-member
  namespace: openshift-etcd
  labels:
    k8s-app: etcd
spec:
  containers:
  - name: etcd-member
    image: "quay.io/openshift-release-dev/ocp-v4.0-art-dev@sha256:etcd"
    command:
    - /bin/sh
    - -c
    - |
      #!/bin/sh
      set -eu

      # Written by the discovery init container: ETCD_IPV4_ADDRESS, ETCD_DNS_NAME.
      . ${p.environmentFile}

      exec etcd \\
        --initial-advertise-peer-urls=https://\${ETCD_IPV4_ADDRESS}:${peer} \\
        --cert-file=${p.pkiDir}/system:etcd-server:\${ETCD_DNS_NAME}.crt \\
        --key-file=${p.pkiDir}/system:etcd-server:\${ETCD_DNS_NAME}.key \\
        --trusted-ca-file=${p.pkiDir}/ca.crt \\
        --client-cert-auth=true \\
        --peer-cert-file=${p.pkiDir}/system:etcd-peer:\${ETCD_DNS_NAME}.crt \\
        --peer-key-file=${p.pkiDir}/system:etcd-peer:\${ETCD_DNS_NAME}.key \\
        --peer-trusted-ca-file=${p.pkiDir}/ca.crt \\
        --peer-client-cert-auth=true \\
        --initial-cluster-state=${p.state} \\
        --initial-cluster-token=${p.token} \\
        --advertise-client-urls=https://\${ETCD_IPV4_ADDRESS}:${client} \\
        --listen-client-urls=https://${p.ip}:${client} \\
        --listen-peer-urls=https://${p.ip}:${peer} \\
        --listen-metrics-urls=https://${p.ip}:9978 \\
        --snapshot-count=10000 \\
        --logger=zap
    env:
    - name: ETCD_DATA_DIR
      value: ${y(p.dataDir)}
    - name: ETCD_NAME
      value: ${y(p.name)}
    - name: ETCD_INITIAL_CLUSTER
      value: ${y(p.initialCluster)}
    ports:
    - name: peer
      containerPort: ${peer}
      protocol: TCP
    - name: server
      containerPort: ${client}
      protocol: TCP
    terminationMessagePolicy: FallbackToLogsOnError
    securityContext:
      privileged: true
    volumeMounts:
    - name: discovery
      mountPath: /run/etcd/
    - name: certs
      mountPath: /etc/ssl/etcd/
    - name: data-dir
      mountPath: /var/lib/etcd/
  - name: etcd-metrics
    image: "quay.io/openshift-release-dev/ocp-v4.0-art-dev@sha256:etcd"
    command:
    - /bin/sh
    - -c
    - |
      #!/bin/sh
      set -eu

      . ${p.environmentFile}

      exec etcd grpc-proxy start \\
        --endpoints https://\${ETCD_DNS_NAME}:9978 \\
        --metrics-addr https://${p.ip}:9979 \\
        --listen-addr ${p.ip}:9977 \\
        --key ${p.pkiDir}/system:etcd-peer:\${ETCD_DNS_NAME}.key \\
        --key-file ${p.pkiDir}/system:etcd-metric:\${ETCD_DNS_NAME}.key \\
        --cert ${p.pkiDir}/system:etcd-peer:\${ETCD_DNS_NAME}.crt \\
        --cert-file ${p.pkiDir}/system:etcd-metric:\${ETCD_DNS_NAME}.crt \\
        --cacert ${p.pkiDir}/ca.crt \\
        --trusted-ca-file ${p.pkiDir}/metric-ca.crt
    ports:
    - name: metric
      containerPort: 9979
      protocol: TCP
    terminationMessagePolicy: FallbackToLogsOnError
    volumeMounts:
    - name: discovery
      mountPath: /run/etcd/
    - name: certs
      mountPath: /etc/ssl/etcd/
  hostNetwork: true
  priority: 2000000000
  tolerations:
  - operator: "Exists"
  volumes:
  - name: discovery
    hostPath:
      path: /run/etcd
  - name: certs
    hostPath:
      path: /etc/ssl/etcd
  - name: data-dir
    hostPath:
      path: /var/lib/etcd
`;
}

/**
 * A control-plane static pod the lab has no binary for: a sleeping process
 * stands for it, so that moving its manifest out of the kubelet's directory
 * stops something and putting it back starts it. Its env names the manifest,
 * so a crashed lab's leftovers are found by path.
 */
export function controlPlaneManifest(file: string, manifestPath: string): string {
  const name = file.replace(/-pod\.yaml$/, '');
  return `apiVersion: v1
kind: Pod
metadata:
  name: ${name}
  namespace: openshift-${name}
  labels:
    app: openshift-${name}
    revision: "7"
spec:
  containers:
  - name: ${name}
    image: "quay.io/openshift-release-dev/ocp-v4.0-art-dev@sha256:${name}"
    command: ["/bin/sh", "-c"]
    args:
    - exec sleep 2147483647
    env:
    - name: STATIC_POD_MANIFEST
      value: ${y(manifestPath)}
  hostNetwork: true
  priorityClassName: system-node-critical
`;
}

/** What a lab OpenShift 4.4+ master's etcd-pod.yaml says: the operator's per-node variables for every master. */
export interface EtcdPodParams {
  name: string;
  ip: string;
  dataDir: string;
  pkiDir: string;
  manifestsDir: string;
  /** Where the operator's pod keeps what it moves aside (static-pod-resources/etcd-member on a real master). */
  backupDir: string;
  /** Every master: its node name and address (the operator's NODE_<node>_ETCD_NAME, _ETCD_URL_HOST, _IP). */
  masters: { name: string; ip: string }[];
  endpoints: string[];
  clientPort?: number;
  peerPort?: number;
}

/** The operator's env variable names for a node: `NODE_<node name, - and . as _>_<what>`. */
const nodeVar = (node: string, what: string) => `NODE_${node.replace(/[-.]/g, '_')}_${what}`;

/**
 * etcd-pod.yaml as OpenShift 4.4's cluster-etcd-operator writes it (its
 * bindata/etcd/pod.yaml, the node's values filled in): the etcdctl container
 * first (for `oc rsh`), then the etcd container whose script discovers its
 * initial cluster (`ETCD_INITIAL_CLUSTER=$(discover-etcd-initial-cluster …)`),
 * moves a 4.3 etcd-member.yaml aside, exports ETCD_NAME from the node's
 * variable and ends in `exec etcd \`; ETCD_INITIAL_CLUSTER_STATE=existing and
 * the per-node variables in env; the metrics proxy last. Lab changes: dash is
 * /bin/sh (`set -eu`, no pipefail); addresses are the host's own, not 0.0.0.0;
 * certificates are the lab's file names; the wait for the old pod's ports is
 * left out (the lab's kubelet stops a pod before it starts the next one).
 */
export function etcdPodManifest(p: EtcdPodParams): string {
  const client = p.clientPort ?? 2379;
  const peer = p.peerPort ?? 2380;
  const v = (what: string) => nodeVar(p.name, what);
  const env = [
    ['ALL_ETCD_ENDPOINTS', p.endpoints.join(',')],
    ['ETCDCTL_API', '3'],
    ['ETCDCTL_CACERT', `${p.pkiDir}/ca.crt`],
    ['ETCDCTL_CERT', `${p.pkiDir}/peer.crt`],
    ['ETCDCTL_ENDPOINTS', p.endpoints.join(',')],
    ['ETCDCTL_KEY', `${p.pkiDir}/peer.key`],
    ['ETCD_DATA_DIR', p.dataDir],
    ['ETCD_ELECTION_TIMEOUT', '1000'],
    ['ETCD_HEARTBEAT_INTERVAL', '100'],
    ['ETCD_INITIAL_CLUSTER_STATE', 'existing'],
    ['ETCD_QUOTA_BACKEND_BYTES', '7516192768'],
    ...p.masters.flatMap((m) => [
      [nodeVar(m.name, 'ETCD_NAME'), m.name],
      [nodeVar(m.name, 'ETCD_URL_HOST'), m.ip],
      [nodeVar(m.name, 'IP'), m.ip],
    ]),
  ];
  const envYaml = (indent: string) => env.map(([k, val]) => `${indent}- name: ${y(k!)}\n${indent}  value: ${y(val!)}`).join('\n');
  return `apiVersion: v1
kind: Pod
metadata:
  name: etcd
  namespace: openshift-etcd
  labels:
    app: etcd
    k8s-app: etcd
    etcd: "true"
    revision: "3"
spec:
  containers:
  # The etcdctl container should always be first. It is intended to be used
  # to open a remote shell via \`oc rsh\` that is ready to run \`etcdctl\`.
  - name: etcdctl
    image: "quay.io/openshift-release-dev/ocp-v4.0-art-dev@sha256:etcd"
    imagePullPolicy: IfNotPresent
    terminationMessagePolicy: FallbackToLogsOnError
    command:
      - "/bin/bash"
      - "-c"
      - "trap TERM INT; sleep infinity & wait"
    env:
${envYaml('    ')}
  - name: etcd
    image: "quay.io/openshift-release-dev/ocp-v4.0-art-dev@sha256:etcd"
    imagePullPolicy: IfNotPresent
    terminationMessagePolicy: FallbackToLogsOnError
    command:
      - /bin/sh
      - -c
      - |
        #!/bin/sh
        set -eu

        # this has a non-zero return code if the command is non-zero.  If you use an export first, it doesn't and you
        # will succeed when you should fail.
        ETCD_INITIAL_CLUSTER=$(discover-etcd-initial-cluster \\
          --cacert=${p.pkiDir}/ca.crt \\
          --cert=${p.pkiDir}/peer.crt \\
          --key=${p.pkiDir}/peer.key \\
          --endpoints=\${ALL_ETCD_ENDPOINTS} \\
          --data-dir=${p.dataDir} \\
          --target-peer-url-host=\${${v('ETCD_URL_HOST')}} \\
          --target-name=${p.name})
         export ETCD_INITIAL_CLUSTER

        # at this point we know this member is added.  To support a transition, we must remove the old etcd pod.
        # move it somewhere safe so we can retrieve it again later if something goes badly.
        mv ${p.manifestsDir}/etcd-member.yaml ${p.backupDir} 2>/dev/null || true

        export ETCD_NAME=\${${v('ETCD_NAME')}}
        env | grep ETCD | grep -v NODE

        set -x
        exec etcd \\
          --initial-advertise-peer-urls=https://\${${v('IP')}}:${peer} \\
          --cert-file=${p.pkiDir}/server.crt \\
          --key-file=${p.pkiDir}/server.key \\
          --trusted-ca-file=${p.pkiDir}/ca.crt \\
          --client-cert-auth=true \\
          --peer-cert-file=${p.pkiDir}/peer.crt \\
          --peer-key-file=${p.pkiDir}/peer.key \\
          --peer-trusted-ca-file=${p.pkiDir}/ca.crt \\
          --peer-client-cert-auth=true \\
          --advertise-client-urls=https://\${${v('IP')}}:${client} \\
          --listen-client-urls=https://${p.ip}:${client} \\
          --listen-peer-urls=https://${p.ip}:${peer} \\
          --logger=zap ||  mv ${p.backupDir}/etcd-member.yaml ${p.manifestsDir}
    env:
${envYaml('    ')}
    resources:
      requests:
        memory: 600Mi
        cpu: 300m
    readinessProbe:
      tcpSocket:
        port: ${peer}
      failureThreshold: 3
      initialDelaySeconds: 3
      periodSeconds: 5
      successThreshold: 1
      timeoutSeconds: 5
    securityContext:
      privileged: true
    volumeMounts:
      - mountPath: /etc/kubernetes/manifests
        name: static-pod-dir
      - mountPath: /etc/kubernetes/etcd-backup-dir
        name: etcd-backup-dir
      - mountPath: /etc/kubernetes/static-pod-certs
        name: cert-dir
      - mountPath: /var/lib/etcd/
        name: data-dir
  - name: etcd-metrics
    image: "quay.io/openshift-release-dev/ocp-v4.0-art-dev@sha256:etcd"
    imagePullPolicy: IfNotPresent
    terminationMessagePolicy: FallbackToLogsOnError
    command:
      - /bin/sh
      - -c
      - |
        #!/bin/sh
        set -eu

        export ETCD_NAME=\${${v('ETCD_NAME')}}

        exec etcd grpc-proxy start \\
          --endpoints https://\${${v('ETCD_URL_HOST')}}:9978 \\
          --metrics-addr https://${p.ip}:9979 \\
          --listen-addr 127.0.0.1:9977 \\
          --key ${p.pkiDir}/peer.key \\
          --cert ${p.pkiDir}/peer.crt \\
          --cacert ${p.pkiDir}/ca.crt
    env:
${envYaml('    ')}
  hostNetwork: true
  priorityClassName: system-node-critical
  tolerations:
  - operator: "Exists"
  volumes:
    - hostPath:
        path: /etc/kubernetes/manifests
      name: static-pod-dir
    - hostPath:
        path: /etc/kubernetes/static-pod-resources/etcd-member
      name: etcd-backup-dir
    - hostPath:
        path: /etc/kubernetes/static-pod-resources/etcd-certs
      name: cert-dir
    - hostPath:
        path: /var/lib/etcd
        type: ""
      name: data-dir
`;
}

/**
 * The etcd image's discover-etcd-initial-cluster, as the lab plays it (on the
 * pod's PATH): a member with a data dir prints nothing (etcd starts from its
 * data); otherwise it waits, bounded, for the cluster to list its peer URL
 * (a member added by the operator, or by a runbook's member add) and prints
 * every started member and itself as the initial cluster; never listed, it
 * fails, and so does the pod's script, as on a real master.
 */
export function discoverInitialClusterScript(): string {
  return `#!/bin/sh
set -u
for a in "$@"; do
  case "$a" in
    --cacert=*) cacert=\${a#*=} ;; --cert=*) cert=\${a#*=} ;; --key=*) key=\${a#*=} ;;
    --endpoints=*) endpoints=\${a#*=} ;; --data-dir=*) data=\${a#*=} ;;
    --target-peer-url-host=*) host=\${a#*=} ;; --target-name=*) name=\${a#*=} ;;
  esac
done
if [ -d "$data/member" ]; then exit 0; fi
# The pod's env sets ETCDCTL_ENDPOINTS, _CACERT, _CERT and _KEY (for oc rsh); etcdctl 3.4 refuses a flag its env also sets.
unset ETCDCTL_ENDPOINTS ETCDCTL_CACERT ETCDCTL_CERT ETCDCTL_KEY
i=0
while [ $i -lt 20 ]; do
  list=$(ETCDCTL_API=3 etcdctl --endpoints="$endpoints" --cacert="$cacert" --cert="$cert" --key="$key" --dial-timeout=1s --command-timeout=2s member list 2>/dev/null) || list=
  if printf '%s\\n' "$list" | grep -q "https://$host:"; then
    printf '%s\\n' "$list" | awk -F', ' -v me="$name" -v host="https://$host:" '
      index($4, host) == 1 { out = out sep me "=" $4; sep = ","; next }
      $3 != "" { out = out sep $3 "=" $4; sep = "," }
      END { print out }'
    exit 0
  fi
  i=$((i + 1))
  sleep 1
done
echo "timed out waiting for $host to be listed as a member" >&2
exit 1
`;
}
