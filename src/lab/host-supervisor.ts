/**
 * What runs etcd on a lab host: the kubelet's part (static pods, on kubeadm
 * hosts) or systemd's (units, on systemd hosts). The harness and the
 * playground only need these three.
 */
export interface HostSupervisor {
  /** The PID of a running workload (a manifest file on kubeadm hosts, a unit on systemd hosts; etcd's by default), or null when none runs. */
  pid(name?: string): number | null;
  /** Begins watching the host's configuration and runs what it asks for. */
  start(): void;
  /** Kills everything it runs (lab teardown) and stops watching. */
  stop(): Promise<void>;
}
