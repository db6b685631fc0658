import type { IncomingMessage, ServerResponse } from 'node:http';
import type { TLSSocket } from 'node:tls';
import { evict, refreshBudgets } from './disruption.js';
import { decodeProtobuf } from './protobuf.js';
import { asTable } from './tables.js';
import { ApiError, RESOURCE_VERBS, RESOURCES, qualified, resourceType, type KubeObject, type ObjectStore, type ResourceType } from './store.js';

export interface User {
  name: string;
  groups: string[];
}

/** What the API needs to know of the lab host whose endpoint answered. */
export interface ApiHost {
  name: string;
  address: string; // ip:port
  /** A quorum read against this host's etcd member, now (for /readyz). */
  etcdHealthy(): Promise<boolean>;
  /** The last answer of that check (for every other request, so they stay fast). */
  etcdOk(): boolean;
}

export interface ApiOptions {
  /** Bootstrap tokens, id → secret (kubeadm's `abcdef.0123456789abcdef`). */
  bootstrapTokens: Map<string, string>;
  /**
   * When a bootstrap token expires, by id (a kubeadm token's `expiration`, 24 h after `kubeadm token create` by default):
   * from then on the API server answers 401 to it, as the bootstrap authenticator does. A token not listed never expires.
   */
  bootstrapTokenExpiry?: Map<string, Date>;
  /** Users or groups granted a role beyond the built-in ones: `view` (get, list, watch) or `approve` (view, and CSR approval). */
  grants: Record<string, 'view' | 'approve'>;
  gitVersion: string;
  /** Called when a CSR has just been approved: the lab's signer issues its certificate. */
  onApproved(name: string): void;
}

const CSR = resourceType('certificatesigningrequests', 'certificates.k8s.io')!;
const CSR_FINAL = ['Approved', 'Denied', 'Failed'];
const PODS = resourceType('pods', '')!;
const PDBS = resourceType('poddisruptionbudgets', 'policy')!;
const HEALTH = new Set(['/livez', '/readyz', '/healthz']);

/**
 * The Kubernetes API as the real server answers the calls the bot and kubectl make:
 * client-cert and bootstrap-token authentication, a small RBAC, discovery, and the
 * verbs of nodes, pods and CSRs (with their approval and status subresources).
 */
export class KubeApi {
  /** Fault: this many next writes to a CSR's approval subresource answer 409 Conflict. */
  failApprovals = 0;
  private readonly watches = new Set<ServerResponse>();

  constructor(
    readonly store: ObjectStore,
    readonly opts: ApiOptions,
  ) {}

  /** Fault: every open watch connection is cut, as when an API server restarts. */
  dropWatches(): number {
    const n = this.watches.size;
    for (const res of this.watches) res.socket?.destroy();
    this.watches.clear();
    return n;
  }

  handler(host: ApiHost): (req: IncomingMessage, res: ServerResponse) => void {
    return (req, res) => {
      this.handle(host, req, res).catch((err: unknown) => {
        const e = err instanceof ApiError ? err : new ApiError(500, 'InternalError', `Internal error occurred: ${(err as Error).message}`);
        if (!res.headersSent) json(res, e.code, e.toStatus());
        else res.destroy();
      });
    };
  }

  private async handle(host: ApiHost, req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'https://lab');
    const path = url.pathname.replace(/\/+$/, '') || '/';
    // Anonymous requests are allowed on the health endpoints only (AnonymousAuthConfigurableEndpoints).
    if (HEALTH.has(path)) return this.health(host, path, url, res);
    const user = this.authenticate(req);
    if (!user) throw new ApiError(401, 'Unauthorized', 'Unauthorized');
    if (req.method === 'GET') {
      const doc = discovery(path, host, this.opts.gitVersion);
      if (doc) return json(res, 200, doc);
    }
    const m = /^\/(?:api\/v1|apis\/([^/]+)\/v1)\/(.+)$/.exec(path);
    let segs = m ? m[2]!.split('/') : [];
    let ns: string | undefined;
    if (segs[0] === 'namespaces' && segs.length >= 3) [ns, segs] = [segs[1], segs.slice(2)];
    const [resource, name, sub, ...extra] = segs;
    const t = m && resourceType(resource!, m[1] ?? '');
    if (!t || extra.length || (ns && !t.namespaced) || (sub && !t.subresources[sub])) throw new ApiError(404, 'NotFound', 'the server could not find the requested resource', {});
    const q = url.searchParams;
    const watch = q.get('watch') === 'true' || q.get('watch') === '1';
    // POST on a name is only for subresources that take an object of their own (pods/eviction).
    const verb = ({ GET: name ? 'get' : watch ? 'watch' : 'list', POST: name ? (sub && t.subresourceKinds?.[sub] ? 'create' : '') : 'create', PUT: name && 'update', PATCH: name && 'patch', DELETE: name && !sub && 'delete' } as Record<string, string | undefined>)[req.method ?? ''];
    if (!verb) throw new ApiError(405, 'MethodNotAllowed', 'the server does not allow this method on the requested resource');
    if (!authorize(user, verb, t, sub, name, this.opts.grants)) {
      const scope = ns ? `in the namespace "${ns}"` : 'at the cluster scope';
      throw new ApiError(403, 'Forbidden', `${qualified(t)}${name ? ` "${name}"` : ''} is forbidden: User "${user.name}" cannot ${verb} resource "${t.resource}${sub ? `/${sub}` : ''}" in API group "${t.group}" ${scope}`, { name, group: t.group, kind: t.resource });
    }
    // This host's API server reaches etcd only through its own member: without it, nothing but health answers.
    if (!host.etcdOk()) throw new ApiError(504, 'Timeout', 'Timeout: request did not complete within requested timeout - context deadline exceeded', {});

    const table = /as=Table/.test(req.headers.accept ?? '') ? (q.get('includeObject') ?? 'Metadata') : null;
    const filter = selector(q.get('labelSelector'), q.get('fieldSelector'));
    if (verb === 'get') {
      const o = this.store.get(t, name!, ns);
      return json(res, 200, table ? asTable(t, [o], o.metadata.resourceVersion, table) : o);
    }
    if (verb === 'list') {
      const { items, resourceVersion } = this.store.list(t, ns);
      const kept = items.filter(filter);
      if (table) return json(res, 200, asTable(t, kept, resourceVersion, table));
      // Items of a List carry no kind or apiVersion, as the real server sends them.
      const bare = kept.map(({ kind: _k, apiVersion: _a, ...rest }) => rest);
      return json(res, 200, { kind: `${t.kind}List`, apiVersion: t.group ? `${t.group}/v1` : 'v1', metadata: { resourceVersion }, items: bare });
    }
    if (verb === 'watch') return this.watch(req, res, t, ns, q, filter, table);
    if (verb === 'delete') {
      // DeleteOptions may carry preconditions: the object is deleted only if it is still that one (uid) at that version.
      const opts = await readOptionalJson(req);
      const pre = opts?.preconditions;
      if (pre?.uid || pre?.resourceVersion) {
        const cur = this.store.get(t, name!, ns);
        if (pre.uid && pre.uid !== cur.metadata.uid) throw new ApiError(409, 'Conflict', `Precondition failed: UID in precondition: ${pre.uid}, UID in object meta: ${cur.metadata.uid}`, { name, group: t.group || undefined, kind: t.resource });
        if (pre.resourceVersion && pre.resourceVersion !== cur.metadata.resourceVersion) {
          throw new ApiError(409, 'Conflict', `Precondition failed: ResourceVersion in precondition: ${pre.resourceVersion}, ResourceVersion in object meta: ${cur.metadata.resourceVersion}`, { name, group: t.group || undefined, kind: t.resource });
        }
      }
      const gone = this.store.delete(t, name!, ns);
      this.afterWrite(t, ns);
      return json(res, 200, gone);
    }

    const body = await readJson(req);
    if (verb === 'create' && sub === 'eviction') return json(res, 201, evict(this.store, ns!, name!, body));
    if (verb === 'create') {
      const made = this.create(t, ns, body, user);
      this.afterWrite(t, ns);
      return json(res, 201, this.store.find(t, made.metadata.name, ns) ?? made);
    }
    const cur = this.store.get(t, name!, ns);
    const next = verb === 'patch' ? patch(cur, body, String(req.headers['content-type'] ?? '')) : body;
    if (next?.metadata?.name && next.metadata.name !== name) throw new ApiError(400, 'BadRequest', `the name of the object (${next.metadata.name}) does not match the name on the URL (${name})`);
    if (sub === 'approval' && this.failApprovals > 0) {
      this.failApprovals--; // the injected fault: someone else wrote this CSR meanwhile
      throw ApiError.conflict(t, name!);
    }
    const updated = this.store.update(t, name!, ns, this.merge(t, sub, cur, next), next?.metadata?.resourceVersion);
    if (this.afterWrite(t, ns)) return json(res, 200, this.store.find(t, name!, ns) ?? updated);
    const approved = (o: KubeObject) => (o.status?.conditions ?? []).some((c: any) => c.type === 'Approved' && c.status === 'True');
    if (t === CSR && approved(updated) && !approved(cur)) this.opts.onApproved(name!);
    return json(res, 200, updated);
  }

  /** The disruption controller's part, at once: a write of a pod or a PDB refreshes the namespace's PDB statuses. Says whether it ran. */
  private afterWrite(t: ResourceType, ns: string | undefined): boolean {
    if (t !== PODS && t !== PDBS) return false;
    refreshBudgets(this.store, ns);
    return true;
  }

  /** What an update may change: the main resource leaves status alone, a subresource changes only its part. */
  private merge(t: ResourceType, sub: string | undefined, cur: KubeObject, next: any): KubeObject {
    if (!sub) return { ...next, metadata: { ...next.metadata }, spec: t === CSR ? cur.spec : next.spec, status: cur.status }; // a CSR's spec is immutable
    if (t !== CSR) return { ...cur, status: next.status };
    const conditions = (next.status?.conditions ?? []).map((c: any) => ({ ...c, lastUpdateTime: c.lastUpdateTime ?? now(), lastTransitionTime: c.lastTransitionTime ?? now() }));
    checkConditions(cur, conditions);
    if (sub === 'approval') return { ...cur, status: { ...cur.status, conditions } };
    if (next.status?.certificate && !conditions.some((c: any) => c.type === 'Approved')) {
      throw ApiError.invalid(t, cur.metadata.name, [{ field: 'status.certificate', message: 'Forbidden: certificate can only be set if the Approved condition is present' }]);
    }
    return { ...cur, status: { ...next.status, conditions } };
  }

  private create(t: ResourceType, ns: string | undefined, body: any, user: User): KubeObject {
    if (!body || typeof body !== 'object') throw new ApiError(400, 'BadRequest', 'the body of the request was in an unknown format');
    if (ns && body.metadata?.namespace && body.metadata.namespace !== ns) throw new ApiError(400, 'BadRequest', 'the namespace of the provided object does not match the namespace sent on the request');
    if (ns && !this.store.find(resourceType('namespaces', '')!, ns)) throw ApiError.notFound(resourceType('namespaces', '')!, ns);
    if (body.metadata?.resourceVersion) throw new ApiError(500, 'InternalError', 'resourceVersion should not be set on objects to be created');
    const o = { ...body, metadata: { ...body.metadata, namespace: ns } };
    if (!ns) delete o.metadata.namespace;
    if (t === CSR) {
      const spec = body.spec ?? {};
      const causes: { field: string; message: string }[] = [];
      if (!/-----BEGIN CERTIFICATE REQUEST-----/.test(Buffer.from(String(spec.request ?? ''), 'base64').toString())) causes.push({ field: 'spec.request', message: 'Invalid value: []byte{...}: PEM block type must be CERTIFICATE REQUEST' });
      if (!spec.signerName) causes.push({ field: 'spec.signerName', message: 'Required value' });
      if (!Array.isArray(spec.usages) || spec.usages.length === 0) causes.push({ field: 'spec.usages', message: 'Required value' });
      if (causes.length) throw ApiError.invalid(t, body.metadata?.name ?? body.metadata?.generateName ?? '', causes);
      // Who asked is the authenticated user, whatever the body says.
      o.spec = { ...spec, username: user.name, groups: user.groups, uid: undefined, extra: undefined };
      o.status = {};
    }
    // The pod registry starts every pod Pending, whatever status the body carries; the scheduler and kubelet take it from there.
    if (t === PODS) o.status = { phase: 'Pending', qosClass: 'BestEffort' };
    return this.store.create(t, o);
  }

  private watch(req: IncomingMessage, res: ServerResponse, t: ResourceType, ns: string | undefined, q: URLSearchParams, filter: (o: KubeObject) => boolean, table: string | null): void {
    let out: ((line: string) => void) | null = null;
    const pending: string[] = [];
    const send = (type: string, o: KubeObject) => {
      if (!filter(o)) return;
      const line = JSON.stringify({ type, object: table ? asTable(t, [o], o.metadata.resourceVersion, table) : o }) + '\n';
      if (out) out(line);
      else pending.push(line);
    };
    let stop: () => void;
    try {
      stop = this.store.watch(t, ns, q.get('resourceVersion') ?? undefined, send);
    } catch (err) {
      // Past authorization a watch fails as an ERROR event on a 200 stream, as the real watch cache does.
      if (!(err instanceof ApiError) || err.code !== 410) throw err;
      res.writeHead(200, { 'Content-Type': 'application/json' });
      res.end(JSON.stringify({ type: 'ERROR', object: err.toStatus() }) + '\n');
      return;
    }
    res.writeHead(200, { 'Content-Type': 'application/json', 'Transfer-Encoding': 'chunked' });
    res.flushHeaders();
    out = (line) => res.write(line);
    for (const line of pending) out(line);
    this.watches.add(res);
    const timeout = Number(q.get('timeoutSeconds') ?? 0);
    const timer = timeout > 0 ? setTimeout(() => res.end(), timeout * 1000) : undefined;
    const close = () => {
      clearTimeout(timer);
      stop();
      this.watches.delete(res);
    };
    res.once('close', close);
    req.once('close', close);
  }

  private async health(host: ApiHost, path: string, url: URL, res: ServerResponse): Promise<void> {
    const check = path.slice(1);
    const ok = check === 'livez' || (await host.etcdHealthy());
    const mark = (name: string, good: boolean) => (good ? `[+]${name} ok` : `[-]${name} failed: reason withheld`);
    const lines = ['[+]ping ok', '[+]log ok', mark('etcd', ok), ...(check === 'readyz' ? [mark('etcd-readiness', ok), '[+]informer-sync ok'] : []), '[+]poststarthook/start-apiserver-admission-initializer ok'];
    res.writeHead(ok ? 200 : 500, { 'Content-Type': 'text/plain; charset=utf-8', 'X-Content-Type-Options': 'nosniff' });
    res.end(ok && !url.searchParams.has('verbose') ? 'ok' : `${lines.join('\n')}\n${check} check ${ok ? 'passed' : 'failed'}\n`);
  }

  private authenticate(req: IncomingMessage): User | null {
    const sock = req.socket as TLSSocket;
    if (sock.authorized) {
      const c = sock.getPeerCertificate();
      const o = c?.subject?.O as string | string[] | undefined;
      const cn = c?.subject?.CN as string | string[] | undefined;
      if (typeof cn === 'string' && cn) return { name: cn, groups: [...(o === undefined ? [] : Array.isArray(o) ? o : [o]), 'system:authenticated'] };
    }
    const token = /^Bearer ([a-z0-9]{6})\.([a-z0-9]{16})$/.exec(req.headers.authorization ?? '');
    const expires = token ? this.opts.bootstrapTokenExpiry?.get(token[1]!) : undefined;
    if (token && this.opts.bootstrapTokens.get(token[1]!) === token[2] && (!expires || expires.getTime() > Date.now())) {
      return { name: `system:bootstrap:${token[1]}`, groups: ['system:bootstrappers', 'system:bootstrappers:kubeadm:default-node-token', 'system:authenticated'] };
    }
    return null;
  }
}

/** The built-in roles: cluster-admin (system:masters), node bootstrapper, nodes (NodeRestriction-like), and granted view/approve. */
function authorize(user: User, verb: string, t: ResourceType, sub: string | undefined, name: string | undefined, grants: ApiOptions['grants']): boolean {
  const g = new Set(user.groups);
  if (g.has('system:masters')) return true;
  const read = ['get', 'list', 'watch'].includes(verb);
  const role = grants[user.name] ?? user.groups.map((x) => grants[x]).find(Boolean);
  if (role && read) return true;
  if (role === 'approve' && t === CSR && sub === 'approval') return true;
  if (t === CSR && !sub && ['create', 'get', 'list', 'watch'].includes(verb) && (g.has('system:bootstrappers') || g.has('system:nodes'))) return true;
  if (g.has('system:nodes') && user.name.startsWith('system:node:')) {
    if (t.resource === 'nodes') return read || verb === 'create' || (['update', 'patch'].includes(verb) && name === user.name.slice(12));
    if (t.resource === 'pods') return read;
  }
  return false;
}

/** Condition rules of certificates.k8s.io/v1 validation: final conditions stay, Approved and Denied exclude each other. */
function checkConditions(cur: KubeObject, conditions: any[]): void {
  const types = conditions.map((c) => c.type);
  const bad = (field: string, message: string) => ApiError.invalid(CSR, cur.metadata.name, [{ field, message }]);
  types.forEach((type, i) => {
    if (types.indexOf(type) !== i) throw bad(`status.conditions[${i}].type`, `Duplicate value: "${type}"`);
    if (CSR_FINAL.includes(type) && conditions[i].status !== 'True') throw bad(`status.conditions[${i}].status`, `Unsupported value: "${conditions[i].status}": supported values: "True"`);
  });
  if (types.includes('Approved') && types.includes('Denied')) throw bad(`status.conditions[${types.indexOf('Denied')}].type`, 'Invalid value: "Denied": Approved and Denied conditions are mutually exclusive');
  for (const c of cur.status?.conditions ?? []) {
    if (CSR_FINAL.includes(c.type) && !types.includes(c.type)) throw bad('status.conditions', `Forbidden: updates may not remove a condition of type "${c.type}"`);
  }
}

/** labelSelector (k=v, k!=v, k, !k) and fieldSelector (path=value, path!=value) as one filter. */
function selector(labels: string | null, fields: string | null): (o: KubeObject) => boolean {
  const tests: ((o: KubeObject) => boolean)[] = [];
  for (const term of (labels ?? '').split(',').filter(Boolean)) {
    const m = /^(!?)([^=!]+?)(?:(==|=|!=)(.*))?$/.exec(term.trim());
    if (!m) throw new ApiError(400, 'BadRequest', `unable to parse requirement: ${term}`);
    const [, not, k, op, v] = m;
    tests.push((o) => { const has = o.metadata.labels?.[k!]; return op ? (op === '!=') !== (has === v) : !not === (has !== undefined); });
  }
  for (const term of (fields ?? '').split(',').filter(Boolean)) {
    const m = /^([^=!]+)(==|=|!=)(.*)$/.exec(term);
    if (!m) throw new ApiError(400, 'BadRequest', `invalid field selector: ${term}`);
    const [, path, op, v] = m;
    tests.push((o) => { const got = path!.split('.').reduce<any>((x, k) => x?.[k], o); return (op === '!=') !== (String(got ?? '') === v); });
  }
  return (o) => tests.every((f) => f(o));
}

/** JSON merge patch (RFC 7386), strategic merge patch (lists of the fields below merged by their key), JSON patch (RFC 6902). */
function patch(cur: KubeObject, body: any, contentType: string): any {
  if (contentType.startsWith('application/json-patch+json')) {
    const doc = structuredClone(cur) as any;
    for (const op of Array.isArray(body) ? body : []) {
      const keys = String(op.path).split('/').slice(1).map((k) => k.replace(/~1/g, '/').replace(/~0/g, '~'));
      const last = keys.pop()!;
      const parent = keys.reduce((x, k) => x?.[k], doc);
      if (parent === undefined) throw new ApiError(422, 'Invalid', `the server rejected our request due to an error in our request: path ${op.path} not found`);
      if (op.op === 'test' && JSON.stringify(parent[last]) !== JSON.stringify(op.value)) throw new ApiError(422, 'Invalid', `the server rejected our request due to an error in our request: test failed at ${op.path}`);
      if (op.op === 'remove') Array.isArray(parent) ? parent.splice(Number(last), 1) : delete parent[last];
      if (op.op === 'add' && Array.isArray(parent)) parent.splice(last === '-' ? parent.length : Number(last), 0, op.value);
      else if (op.op === 'add' || op.op === 'replace') parent[last] = op.value;
    }
    return doc;
  }
  if (!/^application\/(merge-patch|strategic-merge-patch|apply-patch)/.test(contentType)) throw new ApiError(415, 'UnsupportedMediaType', `the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json, application/strategic-merge-patch+json`);
  const strategic = contentType.startsWith('application/strategic-merge-patch');
  const mergeInto = (a: any, b: any, field?: string): any => {
    if (strategic && Array.isArray(b) && field && MERGE_KEYS[field] && Array.isArray(a)) return mergeList(a, b, MERGE_KEYS[field]!);
    if (b === null || typeof b !== 'object' || Array.isArray(b)) return b;
    const r = a && typeof a === 'object' && !Array.isArray(a) ? { ...a } : {};
    for (const [k, v] of Object.entries(b)) {
      // kubectl apply's directives ($setElementOrder/containers, $retainKeys): order and pruning hints the stand-in does not need.
      if (strategic && k.startsWith('$')) continue;
      v === null ? delete r[k] : (r[k] = mergeInto(r[k], v, k));
    }
    return r;
  };
  const mergeList = (a: any[], b: any[], key: string): any[] => {
    const out = [...a];
    for (const item of b) {
      const i = out.findIndex((x) => x?.[key] === item?.[key]);
      if (item?.$patch === 'delete') {
        if (i >= 0) out.splice(i, 1);
      } else if (i >= 0) out[i] = mergeInto(out[i], item);
      else out.push(mergeInto(undefined, item));
    }
    return out;
  };
  return mergeInto(cur, body);
}

/** The patchMergeKey of the list fields strategic merge patch merges (k8s.io/api core/v1, apps/v1); any other list is replaced whole (args, command). */
const MERGE_KEYS: Record<string, string> = {
  containers: 'name',
  initContainers: 'name',
  env: 'name',
  volumes: 'name',
  volumeMounts: 'mountPath',
  volumeClaimTemplates: 'name',
  ports: 'containerPort',
  conditions: 'type',
  imagePullSecrets: 'name',
  taints: 'key',
};

function discovery(path: string, host: ApiHost, gitVersion: string): unknown {
  const groups = [...new Set(RESOURCES.map((r) => r.group).filter(Boolean))];
  const groupDoc = (g: string) => ({ name: g, versions: [{ groupVersion: `${g}/v1`, version: 'v1' }], preferredVersion: { groupVersion: `${g}/v1`, version: 'v1' } });
  const resourceList = (g: string) => ({
    kind: 'APIResourceList',
    apiVersion: 'v1',
    groupVersion: g ? `${g}/v1` : 'v1',
    resources: RESOURCES.filter((r) => r.group === g).flatMap((r) => [
      { name: r.resource, singularName: r.singular, namespaced: r.namespaced, kind: r.kind, verbs: RESOURCE_VERBS, shortNames: r.shortNames, ...(r.resource === 'pods' ? { categories: ['all'] } : {}) },
      // A subresource of another kind says its group and version (kubectl drain looks for pods/eviction as policy/v1 Eviction).
      ...Object.entries(r.subresources).map(([s, verbs]) => ({ name: `${r.resource}/${s}`, singularName: '', namespaced: r.namespaced, ...(r.subresourceKinds?.[s] ?? { kind: r.kind }), verbs })),
    ]),
  });
  if (path === '/version') {
    const [, major, minor] = /^v(\d+)\.(\d+)/.exec(gitVersion)!;
    return { major, minor, gitVersion, gitCommit: '0000000000000000000000000000000000000000', gitTreeState: 'clean', buildDate: '2025-04-22T16:00:00Z', goVersion: 'go1.23.8', compiler: 'gc', platform: 'linux/amd64' };
  }
  // Plain application/json answers: kubectl asks for aggregated discovery first and falls back to these.
  if (path === '/api') return { kind: 'APIVersions', versions: ['v1'], serverAddressByClientCIDRs: [{ clientCIDR: '0.0.0.0/0', serverAddress: host.address }] };
  if (path === '/api/v1') return resourceList('');
  if (path === '/apis') return { kind: 'APIGroupList', apiVersion: 'v1', groups: groups.map(groupDoc) };
  for (const g of groups) {
    if (path === `/apis/${g}`) return { kind: 'APIGroup', apiVersion: 'v1', ...groupDoc(g) };
    if (path === `/apis/${g}/v1`) return resourceList(g);
  }
  return undefined;
}

function now(): string {
  return new Date().toISOString().replace(/\.\d+Z$/, 'Z');
}

function json(res: ServerResponse, code: number, body: unknown): void {
  res.writeHead(code, { 'Content-Type': 'application/json' });
  res.end(JSON.stringify(body));
}

/** A body that may be absent (a DELETE without DeleteOptions): null then. */
async function readOptionalJson(req: IncomingMessage): Promise<any> {
  const chunks: Buffer[] = [];
  for await (const c of req) chunks.push(c as Buffer);
  const raw = Buffer.concat(chunks);
  if (raw.length === 0) return null;
  if (String(req.headers['content-type'] ?? '').startsWith('application/vnd.kubernetes.protobuf')) return decodeProtobuf(raw);
  try {
    return JSON.parse(raw.toString('utf8'));
  } catch {
    throw new ApiError(400, 'BadRequest', 'the body of the request was in an unknown format');
  }
}

/** The request body as JSON: JSON as sent, or the protobuf of a built-in type (client-go's typed clients send that). */
async function readJson(req: IncomingMessage): Promise<any> {
  let size = 0;
  const chunks: Buffer[] = [];
  for await (const c of req) {
    size += (c as Buffer).length;
    if (size > 3 * 1024 * 1024) throw new ApiError(413, 'RequestEntityTooLarge', 'Request entity too large: limit is 3145728');
    chunks.push(c as Buffer);
  }
  if (String(req.headers['content-type'] ?? '').startsWith('application/vnd.kubernetes.protobuf')) {
    const decoded = decodeProtobuf(Buffer.concat(chunks));
    if (!decoded) throw new ApiError(415, 'UnsupportedMediaType', 'the body of the request was in an unknown format - accepted media types include: application/json, application/yaml');
    return decoded;
  }
  try {
    return JSON.parse(Buffer.concat(chunks).toString('utf8'));
  } catch {
    throw new ApiError(400, 'BadRequest', 'the body of the request was in an unknown format');
  }
}
