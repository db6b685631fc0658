import { stringify } from 'yaml';
import type { EtcdManifestParams } from './manifest.js';

/** What a member's etcd.conf says: the same as its static pod manifest would on a kubeadm master. */
export type EtcdConfParams = EtcdManifestParams;

/**
 * /etc/etcd/etcd.conf as openshift-ansible writes it for a master running etcd
 * as a service: the EnvironmentFile of etcd.service, one ETCD_* variable per
 * flag (etcd 3.4 reads them; it refuses a setting given both ways, so the unit
 * passes no flags). Only keys etcd 3.4 knows: it warns about others.
 */
export function etcdConf(p: EtcdConfParams): string {
  const peer = `https://${p.ip}:${p.peerPort ?? 2380}`;
  const client = `https://${p.ip}:${p.clientPort ?? 2379}`;
  return `[member]
ETCD_NAME=${p.name}
ETCD_LISTEN_PEER_URLS=${peer}
ETCD_DATA_DIR=${p.dataDir}
#ETCD_WAL_DIR=
ETCD_SNAPSHOT_COUNT=10000
ETCD_LISTEN_CLIENT_URLS=${client}
#ETCD_MAX_SNAPSHOTS=5
#ETCD_MAX_WALS=5
#ETCD_CORS=

#[cluster]
ETCD_INITIAL_ADVERTISE_PEER_URLS=${peer}
ETCD_INITIAL_CLUSTER=${p.initialCluster}
ETCD_INITIAL_CLUSTER_STATE=${p.state}
ETCD_INITIAL_CLUSTER_TOKEN=${p.token}
#ETCD_DISCOVERY=
#ETCD_DISCOVERY_SRV=
#ETCD_DISCOVERY_FALLBACK="proxy"
#ETCD_DISCOVERY_PROXY=
ETCD_ADVERTISE_CLIENT_URLS=${client}

#[proxy]
#ETCD_PROXY="off"

#[security]
ETCD_TRUSTED_CA_FILE=${p.pkiDir}/ca.crt
ETCD_CLIENT_CERT_AUTH="true"
ETCD_CERT_FILE=${p.pkiDir}/server.crt
ETCD_KEY_FILE=${p.pkiDir}/server.key
#ETCD_AUTO_TLS="false"
ETCD_PEER_TRUSTED_CA_FILE=${p.pkiDir}/ca.crt
ETCD_PEER_CLIENT_CERT_AUTH="true"
ETCD_PEER_CERT_FILE=${p.pkiDir}/peer.crt
ETCD_PEER_KEY_FILE=${p.pkiDir}/peer.key
#ETCD_PEER_AUTO_TLS="false"

#[logging]
ETCD_LOGGER=zap
#ETCD_DEBUG="false"
`;
}

/** etcd.service: flags from the EnvironmentFile only, restarted whenever it exits. */
export function etcdUnit(confFile: string): string {
  return `[Unit]
Description=Etcd Server
After=network.target
After=network-online.target
Wants=network-online.target

[Service]
EnvironmentFile=${confFile}
ExecStart=/usr/bin/etcd
Restart=always
LimitNOFILE=65536

[Install]
WantedBy=multi-user.target
`;
}

/**
 * The API server's unit, stopped while a restore replaces etcd's data. The
 * lab has no OpenShift binary: a sleeping process stands for it, with the
 * real unit's EnvironmentFile (CONFIG_FILE, OPTIONS).
 */
export function apiUnit(sysconfig: string): string {
  return `[Unit]
Description=Atomic OpenShift Master API
Documentation=https://github.com/openshift/origin
After=network-online.target
After=etcd.service
Before=atomic-openshift-node.service
Requires=network-online.target

[Service]
EnvironmentFile=${sysconfig}
Environment=GOTRACEBACK=crash
ExecStart=/bin/sleep infinity
LimitNOFILE=131072
LimitCORE=infinity
SyslogIdentifier=atomic-openshift-master-api
Restart=always

[Install]
WantedBy=multi-user.target
WantedBy=atomic-openshift-node.service
`;
}

export function apiSysconfig(masterConfig: string): string {
  return `OPTIONS=--loglevel=2 --listen=https://0.0.0.0:8443 --master=https://0.0.0.0:8443
CONFIG_FILE=${masterConfig}
`;
}

/** master-config.yaml with the keys a restore reads (etcdClientInfo) among the usual ones. */
export function masterConfig(p: { ip: string; etcdUrls: string[]; masterCount: number }): string {
  return stringify({
    admissionConfig: { pluginConfig: null },
    aggregatorConfig: { proxyClientInfo: { certFile: 'aggregator-front-proxy.crt', keyFile: 'aggregator-front-proxy.key' } },
    apiLevels: ['v1'],
    apiVersion: 'v1',
    authConfig: { requestHeader: { clientCA: 'front-proxy-ca.crt', clientCommonNames: ['aggregator-front-proxy'], usernameHeaders: ['X-Remote-User'] } },
    controllerConfig: { election: { lockName: 'openshift-master-controllers' }, serviceServingCert: { signer: { certFile: 'service-signer.crt', keyFile: 'service-signer.key' } } },
    controllers: '*',
    corsAllowedOrigins: ['(?i)//127\\.0\\.0\\.1(:|\\z)', '(?i)//localhost(:|\\z)', `(?i)//${p.ip.replace(/\./g, '\\.')}(:|\\z)`],
    etcdClientInfo: { ca: 'master.etcd-ca.crt', certFile: 'master.etcd-client.crt', keyFile: 'master.etcd-client.key', urls: p.etcdUrls },
    etcdStorageConfig: { kubernetesStoragePrefix: 'kubernetes.io', kubernetesStorageVersion: 'v1', openShiftStoragePrefix: 'openshift.io', openShiftStorageVersion: 'v1' },
    kind: 'MasterConfig',
    kubeletClientInfo: { ca: 'ca-bundle.crt', certFile: 'master.kubelet-client.crt', keyFile: 'master.kubelet-client.key', port: 10250 },
    kubernetesMasterConfig: { masterCount: p.masterCount, masterIP: p.ip, servicesSubnet: '172.30.0.0/16' },
    masterPublicURL: `https://${p.ip}:8443`,
    networkConfig: { clusterNetworks: [{ cidr: '10.128.0.0/14', hostSubnetLength: 9 }], networkPluginName: 'redhat/openshift-ovs-subnet', serviceNetworkCIDR: '172.30.0.0/16' },
    servingInfo: { bindAddress: '0.0.0.0:8443', bindNetwork: 'tcp4', certFile: 'master.server.crt', clientCA: 'ca.crt', keyFile: 'master.server.key', maxRequestsInFlight: 500, requestTimeoutSeconds: 3600 },
  });
}
