import type { EtcdManifestParams } from './manifest.js';

/** What a lab OpenShift 4 master's etcd-member.yaml says, and where its discovery output is. */
export interface EtcdMemberParams extends EtcdManifestParams {
  /** What the discovery init container writes on a real master (ETCD_IPV4_ADDRESS, ETCD_DNS_NAME); the script sources it. */
  environmentFile: string;
}

/** The control-plane static pods that OpenShift 4's restore script stops beside etcd. */
export const CONTROL_PLANE_PODS = ['kube-scheduler-pod.yaml', 'kube-controller-manager-pod.yaml', 'kube-apiserver-pod.yaml'];

const y = (v: string) => JSON.stringify(v);

/** The file the discovery init container writes: read by the script, never exported to etcd. */
export function discoveryEnvironment(ip: string, name: string): string {
  return `ETCD_IPV4_ADDRESS=${ip}\nETCD_DNS_NAME=${name}.lab.example.com\n`;
}

/**
 * etcd-member.yaml as OpenShift 4.1–4.3 lays it out (machine-config-operator's
 * template): the etcd-member container runs `/bin/sh -c` with a script that
 * sources the discovery output and ends in `exec etcd \` with a flag a line,
 * and takes the rest from its env. Some flags on each side, as a recovered
 * master has them (the recovery script patches ETCD_INITIAL_CLUSTER and the
 * member's name into env). The lab's /bin/sh is dash: `.` for `source`, no
 * pipefail. Listen URLs are the host's own address (three members share this
 * machine), where a real master listens on 0.0.0.0.
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
        --cert-file=${p.pkiDir}/server.crt \\
        --key-file=${p.pkiDir}/server.key \\
        --trusted-ca-file=${p.pkiDir}/ca.crt \\
        --client-cert-auth=true \\
        --peer-cert-file=${p.pkiDir}/peer.crt \\
        --peer-key-file=${p.pkiDir}/peer.key \\
        --peer-trusted-ca-file=${p.pkiDir}/ca.crt \\
        --peer-client-cert-auth=true \\
        --initial-cluster-state=${p.state} \\
        --initial-cluster-token=${p.token} \\
        --advertise-client-urls=https://\${ETCD_IPV4_ADDRESS}:${client} \\
        --listen-client-urls=https://${p.ip}:${client} \\
        --listen-peer-urls=https://${p.ip}:${peer} \\
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
