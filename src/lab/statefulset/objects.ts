import type { ObjectInput } from '../kube/store.js';

/** The Secret holding the etcd certs, mounted where GKE on-prem's kube-etcd pods have them. */
export const CERTS_SECRET = 'kube-etcd-certs';
const CERTS = '/etcd.local.config/certificates';

/**
 * The user cluster's etcd as GKE on-prem (kubeception) runs it in the admin
 * cluster: a StatefulSet `kube-etcd` whose pods name themselves through the
 * downward API ($(POD_NAME), $(POD_IP)), each with its claim `data-kube-etcd-N`
 * mounted at /var/lib/etcd and `--initial-cluster-state=new` in its args.
 * updateStrategy OnDelete: editing the template restarts no member by itself.
 */
export function etcdStatefulSet(o: { namespace: string; replicas: number; podIp(i: number): string; token: string }): ObjectInput {
  const initialCluster = Array.from({ length: o.replicas }, (_, i) => `kube-etcd-${i}=https://${o.podIp(i)}:2380`).join(',');
  return {
    apiVersion: 'apps/v1',
    kind: 'StatefulSet',
    metadata: { name: 'kube-etcd', namespace: o.namespace, labels: { app: 'kube-etcd' } },
    spec: {
      replicas: o.replicas,
      serviceName: 'kube-etcd',
      podManagementPolicy: 'Parallel',
      updateStrategy: { type: 'OnDelete' },
      selector: { matchLabels: { app: 'kube-etcd' } },
      template: {
        metadata: { labels: { app: 'kube-etcd' } },
        spec: {
          containers: [
            {
              name: 'kube-etcd',
              image: 'gcr.io/gke-on-prem-release/etcd:v3.4.23',
              command: ['etcd'],
              args: [
                '--name=$(POD_NAME)',
                '--data-dir=/var/lib/etcd',
                '--listen-client-urls=https://$(POD_IP):2379',
                '--advertise-client-urls=https://$(POD_IP):2379',
                '--listen-peer-urls=https://$(POD_IP):2380',
                '--initial-advertise-peer-urls=https://$(POD_IP):2380',
                `--initial-cluster=${initialCluster}`,
                '--initial-cluster-state=new',
                `--initial-cluster-token=${o.token}`,
                `--cert-file=${CERTS}/etcd.crt`,
                `--key-file=${CERTS}/etcd.key`,
                `--trusted-ca-file=${CERTS}/etcdCA.crt`,
                '--client-cert-auth=true',
                `--peer-cert-file=${CERTS}/etcd.crt`,
                `--peer-key-file=${CERTS}/etcd.key`,
                `--peer-trusted-ca-file=${CERTS}/etcdCA.crt`,
                '--peer-client-cert-auth=true',
                '--snapshot-count=10000',
              ],
              env: [
                { name: 'POD_NAME', valueFrom: { fieldRef: { apiVersion: 'v1', fieldPath: 'metadata.name' } } },
                { name: 'POD_IP', valueFrom: { fieldRef: { apiVersion: 'v1', fieldPath: 'status.podIP' } } },
              ],
              readinessProbe: { tcpSocket: { port: 2379 }, periodSeconds: 1 },
              volumeMounts: [
                { name: 'data', mountPath: '/var/lib/etcd' },
                { name: 'certs', mountPath: CERTS, readOnly: true },
              ],
            },
          ],
          volumes: [{ name: 'certs', secret: { secretName: CERTS_SECRET } }],
        },
      },
      volumeClaimTemplates: [{ metadata: { name: 'data' }, spec: { accessModes: ['ReadWriteOnce'], storageClassName: 'local', resources: { requests: { storage: '1Gi' } } } }],
    },
  };
}

/**
 * kube-etcd-pdb: no voluntary disruption of any replica. While one replica is
 * down its pod cannot even be evicted (fewer healthy pods than the budget
 * wants), which is why the seed procedure deletes the PDB before the drain.
 */
export function etcdPdb(namespace: string, replicas: number): ObjectInput {
  return {
    apiVersion: 'policy/v1',
    kind: 'PodDisruptionBudget',
    metadata: { name: 'kube-etcd-pdb', namespace, labels: { app: 'kube-etcd' } },
    spec: { minAvailable: replicas, selector: { matchLabels: { app: 'kube-etcd' } } },
  };
}
