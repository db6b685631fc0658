import { createHash } from 'node:crypto';
import { Agent as HttpsAgent, type AgentOptions, type RequestOptions } from 'node:https';
import {
  AppsV1Api,
  CertificatesV1Api,
  CoreV1Api,
  CustomObjectsApi,
  KubeConfig,
  Observable,
  PolicyV1Api,
  type ConfigurationOptions,
  type ObservableMiddleware,
  type RequestContext,
  type ResponseContext,
} from '@kubernetes/client-node';
import { IN_CLUSTER, type ClusterConfig } from '../config/schema.js';
import { KubeError, toKubeError } from './errors.js';

/** Every call to an API server gives up after this long unless told otherwise. */
export const DEFAULT_KUBE_TIMEOUT_MS = 5000;

/**
 * A KubeConfig whose fetch-based users (client-node's `Watch`) give up when the
 * response headers do not arrive in time. `Watch` passes no timeout and no signal
 * of its own until the server answers, so a server that accepts the connection
 * and never answers would hold it forever; node-fetch's `timeout` bounds exactly
 * the wait for headers and not the streamed body that follows.
 */
class BoundedKubeConfig extends KubeConfig {
  constructor(
    private readonly headersTimeoutMs: number,
    private readonly keepAlive = false,
  ) {
    super();
  }

  override async applyToFetchOptions(opts: RequestOptions) {
    return super.applyToFetchOptions({ ...opts, timeout: opts.timeout ?? this.headersTimeoutMs });
  }

  override async applySecurityAuthentication(context: RequestContext) {
    await super.applySecurityAuthentication(context);
    // client-node makes a new agent, so a new TLS connection, for every call; with keepAlive, calls with the
    // same server and credentials share one agent. A proxy's agent (another class) is left as it is.
    const made = context.getAgent();
    if (this.keepAlive && made && made.constructor === HttpsAgent) context.setAgent(keptAgent(this.getCurrentCluster()?.server ?? '', (made as HttpsAgent).options));
  }
}

/**
 * How long an idle connection of a keep-alive KubeCluster stays open. Shorter than a
 * kube-apiserver keeps one (90 s) and than the idle timeouts load balancers in front
 * of it commonly have, so the API server's side is still there when it is used again.
 * A server that announces a shorter one (`Keep-Alive: timeout=5`) is believed.
 */
export const KEEP_ALIVE_IDLE_MS = 15_000;

/** Agents by server and credentials (digested: the key of a client certificate is part of what tells them apart). */
const keptAgents = new Map<string, HttpsAgent>();

function keptAgent(server: string, o: AgentOptions): HttpsAgent {
  const h = createHash('sha256');
  for (const part of [server, o.ca, o.cert, o.key, o.pfx, o.passphrase, String(o.rejectUnauthorized), o.servername]) {
    h.update(JSON.stringify(part === undefined ? null : Buffer.isBuffer(part) ? part.toString('base64') : part));
  }
  const k = h.digest('hex');
  let agent = keptAgents.get(k);
  if (!agent) {
    agent = new HttpsAgent({ ...o, keepAlive: true, timeout: KEEP_ALIVE_IDLE_MS, maxFreeSockets: 2 });
    keptAgents.set(k, agent);
  }
  return agent;
}

export interface KubeClusterOptions {
  timeoutMs?: number;
  /**
   * Reuse connections between calls (idle ones closed after KEEP_ALIVE_IDLE_MS): for reads asked
   * often, like the pending CSRs of every `/etcd status`, which otherwise open a TLS connection each.
   */
  keepAlive?: boolean;
}

/**
 * One cluster's Kubernetes API, as the bot reaches it: the kubeconfig named in
 * the inventory (or the pod's service account with `kubeconfig: in-cluster`),
 * typed API clients, and calls bounded by a timeout whose failure says why in
 * a few words. The only place that builds client-node objects.
 */
export class KubeCluster {
  readonly core: CoreV1Api;
  readonly certificates: CertificatesV1Api;
  readonly apps: AppsV1Api;
  readonly policy: PolicyV1Api;
  /** Operators' resources (OpenShift's etcds.operator.openshift.io). */
  readonly custom: CustomObjectsApi;

  private constructor(
    readonly cluster: string,
    /** The kubeconfig path, or "in-cluster". */
    readonly source: string,
    readonly config: KubeConfig,
    readonly timeoutMs: number,
  ) {
    this.core = config.makeApiClient(CoreV1Api);
    this.certificates = config.makeApiClient(CertificatesV1Api);
    this.apps = config.makeApiClient(AppsV1Api);
    this.policy = config.makeApiClient(PolicyV1Api);
    this.custom = config.makeApiClient(CustomObjectsApi);
  }

  /** The API server URL of the kubeconfig's current context. */
  get server(): string {
    return this.config.getCurrentCluster()!.server;
  }

  /** Where calls go, as reasons name it: host:port. */
  get where(): string {
    return hostPort(this.server);
  }

  /**
   * Loads the cluster's kubeconfig. Throws a KubeError('not-configured') that says
   * what to configure when the inventory names none or it cannot be used.
   */
  static forCluster(cluster: ClusterConfig, opts: KubeClusterOptions = {}): KubeCluster {
    const timeoutMs = opts.timeoutMs ?? DEFAULT_KUBE_TIMEOUT_MS;
    const source = cluster.kubeconfig;
    if (!source) {
      throw new KubeError(
        'not-configured',
        `cluster ${cluster.name} has no Kubernetes access configured: set clusters[].kubeconfig in the inventory to a kubeconfig file (or "in-cluster" when the bot runs in that cluster)`,
      );
    }
    const kc = new BoundedKubeConfig(timeoutMs, opts.keepAlive);
    if (source === IN_CLUSTER) {
      // The same variables client-node's loadFromCluster reads (with the service account's token and CA files).
      const env = process.env;
      if (!env.KUBERNETES_SERVICE_HOST || !env.KUBERNETES_SERVICE_PORT) {
        throw new KubeError('not-configured', `cluster ${cluster.name}: kubeconfig is "in-cluster", but KUBERNETES_SERVICE_HOST/PORT are not set (the bot is not running in a pod)`);
      }
      kc.loadFromCluster();
    } else {
      try {
        kc.loadFromFile(source);
      } catch (err) {
        const e = err as NodeJS.ErrnoException;
        throw new KubeError('not-configured', `cluster ${cluster.name}: cannot load the kubeconfig ${source}: ${e.code ?? e.message?.split('\n')[0]}`);
      }
    }
    const current = kc.getCurrentCluster();
    if (!current?.server) {
      throw new KubeError('not-configured', `cluster ${cluster.name}: the kubeconfig ${source} has no current context with a server`);
    }
    return new KubeCluster(cluster.name, source, kc, timeoutMs);
  }

  /**
   * The same API server and CA, authenticated with a bearer token instead of the
   * kubeconfig's user: what a kubelet's bootstrap kubeconfig presents, asked
   * here to learn whether the server still accepts that token.
   */
  withToken(token: string): KubeCluster {
    const c = this.config.getCurrentCluster()!;
    const kc = new BoundedKubeConfig(this.timeoutMs);
    kc.loadFromOptions({
      clusters: [{ name: c.name, server: c.server, caData: c.caData, caFile: c.caFile, skipTLSVerify: c.skipTLSVerify, tlsServerName: c.tlsServerName }],
      users: [{ name: 'bootstrap-token', token }],
      contexts: [{ name: 'bootstrap-token', cluster: c.name, user: 'bootstrap-token' }],
      currentContext: 'bootstrap-token',
    });
    return new KubeCluster(this.cluster, `${this.source} (server and CA) with a bootstrap token`, kc, this.timeoutMs);
  }

  /**
   * Runs one API call bounded by the timeout, and turns any failure into a
   * KubeError. `fn` must pass the options it is given to the client-node method:
   * they carry the abort signal that ends the HTTP request on time.
   */
  async call<T>(fn: (options: ConfigurationOptions) => Promise<T>, timeoutMs = this.timeoutMs): Promise<T> {
    const signal = AbortSignal.timeout(timeoutMs);
    // client-node 1.x has no timeout option: a call-time middleware hands the request
    // (node-fetch under the hood) an abort signal. The object-style APIs take
    // observable middleware (client-node's own small Observable over a promise).
    const withSignal: ObservableMiddleware = {
      pre: (ctx: RequestContext) => {
        ctx.setSignal(signal);
        return new Observable(Promise.resolve(ctx));
      },
      post: (rsp: ResponseContext) => new Observable(Promise.resolve(rsp)),
    };
    const options: ConfigurationOptions = { middleware: [withSignal], middlewareMergeStrategy: 'append' };
    let onAbort: (() => void) | undefined;
    // Also bounds what happens before the request is sent (reading token and cert files, exec plugins).
    const expired = new Promise<never>((_, reject) => {
      onAbort = () => reject(signal.reason);
      signal.addEventListener('abort', onAbort, { once: true });
    });
    try {
      return await Promise.race([fn(options), expired]);
    } catch (err) {
      throw toKubeError(err, this.where, timeoutMs);
    } finally {
      signal.removeEventListener('abort', onAbort!);
    }
  }
}

/** host:port of a URL, with the scheme's default port filled in. */
export function hostPort(url: string): string {
  try {
    const u = new URL(url);
    return `${u.hostname}:${u.port || (u.protocol === 'http:' ? '80' : '443')}`;
  } catch {
    return url;
  }
}
