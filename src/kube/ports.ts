/** Where the control plane listens on a master (kubeadm and OpenShift alike). */
export const APISERVER_PORT = 6443;
export const KUBELET_PORT = 10250;
