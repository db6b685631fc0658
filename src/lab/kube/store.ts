import { randomUUID } from 'node:crypto';

export interface KubeObject {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string; uid: string; resourceVersion: string; creationTimestamp: string; generateName?: string; labels?: Record<string, string>; annotations?: Record<string, string>; [k: string]: any };
  spec?: any;
  status?: any;
  [k: string]: any;
}

/** An object as a client sends it: the server sets uid, resourceVersion and creationTimestamp. */
export type ObjectInput = Omit<KubeObject, 'metadata'> & { metadata: Partial<KubeObject['metadata']> };

export interface ResourceType {
  resource: string;
  group: string;
  kind: string;
  singular: string;
  namespaced: boolean;
  shortNames: string[];
  /** Subresources the stand-in serves, each with its verbs. */
  subresources: Record<string, string[]>;
  /** Subresources that take an object of another kind (pods/eviction: policy/v1 Eviction), as discovery names it. */
  subresourceKinds?: Record<string, { group: string; version: string; kind: string }>;
  /** The server counts changes of the spec in metadata.generation (workloads, PDBs), for controllers' observedGeneration. */
  generation?: boolean;
}

const VERBS = ['create', 'delete', 'get', 'list', 'patch', 'update', 'watch'];

export const RESOURCES: ResourceType[] = [
  { resource: 'namespaces', group: '', kind: 'Namespace', singular: 'namespace', namespaced: false, shortNames: ['ns'], subresources: {} },
  { resource: 'nodes', group: '', kind: 'Node', singular: 'node', namespaced: false, shortNames: ['no'], subresources: { status: ['get', 'patch', 'update'] } },
  {
    resource: 'pods',
    group: '',
    kind: 'Pod',
    singular: 'pod',
    namespaced: true,
    shortNames: ['po'],
    subresources: { status: ['get', 'patch', 'update'], eviction: ['create'] },
    subresourceKinds: { eviction: { group: 'policy', version: 'v1', kind: 'Eviction' } },
  },
  { resource: 'persistentvolumeclaims', group: '', kind: 'PersistentVolumeClaim', singular: 'persistentvolumeclaim', namespaced: true, shortNames: ['pvc'], subresources: { status: ['get', 'patch', 'update'] } },
  { resource: 'statefulsets', group: 'apps', kind: 'StatefulSet', singular: 'statefulset', namespaced: true, shortNames: ['sts'], subresources: { status: ['get', 'patch', 'update'] }, generation: true },
  { resource: 'poddisruptionbudgets', group: 'policy', kind: 'PodDisruptionBudget', singular: 'poddisruptionbudget', namespaced: true, shortNames: ['pdb'], subresources: { status: ['get', 'patch', 'update'] }, generation: true },
  {
    resource: 'certificatesigningrequests',
    group: 'certificates.k8s.io',
    kind: 'CertificateSigningRequest',
    singular: 'certificatesigningrequest',
    namespaced: false,
    shortNames: ['csr'],
    subresources: { approval: ['get', 'patch', 'update'], status: ['get', 'patch', 'update'] },
  },
  // OpenShift 4.4+'s etcd operator configuration (`oc patch etcd cluster`): cluster-scoped, one object named cluster.
  { resource: 'etcds', group: 'operator.openshift.io', kind: 'Etcd', singular: 'etcd', namespaced: false, shortNames: [], subresources: { status: ['get', 'patch', 'update'] } },
];
export const RESOURCE_VERBS = VERBS;

export function resourceType(resource: string, group: string): ResourceType | undefined {
  return RESOURCES.find((r) => r.resource === resource && r.group === group);
}

/** `certificatesigningrequests.certificates.k8s.io`, `nodes`: how the API server names a resource in messages. */
export function qualified(t: ResourceType): string {
  return t.group ? `${t.resource}.${t.group}` : t.resource;
}

/** An error the API answers with a `Status` object, with the reason and code the real server uses. */
export class ApiError extends Error {
  constructor(
    readonly code: number,
    readonly reason: string,
    message: string,
    readonly details?: { name?: string; group?: string; kind?: string; causes?: { reason?: string; message: string; field?: string }[] },
  ) {
    super(message);
  }

  static notFound(t: ResourceType, name: string): ApiError {
    return new ApiError(404, 'NotFound', `${qualified(t)} "${name}" not found`, { name, group: t.group || undefined, kind: t.resource });
  }

  static conflict(t: ResourceType, name: string): ApiError {
    return new ApiError(409, 'Conflict', `Operation cannot be fulfilled on ${qualified(t)} "${name}": the object has been modified; please apply your changes to the latest version and try again`, {
      name,
      group: t.group || undefined,
      kind: t.resource,
    });
  }

  static invalid(t: ResourceType, name: string, causes: { field: string; message: string }[]): ApiError {
    return new ApiError(422, 'Invalid', `${t.kind}${t.group ? `.${t.group}` : ''} "${name}" is invalid: ${causes.map((c) => `${c.field}: ${c.message}`).join(', ')}`, {
      name,
      group: t.group || undefined,
      kind: t.kind,
      causes: causes.map((c) => ({ reason: 'FieldValueInvalid', message: c.message, field: c.field })),
    });
  }

  toStatus(): Record<string, unknown> {
    return { kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Failure', message: this.message, reason: this.reason, details: this.details, code: this.code };
  }
}

export type EventType = 'ADDED' | 'MODIFIED' | 'DELETED';
interface Event {
  type: EventType;
  rv: number;
  t: ResourceType;
  object: KubeObject;
}
interface Watcher {
  t: ResourceType;
  namespace?: string;
  send(type: EventType, object: KubeObject): void;
}

const now = () => new Date().toISOString().replace(/\.\d+Z$/, 'Z');
const keyOf = (name: string, namespace?: string) => `${namespace ?? ''}/${name}`;
const NAME_CHARS = 'bcdfghjklmnpqrstvwxz2456789'; // the apiserver's generateName alphabet

/**
 * The API's objects, as etcd holds them for the real server: one global, increasing
 * resourceVersion; every write is an event kept in a bounded history so a watch can
 * resume after a given version, and answers "too old" once that version is compacted away.
 */
export class ObjectStore {
  private rv = 1;
  private readonly objects = new Map<ResourceType, Map<string, KubeObject>>(RESOURCES.map((t) => [t, new Map()]));
  private history: Event[] = [];
  /** Versions at or below this are gone from the history. */
  private compactedRv = 1;
  private readonly watchers = new Set<Watcher>();

  constructor(private readonly historySize = 1000) {}

  get resourceVersion(): string {
    return String(this.rv);
  }

  get(t: ResourceType, name: string, namespace?: string): KubeObject {
    const o = this.objects.get(t)!.get(keyOf(name, namespace));
    if (!o) throw ApiError.notFound(t, name);
    return structuredClone(o);
  }

  find(t: ResourceType, name: string, namespace?: string): KubeObject | undefined {
    const o = this.objects.get(t)!.get(keyOf(name, namespace));
    return o && structuredClone(o);
  }

  /** Items in key order (namespace/name), as etcd returns a prefix. */
  list(t: ResourceType, namespace?: string): { items: KubeObject[]; resourceVersion: string } {
    const items = [...this.objects.get(t)!.entries()]
      .filter(([, o]) => namespace === undefined || o.metadata.namespace === namespace)
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
      .map(([, o]) => structuredClone(o));
    return { items, resourceVersion: this.resourceVersion };
  }

  /** Creates with server-set uid, creationTimestamp and resourceVersion; `generateName` gets 5 random characters. */
  create(t: ResourceType, obj: ObjectInput): KubeObject {
    const o = structuredClone(obj) as KubeObject;
    let name = o.metadata?.name;
    if (!name && o.metadata?.generateName) {
      do name = o.metadata.generateName + Array.from({ length: 5 }, () => NAME_CHARS[Math.floor(Math.random() * NAME_CHARS.length)]).join('');
      while (this.objects.get(t)!.has(keyOf(name, o.metadata.namespace)));
    }
    if (!name) throw new ApiError(422, 'Invalid', `${t.kind} "" is invalid: metadata.name: Required value: name or generateName is required`);
    const key = keyOf(name, o.metadata.namespace);
    if (this.objects.get(t)!.has(key)) {
      throw new ApiError(409, 'AlreadyExists', `${qualified(t)} "${name}" already exists`, { name, group: t.group || undefined, kind: t.resource });
    }
    o.apiVersion = t.group ? `${t.group}/v1` : 'v1';
    o.kind = t.kind;
    o.metadata = { ...o.metadata, name, uid: randomUUID(), creationTimestamp: now(), resourceVersion: '', ...(t.generation ? { generation: 1 } : {}) };
    return this.write(t, key, 'ADDED', o);
  }

  /**
   * Replaces an object with `next` (what the caller computed from the current one).
   * A non-empty `expectedRv` that is not the current version is a 409 Conflict; an update
   * that changes nothing keeps the version and sends no event, as the real server does.
   */
  update(t: ResourceType, name: string, namespace: string | undefined, next: ObjectInput, expectedRv?: string): KubeObject {
    const key = keyOf(name, namespace);
    const cur = this.objects.get(t)!.get(key);
    if (!cur) throw ApiError.notFound(t, name);
    if (expectedRv && expectedRv !== cur.metadata.resourceVersion) throw ApiError.conflict(t, name);
    const o = structuredClone(next) as KubeObject;
    o.apiVersion = cur.apiVersion;
    o.kind = cur.kind;
    o.metadata = { ...o.metadata, name, namespace, uid: cur.metadata.uid, creationTimestamp: cur.metadata.creationTimestamp, resourceVersion: cur.metadata.resourceVersion };
    if (namespace === undefined) delete o.metadata.namespace;
    // Only the server moves generation: one more for each change of the spec.
    if (t.generation) o.metadata.generation = (cur.metadata.generation ?? 1) + (JSON.stringify(o.spec) === JSON.stringify(cur.spec) ? 0 : 1);
    if (JSON.stringify(o) === JSON.stringify(cur)) return structuredClone(cur);
    return this.write(t, key, 'MODIFIED', o);
  }

  delete(t: ResourceType, name: string, namespace?: string): KubeObject {
    const key = keyOf(name, namespace);
    const cur = this.objects.get(t)!.get(key);
    if (!cur) throw ApiError.notFound(t, name);
    this.objects.get(t)!.delete(key);
    const o = structuredClone(cur);
    o.metadata.resourceVersion = String(++this.rv);
    this.record('DELETED', t, o);
    return structuredClone(o);
  }

  /**
   * Starts a watch. From a version: every later event, then live ones; an already-compacted
   * version throws 410 Expired. Without one (or "0"): each current object as ADDED first.
   */
  watch(t: ResourceType, namespace: string | undefined, fromRv: string | undefined, send: Watcher['send']): () => void {
    const w: Watcher = { t, namespace, send };
    const matches = (o: KubeObject) => namespace === undefined || o.metadata.namespace === namespace;
    if (!fromRv || fromRv === '0') {
      for (const o of this.list(t, namespace).items) send('ADDED', o);
    } else {
      const from = Number(fromRv);
      if (!Number.isInteger(from) || from < 0) throw new ApiError(400, 'BadRequest', `invalid resource version: ${fromRv}`);
      if (from < this.compactedRv) throw new ApiError(410, 'Expired', `too old resource version: ${from} (${this.compactedRv})`);
      for (const e of this.history) if (e.rv > from && e.t === t && matches(e.object)) send(e.type, structuredClone(e.object));
    }
    this.watchers.add(w);
    return () => this.watchers.delete(w);
  }

  /** Fault: drops the whole history, as an etcd compaction does; older watches then get 410. */
  compact(): void {
    this.history = [];
    this.compactedRv = this.rv;
  }

  private write(t: ResourceType, key: string, type: EventType, o: KubeObject): KubeObject {
    o.metadata.resourceVersion = String(++this.rv);
    this.objects.get(t)!.set(key, o);
    this.record(type, t, o);
    return structuredClone(o);
  }

  private record(type: EventType, t: ResourceType, o: KubeObject): void {
    this.history.push({ type, rv: this.rv, t, object: structuredClone(o) });
    if (this.history.length > this.historySize) this.compactedRv = this.history.shift()!.rv;
    for (const w of this.watchers) if (w.t === t && (w.namespace === undefined || o.metadata.namespace === w.namespace)) w.send(type, structuredClone(o));
  }
}
