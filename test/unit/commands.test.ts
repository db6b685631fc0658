import { describe, expect, it } from 'vitest';
import { atMost, resolveCluster, splitFlags } from '../../commands/args.js';
import { COMMANDS, findCommand, type CommandContext, type CommandResult } from '../../commands/index.js';
import { parseInventory } from '../../src/config/load.js';
import { UnknownClusterError, UsageError } from '../../src/errors.js';
import { MASK } from '../../src/secrets/mask.js';

const FP = 'SHA256:' + 'A'.repeat(43);
const cluster = (name: string) => `
  - name: ${name}
    etcd: { endpoints: [https://10.0.0.1:2379] }
    members:
      - { name: master-1, host: 10.0.0.1, ssh: { user: core, keyFile: /k, hostKeyFingerprint: ${FP} } }`;
const one = parseInventory(`clusters:${cluster('prod')}`, 'i.yaml');
const two = parseInventory(`clusters:${cluster('prod')}${cluster('staging')}`, 'i.yaml');
const withDefault = parseInventory(`defaultCluster: staging\nclusters:${cluster('prod')}${cluster('staging')}`, 'i.yaml');

const ctx = (inventory = one): CommandContext => ({ inventory, userId: 'UALICE', channelId: 'CINC', commands: COMMANDS });
const run = (line: string, inventory = one): CommandResult => {
  const [name, ...args] = line.split(/\s+/).filter(Boolean);
  return findCommand(name!)!.run(args, ctx(inventory));
};
/** The message of the usage error a line gets, or 'no error'. */
const refusal = (line: string, inventory = one): string => {
  try {
    run(line, inventory);
    return 'no error';
  } catch (err) {
    if (err instanceof UsageError || err instanceof UnknownClusterError) return err.message;
    throw err;
  }
};
const job = (line: string, inventory = one) => {
  const r = run(line, inventory);
  if (r.kind !== 'job') throw new Error(`${line}: expected a job, got a reply`);
  return r.job;
};

describe('argument helpers (commands/args.ts)', () => {
  it('resolves the cluster: named, else the default, else the only one', () => {
    expect(resolveCluster(one, undefined, 'u').name).toBe('prod');
    expect(resolveCluster(withDefault, undefined, 'u').name).toBe('staging');
    expect(resolveCluster(two, 'staging', 'u').name).toBe('staging');
    expect(() => resolveCluster(two, undefined, 'u')).toThrow('more than one cluster is configured; name one of: prod, staging');
    expect(() => resolveCluster(one, 'Prod;reboot', 'u')).toThrow('"Prod;reboot" is not a cluster name');
    expect(() => resolveCluster(one, 'qa', 'u')).toThrow(UnknownClusterError);
  });

  it('refuses extra arguments, naming the first one', () => {
    expect(() => atMost(['a', 'b', 'c'], 2, 'u')).toThrow('unexpected argument "c"');
    expect(() => atMost(['a'], 1, 'u')).not.toThrow();
  });

  it('splits flags from positionals and refuses unknown or glued flags', () => {
    expect(splitFlags(['m3', '--FORCE'], ['--force'], 'u')).toEqual({ positional: ['m3'], flags: new Set(['--force']) });
    expect(() => splitFlags(['--force;rm'], ['--force'], 'u')).toThrow('unknown option "--force;rm"');
    expect(() => splitFlags(['-f'], ['--force'], 'u')).toThrow('unknown option "-f"');
  });
});

describe('each command parses its arguments', () => {
  it('status, backup, backups: an optional cluster and nothing else', () => {
    expect(job('status')).toEqual({ name: 'status', data: { cluster: 'prod' } });
    expect(job('status staging', two)).toEqual({ name: 'status', data: { cluster: 'staging' } });
    expect(refusal('status prod extra')).toBe('unexpected argument "extra"');
    expect(job('backup')).toEqual({ name: 'backup', data: { cluster: 'prod' } });
    expect(refusal('backup prod;id')).toContain('is not a cluster name');
    expect(job('backups')).toEqual({ name: 'list-backups', data: { cluster: 'prod' } });
  });

  it('backup import: [cluster] import <member> <path>, the member by name or host, the path checked before anything is queued', () => {
    const want = { name: 'import-backup', data: { cluster: 'prod', member: 'master-1', path: '/home/core/assets/backup' } };
    expect(job('backup import master-1 /home/core/assets/backup')).toEqual(want);
    expect(job('backup prod import master-1 /home/core/assets/backup')).toEqual(want);
    expect(job('backup prod import 10.0.0.1 /home/core/assets/backup')).toEqual(want);
    expect(job('backup import master-1 /home/core/assets/backup/snapshot_2020-05-11_080543.db').data).toMatchObject({ path: '/home/core/assets/backup/snapshot_2020-05-11_080543.db' });
    expect(job('backup staging import master-1 /b', two).data).toMatchObject({ cluster: 'staging' });
    expect(refusal('backup import')).toBe('name the member whose host holds the backup (master-1), then its path there, e.g. /home/core/assets/backup');
    expect(refusal('backup import master-9 /b')).toBe('"master-9" is not a member of prod; its members: master-1');
    expect(refusal('backup import master-1')).toBe('name the directory cluster-backup.sh wrote into on master-1 (e.g. /home/core/assets/backup), or its snapshot_<ts>.db');
    expect(refusal('backup import master-1 /my backups')).toBe('unexpected argument "backups" (a path with blanks cannot be typed here)');
    expect(refusal('backup import master-1 assets/backup')).toContain('not an absolute path');
    expect(refusal('backup import master-1 /b;reboot')).toContain('has characters a backup path does not need');
    expect(refusal('backup import master-1 /b/snapshot_db_kuberesources_2020-01-02_030405.tar.gz')).toContain("OpenShift 4.3.0/4.3.1's single-file backup");
    // Every refusal says what to do within the 200 characters the Slack side shows.
    for (const line of ['backup import', 'backup import master-9 /b', 'backup import master-1', 'backup import master-1 /b/snapshot_db_kuberesources_2020-01-02_030405.tar.gz', 'backup import master-1 ~/b']) {
      expect(refusal(line).length, line).toBeLessThanOrEqual(200);
    }
    expect(refusal('backup qa import master-1 /b')).toBe('unknown cluster "qa"; known clusters: prod');
    expect(refusal('backup import master-1 /b', two)).toContain('more than one cluster is configured');
    expect(refusal('backup prod extra')).toBe('unexpected argument "extra"');
    expect(findCommand('backup')!.role).toBe('operate');
  });

  it('replace: a member by name, hex ID or host, an optional cluster, --force', () => {
    expect(job('replace master-1')).toEqual({ name: 'plan-replace', data: { cluster: 'prod', target: 'master-1', force: false } });
    expect(job('replace 8e9e05c52164694d prod --force')).toEqual({ name: 'plan-replace', data: { cluster: 'prod', target: '8e9e05c52164694d', force: true } });
    expect(job('replace 10.0.0.1').data).toMatchObject({ target: '10.0.0.1' });
    expect(refusal('replace')).toContain('name the member to replace');
    for (const bad of ['m3$(touch${IFS}/tmp/x)', '`id`', 'm3;reboot', '../../etc/passwd', 'm3|sh']) expect(refusal(`replace ${bad}`)).toContain('is not a member name, hex ID or host');
    expect(refusal('replace m3 prod more')).toBe('unexpected argument "more"');
    expect(refusal('replace m3 --force;rm')).toBe('unknown option "--force;rm"');
  });

  it('restore-quorum: --from a member or --snapshot a backup ID', () => {
    expect(job('restore-quorum')).toEqual({ name: 'plan-restore-quorum', data: { cluster: 'prod', from: undefined, snapshot: undefined } });
    expect(job('restore-quorum prod --from master-1').data).toMatchObject({ from: 'master-1' });
    expect(job('restore-quorum --snapshot 2026-11-23_031500').data).toMatchObject({ snapshot: '2026-11-23_031500' });
    expect(refusal('restore-quorum --from')).toBe('--from needs a value');
    expect(refusal('restore-quorum --from m1&&reboot')).toContain('is not a member name');
    expect(refusal('restore-quorum --snapshot $(id)')).toContain('is not a backup ID');
    expect(refusal('restore-quorum --force')).toBe('unknown option "--force"');
    expect(refusal('restore-quorum prod staging', two)).toBe('unexpected argument "staging"');
  });

  it('restore: a backup ID and an optional cluster', () => {
    expect(job('restore 2026-11-23_031500')).toEqual({ name: 'plan-restore', data: { cluster: 'prod', backupId: '2026-11-23_031500' } });
    expect(job('restore 2026-11-23_031500-2 prod').data).toMatchObject({ backupId: '2026-11-23_031500-2' });
    expect(refusal('restore')).toContain('name the backup to restore');
    for (const bad of ['../../../../etc/shadow', '2026-11-23_031500;id', '`id`']) expect(refusal(`restore ${bad}`)).toContain('is not a backup ID');
  });

  it('defrag: an optional cluster, nothing else', () => {
    expect(job('defrag')).toEqual({ name: 'plan-defrag', data: { cluster: 'prod' } });
    expect(job('defrag staging', two)).toEqual({ name: 'plan-defrag', data: { cluster: 'staging' } });
    expect(refusal('defrag', two)).toBe('more than one cluster is configured; name one of: prod, staging');
    expect(refusal('defrag nope')).toBe('unknown cluster "nope"; known clusters: prod');
    expect(refusal('defrag prod m1')).toBe('unexpected argument "m1"');
    expect(refusal('defrag --all')).toBe('unknown option "--all"');
    expect(refusal('defrag $(id)')).toContain('is not a cluster name');
    expect(findCommand('defrag')!.role).toBe('destroy');
    expect(findCommand('defrag')!.usage).toBe('/etcd defrag [cluster]');
  });

  it('cancel: one run ID', () => {
    expect(job('cancel R-1A2B3C4D')).toEqual({ name: 'cancel', data: { runId: 'r-1a2b3c4d' } });
    expect(refusal('cancel')).toContain('name the run to cancel');
    expect(refusal('cancel r-$(id)')).toContain('is not a run ID');
    expect(refusal('cancel r-1a2b3c4d r-2')).toBe('unexpected argument "r-2"');
  });

  it('incident, note, timeline: free text escaped and masked, the rest strict', () => {
    expect(job('incident start etcd <!channel> down')).toEqual({ name: 'incident', data: { action: 'start', text: 'etcd &lt;!channel&gt; down' } });
    expect(job('incident close')).toEqual({ name: 'incident', data: { action: 'close' } });
    expect(refusal('incident start')).toBe('give the incident a title');
    expect(refusal('incident close now')).toBe('unexpected argument "now"');
    expect(refusal('incident reopen')).toBe('unknown action "reopen"');
    expect(refusal('note')).toBe('write the note after the command');
    const pasted = job('note token xoxb-1234567890-abcdefghij and -----BEGIN PRIVATE KEY----- MIIEvQIBADANBgkqhkiG9w0BAQEFAASC -----END PRIVATE KEY----- done');
    expect(pasted).toEqual({ name: 'incident', data: { action: 'note', text: `token ${MASK} and ${MASK} (private key) done` } });
    expect(job('timeline')).toEqual({ name: 'incident', data: { action: 'timeline' } });
    expect(refusal('timeline now')).toBe('unexpected argument "now"');
  });

  it('help lists every command and the clusters', () => {
    const r = run('help', two);
    expect(r.kind).toBe('reply');
    const text = (r as { text: string }).text;
    for (const c of COMMANDS) expect(text).toContain(c.usage);
    expect(text).toContain('Clusters: `prod`, `staging`');
  });
});
