import { stringify } from 'yaml';

export interface EtcdManifestParams {
  name: string;
  ip: string;
  dataDir: string;
  pkiDir: string;
  initialCluster: string; // name=https://ip:2380,…
  state: 'new' | 'existing';
  token: string;
  /** etcd's defaults (2379, 2380) unless a lab asks for others. */
  clientPort?: number;
  peerPort?: number;
  /** More flags for etcd (a small `--quota-backend-bytes` to reach NOSPACE). */
  extraFlags?: string[];
}

/** An etcd static-pod manifest shaped like the one kubeadm writes. */
export function etcdManifest(p: EtcdManifestParams): string {
  const peer = `https://${p.ip}:${p.peerPort ?? 2380}`;
  const client = `https://${p.ip}:${p.clientPort ?? 2379}`;
  return stringify({
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: {
      name: 'etcd',
      namespace: 'kube-system',
      labels: { component: 'etcd', tier: 'control-plane' },
      annotations: { 'kubeadm.kubernetes.io/etcd.advertise-client-urls': client },
    },
    spec: {
      hostNetwork: true,
      priorityClassName: 'system-node-critical',
      containers: [
        {
          name: 'etcd',
          image: 'registry.k8s.io/etcd:3.4.23-0',
          command: [
            'etcd',
            `--name=${p.name}`,
            `--data-dir=${p.dataDir}`,
            `--advertise-client-urls=${client}`,
            `--listen-client-urls=${client}`,
            `--initial-advertise-peer-urls=${peer}`,
            `--listen-peer-urls=${peer}`,
            `--initial-cluster=${p.initialCluster}`,
            `--initial-cluster-state=${p.state}`,
            `--initial-cluster-token=${p.token}`,
            `--cert-file=${p.pkiDir}/server.crt`,
            `--key-file=${p.pkiDir}/server.key`,
            `--trusted-ca-file=${p.pkiDir}/ca.crt`,
            '--client-cert-auth=true',
            `--peer-cert-file=${p.pkiDir}/peer.crt`,
            `--peer-key-file=${p.pkiDir}/peer.key`,
            `--peer-trusted-ca-file=${p.pkiDir}/ca.crt`,
            '--peer-client-cert-auth=true',
            '--snapshot-count=10000',
            '--logger=zap',
            ...(p.extraFlags ?? []),
          ],
          volumeMounts: [
            { mountPath: p.dataDir, name: 'etcd-data' },
            { mountPath: p.pkiDir, name: 'etcd-certs' },
          ],
        },
      ],
      volumes: [
        { hostPath: { path: p.dataDir, type: 'DirectoryOrCreate' }, name: 'etcd-data' },
        { hostPath: { path: p.pkiDir, type: 'DirectoryOrCreate' }, name: 'etcd-certs' },
      ],
    },
  });
}
