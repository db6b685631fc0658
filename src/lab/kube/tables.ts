import type { KubeObject, ResourceType } from './store.js';

type Column = [name: string, type: string, priority: number, cell: (o: KubeObject) => string | number];

/** kubectl's age format (k8s.io/apimachinery duration.HumanDuration), simplified past a day. */
export function age(since: string, now = Date.now()): string {
  const s = Math.max(0, Math.floor((now - Date.parse(since)) / 1000));
  if (s < 120) return `${s}s`;
  const m = Math.floor(s / 60);
  if (m < 10) return s % 60 ? `${m}m${s % 60}s` : `${m}m`;
  if (m < 180) return `${m}m`;
  const h = Math.floor(m / 60);
  if (h < 48) return `${h}h`;
  return `${Math.floor(h / 24)}d`;
}

const ageCol: Column = ['Age', 'string', 0, (o) => age(o.metadata.creationTimestamp)];
const nameCol: Column = ['Name', 'string', 0, (o) => o.metadata.name];
const cond = (o: KubeObject, type: string) => (o.status?.conditions ?? []).find((c: any) => c.type === type);

function csrCondition(o: KubeObject): string {
  const types = (o.status?.conditions ?? []).map((c: any) => c.type).filter((t: string) => ['Approved', 'Denied', 'Failed'].includes(t));
  if (o.status?.certificate) types.push('Issued');
  return types.length ? types.join(',') : 'Pending';
}

function duration(sec: number | undefined): string {
  if (!sec) return '<none>';
  return sec % 3600 === 0 ? `${sec / 3600}h` : sec % 60 === 0 ? `${sec / 60}m` : `${sec}s`;
}

/** The columns the real server's printers give each resource (pkg/printers/internalversion). */
const COLUMNS: Record<string, Column[]> = {
  nodes: [
    nameCol,
    ['Status', 'string', 0, (o) => { const r = cond(o, 'Ready'); return (r ? (r.status === 'True' ? 'Ready' : 'NotReady') : 'Unknown') + (o.spec?.unschedulable ? ',SchedulingDisabled' : ''); }],
    ['Roles', 'string', 0, (o) => Object.keys(o.metadata.labels ?? {}).filter((l) => l.startsWith('node-role.kubernetes.io/')).map((l) => l.slice(24)).sort().join(',') || '<none>'],
    ageCol,
    ['Version', 'string', 0, (o) => o.status?.nodeInfo?.kubeletVersion ?? ''],
    ['Internal-IP', 'string', 1, (o) => (o.status?.addresses ?? []).find((a: any) => a.type === 'InternalIP')?.address ?? '<none>'],
    ['External-IP', 'string', 1, (o) => (o.status?.addresses ?? []).find((a: any) => a.type === 'ExternalIP')?.address ?? '<none>'],
    ['OS-Image', 'string', 1, (o) => o.status?.nodeInfo?.osImage ?? '<unknown>'],
    ['Kernel-Version', 'string', 1, (o) => o.status?.nodeInfo?.kernelVersion ?? '<unknown>'],
    ['Container-Runtime', 'string', 1, (o) => o.status?.nodeInfo?.containerRuntimeVersion ?? '<unknown>'],
  ],
  pods: [
    nameCol,
    ['Ready', 'string', 0, (o) => { const cs = o.status?.containerStatuses ?? []; return `${cs.filter((c: any) => c.ready).length}/${(o.spec?.containers ?? []).length}`; }],
    ['Status', 'string', 0, (o) => (o.status?.containerStatuses ?? []).find((c: any) => c.state?.waiting)?.state.waiting.reason ?? o.status?.phase ?? 'Unknown'],
    ['Restarts', 'string', 0, (o) => String((o.status?.containerStatuses ?? []).reduce((n: number, c: any) => n + (c.restartCount ?? 0), 0))],
    ageCol,
    ['IP', 'string', 1, (o) => o.status?.podIP ?? '<none>'],
    ['Node', 'string', 1, (o) => o.spec?.nodeName ?? '<none>'],
  ],
  certificatesigningrequests: [
    nameCol,
    ageCol,
    ['SignerName', 'string', 0, (o) => o.spec?.signerName ?? ''],
    ['Requestor', 'string', 0, (o) => o.spec?.username ?? ''],
    ['RequestedDuration', 'string', 0, (o) => duration(o.spec?.expirationSeconds)],
    ['Condition', 'string', 0, csrCondition],
  ],
  statefulsets: [
    nameCol,
    ['Ready', 'string', 0, (o) => `${o.status?.readyReplicas ?? 0}/${o.spec?.replicas ?? 1}`],
    ageCol,
    ['Containers', 'string', 1, (o) => (o.spec?.template?.spec?.containers ?? []).map((c: any) => c.name).join(',')],
    ['Images', 'string', 1, (o) => (o.spec?.template?.spec?.containers ?? []).map((c: any) => c.image).join(',')],
  ],
  poddisruptionbudgets: [
    nameCol,
    ['Min Available', 'string', 0, (o) => (o.spec?.minAvailable === undefined ? 'N/A' : String(o.spec.minAvailable))],
    ['Max Unavailable', 'string', 0, (o) => (o.spec?.maxUnavailable === undefined ? 'N/A' : String(o.spec.maxUnavailable))],
    ['Allowed Disruptions', 'integer', 0, (o) => o.status?.disruptionsAllowed ?? 0],
    ageCol,
  ],
  persistentvolumeclaims: [
    nameCol,
    ['Status', 'string', 0, (o) => o.status?.phase ?? 'Pending'],
    ['Volume', 'string', 0, (o) => o.spec?.volumeName ?? ''],
    ['Capacity', 'string', 0, (o) => o.status?.capacity?.storage ?? ''],
    ['Access Modes', 'string', 0, (o) => (o.status?.accessModes ?? []).map((m: string) => ({ ReadWriteOnce: 'RWO', ReadOnlyMany: 'ROX', ReadWriteMany: 'RWX', ReadWriteOncePod: 'RWOP' })[m] ?? m).join(',')],
    ['StorageClass', 'string', 0, (o) => o.spec?.storageClassName ?? ''],
    ['VolumeAttributesClass', 'string', 0, (o) => o.spec?.volumeAttributesClassName ?? '<unset>'],
    ageCol,
    ['VolumeMode', 'string', 1, (o) => o.spec?.volumeMode ?? 'Filesystem'],
  ],
  namespaces: [nameCol, ['Status', 'string', 0, (o) => o.status?.phase ?? 'Active'], ageCol],
};

/** A meta.k8s.io/v1 Table of the objects; rows carry the object's metadata or the whole object (includeObject). */
export function asTable(t: ResourceType, items: KubeObject[], resourceVersion: string, includeObject: string | null): Record<string, unknown> {
  const cols = COLUMNS[t.resource]!;
  return {
    kind: 'Table',
    apiVersion: 'meta.k8s.io/v1',
    metadata: { resourceVersion },
    columnDefinitions: cols.map(([name, type, priority]) => ({ name, type, format: name === 'Name' ? 'name' : '', description: name, priority })),
    rows: items.map((o) => ({
      cells: cols.map(([, , , cell]) => cell(o)),
      object:
        includeObject === 'None'
          ? undefined
          : includeObject === 'Object'
            ? o
            : { kind: 'PartialObjectMetadata', apiVersion: 'meta.k8s.io/v1', metadata: o.metadata },
    })),
  };
}
