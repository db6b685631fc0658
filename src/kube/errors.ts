import { ErrorCode, MedicError, oneLine } from '../errors.js';

/** What went wrong talking to a Kubernetes API server, sorted by what an operator does about it. */
export type KubeErrorKind =
  | 'not-configured' // the cluster has no kubeconfig, or it cannot be loaded
  | 'unauthorized' // 401: the credentials are not accepted
  | 'forbidden' // 403: accepted, but not allowed to do this
  | 'not-found' // 404
  | 'conflict' // 409: the object changed meanwhile
  | 'gone' // 410: a watch's resourceVersion is too old
  | 'too-many-requests' // 429: an eviction a PodDisruptionBudget does not allow now (or the server's rate limit)
  | 'refused' // nothing listens (the API server is down)
  | 'unreachable' // no route, or the name does not resolve
  | 'timeout' // no answer within the call timeout
  | 'tls' // the handshake failed (CA, certificate, name)
  | 'error';

/**
 * A failed Kubernetes call, with a short reason a person reads in Slack
 * ("connection refused (10.0.0.1:6443)", "no answer within 5 s") and, for
 * answers of the API server, its HTTP status.
 */
export class KubeError extends MedicError {
  constructor(
    readonly kind: KubeErrorKind,
    readonly reason: string,
    readonly status?: number,
  ) {
    super(ErrorCode.Kube, reason);
  }
}

interface ErrorLike {
  name?: string;
  message?: string;
  code?: unknown;
  type?: string;
  statusCode?: number;
  body?: unknown;
  cause?: unknown;
}

/** The `message` of a Kubernetes Status body (what kubectl prints after "Error from server"). */
function statusMessage(body: unknown): string | undefined {
  if (typeof body === 'string') {
    try {
      return statusMessage(JSON.parse(body));
    } catch {
      return body.trim().slice(0, 200) || undefined;
    }
  }
  if (body && typeof body === 'object' && typeof (body as { message?: unknown }).message === 'string') {
    return (body as { message: string }).message;
  }
  return undefined;
}

const httpKinds: Record<number, [KubeErrorKind, string]> = {
  401: ['unauthorized', 'unauthorized (401): the API server does not accept the credentials of the kubeconfig'],
  403: ['forbidden', 'forbidden (403)'],
  404: ['not-found', 'not found (404)'],
  409: ['conflict', 'conflict (409): changed meanwhile'],
  410: ['gone', 'gone (410): resourceVersion too old'],
  429: ['too-many-requests', 'too many requests (429)'],
};

/** An answer of the API server with a non-2xx status, as a KubeError with the server's own words. */
export function httpError(status: number, body?: unknown): KubeError {
  const [kind, base] = httpKinds[status] ?? ['error', `HTTP ${status}`];
  const said = statusMessage(body);
  // 401 carries no useful body; 403/404/409 name the object and the user, which is what a person needs.
  return new KubeError(kind, said && status !== 401 ? `${base}: ${said}` : base, status);
}

const seconds = (ms: number) => (ms % 1000 === 0 ? `${ms / 1000} s` : `${(ms / 1000).toFixed(1)} s`);

/**
 * Maps whatever a call threw (client-node's ApiException, node-fetch's FetchError
 * and AbortError, a Node system error, an https error) to a KubeError with a
 * short human reason. `where` names the server, `timeoutMs` the bound that ran out.
 */
export function toKubeError(err: unknown, where: string, timeoutMs: number): KubeError {
  if (err instanceof KubeError) return err;
  const e = (err ?? {}) as ErrorLike;
  // client-node 1.x ApiException: `code` is the HTTP status, `body` the parsed Status.
  if (typeof e.code === 'number' && e.code >= 300 && e.code < 600) return httpError(e.code, e.body);
  if (typeof e.statusCode === 'number') return httpError(e.statusCode, e.body);
  const code = typeof e.code === 'string' ? e.code : typeof (e.cause as ErrorLike)?.code === 'string' ? ((e.cause as ErrorLike).code as string) : '';
  const message = String(e.message ?? err);
  if (e.name === 'AbortError' || e.name === 'TimeoutError' || e.type === 'aborted' || e.type === 'request-timeout' || code === 'ETIMEDOUT' || /timed? ?out/i.test(message)) {
    return new KubeError('timeout', `no answer from ${where} within ${seconds(timeoutMs)}`);
  }
  if (code === 'ECONNREFUSED') return new KubeError('refused', `connection refused (${where}): the API server is not running or not listening there`);
  if (code === 'ENOTFOUND' || code === 'EAI_AGAIN') return new KubeError('unreachable', `cannot resolve the host of ${where}`);
  if (code === 'EHOSTUNREACH' || code === 'ENETUNREACH') return new KubeError('unreachable', `no route to ${where}`);
  if (code === 'ECONNRESET' || /socket hang up/i.test(message)) return new KubeError('refused', `connection reset by ${where}`);
  if (code === 'ENOENT' || code === 'EACCES') return new KubeError('not-configured', `cannot read a file the kubeconfig names: ${message}`);
  if (/^(ERR_TLS|ERR_SSL|CERT_|UNABLE_TO|DEPTH_ZERO|SELF_SIGNED|ERR_OSSL)/.test(code) || /certificate|SSL|TLS|handshake/i.test(message)) {
    return new KubeError('tls', `TLS with ${where} failed: ${oneLine(message)}`);
  }
  return new KubeError('error', `${where}: ${oneLine(message)}`);
}
