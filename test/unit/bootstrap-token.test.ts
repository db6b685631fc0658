import { describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { bootstrapCredential } from '../../src/kube/bootstrap-token.js';
import { placesFrom } from '../../src/worker/steps/kubelet-preflight.js';

const conf = (user: Record<string, unknown>) =>
  stringify({
    apiVersion: 'v1',
    kind: 'Config',
    clusters: [{ name: 'kubernetes', cluster: { server: 'https://10.0.0.100:6443' } }],
    users: [{ name: 'tls-bootstrap-token-user', user }],
    contexts: [{ name: 'boot', context: { cluster: 'kubernetes', user: 'tls-bootstrap-token-user' } }],
    'current-context': 'boot',
  });

describe("the bootstrap credential of a node's bootstrap kubeconfig", () => {
  it("reads kubeadm's bootstrap token and its id (only the id is ever shown)", () => {
    expect(bootstrapCredential(conf({ token: 'abcdef.0123456789abcdef' }))).toEqual({ token: 'abcdef.0123456789abcdef', id: 'abcdef' });
    // A service account token (OpenShift's node-bootstrapper) is a token without a bootstrap id.
    expect(bootstrapCredential(conf({ token: 'eyJhbGciOi.x.y' }))).toEqual({ token: 'eyJhbGciOi.x.y', id: null });
  });

  it('says why there is nothing to check rather than guessing: a token file, a client certificate, no user, not YAML', () => {
    expect(bootstrapCredential(conf({ tokenFile: '/var/run/token' }))).toEqual({ none: 'its user reads its token from /var/run/token' });
    expect(bootstrapCredential(conf({ 'client-certificate': '/pki/c.pem' }))).toEqual({ none: 'its user has no token (a client certificate, or an exec plugin)' });
    expect(bootstrapCredential('apiVersion: v1\nkind: Config\n')).toEqual({ none: 'it names no user for its current context' });
    expect('none' in bootstrapCredential('users: [')).toBe(true);
  });
});

describe('the nodes whose bootstrap credentials a kubelet restart looks at first', () => {
  const step = (node: string) => ({ kind: 'kubelet-rebootstrap', params: { node, unit: 'kubelet', cert: 'c', kubeconfig: 'k', bootstrapConfig: `/b/${node}`, asideDir: 'a', certAside: 'ca', kubeconfigAside: 'ka', marker: 'm' } });
  it('its own and those of the restarts after it not done yet, never those already done', () => {
    const run = { steps: [step('m1'), step('w1'), step('w2'), { kind: 'kubelet-csrs', params: {} }], records: [{ status: 'done' }, { status: 'pending' }, { status: 'done' }, { status: 'pending' }] } as never;
    expect(placesFrom(run, 1).map((p) => p.node)).toEqual(['w1']);
    expect(placesFrom(run, 0).map((p) => p.node)).toEqual(['m1', 'w1']);
  });
});
