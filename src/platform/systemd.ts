import { dirname } from 'node:path';
import type { ClusterConfig, MemberConfig } from '../config/schema.js';
import { sh } from '../ssh/shell.js';
import { adaptedFlags } from './adapt-config.js';
import { moveConfigAsideLines } from './config-aside.js';
import { etcdPkiFiles, etcdPkiFlags, servingCerts } from './member-pki.js';
import { envFlag, envValue, envValueProblem, withEnvFlags, withEnvValues } from './flags.js';
import { etcdClientUrls, withEtcdClientUrls } from './master-config.js';
import { kubeletPlaceOf } from './kubelet.js';
import type { ApiserverPlace, ConfigPlace, MemberReference, Platform } from './types.js';

type SystemdConfig = Extract<ClusterConfig['platform'], { kind: 'systemd' }>;

/**
 * etcd as a systemd unit (OpenShift 3.x, etcd installed as a service): the unit
 * reads its flags from an EnvironmentFile (`/etc/etcd/etcd.conf`,
 * `ETCD_INITIAL_CLUSTER=…`). Stopping etcd moves that file aside, disables the
 * unit and stops it: nothing, a reboot included, starts the member on a config
 * it no longer has. Starting writes the file back and enables and starts the
 * unit, as the OpenShift 3 runbook does by hand.
 */
export function systemdPlatform(conf: SystemdConfig): Platform {
  const unit = conf.unit;
  const paths = (m: MemberConfig) => {
    const config = m.confFile ?? conf.confFile;
    return {
      config,
      // Beside the config's directory (/etc/etcd → /etc/etcd-medic-aside), so a backup of /etc/etcd leaves out what runs moved aside.
      asideDir: `${dirname(dirname(config))}/etcd-medic-aside`,
      dataDir: m.dataDir ?? conf.dataDir,
      pkiDir: m.pkiDir ?? conf.pkiDir,
    };
  };
  return {
    kind: 'systemd',
    configNoun: 'etcd.conf',
    tools: ['systemctl'],
    paths,

    stopLines: (c: ConfigPlace) => [
      ...moveConfigAsideLines(c, 'etcd.conf'),
      // Disabled first: a host that reboots now must not start the member again. Masked until then: the etcd
      // package's unit reads etcd.conf as optional (EnvironmentFile=-), so without it a start by hand or by another
      // unit would bring up an etcd on default settings.
      sh`systemctl disable ${unit} >/dev/null 2>&1 || echo "could not disable "${unit}" (is it installed?)"`,
      sh`if ! out=$(systemctl mask --runtime ${unit} 2>&1); then echo "systemctl mask --runtime "${unit}" failed: $out" >&2; exit 1; fi`,
      // A host without the unit (rebuilt, or never installed) has no etcd of it to stop; the alive check that follows says whether one runs.
      sh`if out=$(systemctl stop ${unit} 2>&1); then echo ${unit} stopped and disabled;`,
      sh`else case "$out" in *'not loaded'*|*'not found'*) echo ${unit} is not installed on this host ;; *) echo "systemctl stop "${unit}" failed: $out" >&2; exit 1 ;; esac; fi`,
    ],
    stopText: (c) => `mv ${c.config} ${c.configAside}; systemctl disable ${unit}; systemctl mask --runtime ${unit}; systemctl stop ${unit}`,
    // A Type=notify unit (the etcd package's) is up once etcd has joined a cluster with a leader: a member of a
    // cluster being bootstrapped from a snapshot is up only once a quorum runs, so its start does not wait for it.
    startLines: (_c, mode, opts = {}) => [
      sh`if ! out=$(systemctl unmask --runtime ${unit} 2>&1); then echo "systemctl unmask --runtime "${unit}" failed: $out" >&2; exit 1; fi`,
      sh`if ! out=$(systemctl enable ${unit} 2>&1); then echo "systemctl enable "${unit}" failed: $out" >&2; exit 1; fi`,
      opts.wait === false ? sh`systemctl ${mode} --no-block ${unit}` : sh`systemctl ${mode} ${unit}`,
      opts.wait === false ? sh`echo ${unit} enabled, ${mode === 'start' ? 'start' : 'restart'} asked for without waiting for it` : sh`echo ${unit} ${mode === 'start' ? 'started' : 'restarted'} and enabled`,
    ],
    startText: (mode, opts = {}) => `systemctl unmask --runtime ${unit}; systemctl enable ${unit}; systemctl ${mode}${opts.wait === false ? ' --no-block' : ''} ${unit}`,

    flag: (config, name) => envFlag(config, name),
    flagValueProblem: envValueProblem,
    withFlags: (config, flags) => withEnvFlags(config, flags),
    adaptConfig: (peerConfig, from, to) => withEnvFlags(peerConfig, adaptedFlags((f) => envFlag(peerConfig, f), from, to, etcdPkiFlags(to.pkiDir))),

    etcdOperator: null,
    apiserverNoun: 'kube-apiserver',
    apiserverPlace(m, runId): ApiserverPlace {
      const p = paths(m);
      return { name: m.name, asideDir: p.asideDir, units: conf.apiserverUnits, marker: `${p.asideDir}/apiserver-stopped.${runId}` };
    },
    apiserverLines(p, action) {
      const units = p.units as string[];
      const marker = String(p.marker);
      if (action === 'stop') {
        // Only what runs or is coming back is noted, so the start brings back what this run stopped and nothing else.
        // An API server that cannot reach etcd exits and Restart= brings it back: between two tries its unit is
        // `activating` (not `active`), and only a stop keeps it from coming back mid-restore.
        return [
          sh`mkdir -p ${p.asideDir}`,
          ...units.flatMap((u) => [
            sh`st=$(systemctl is-active ${u} 2>/dev/null || true)`,
            sh`case "$st" in inactive|failed|unknown|'') echo ${u} is not running here "($st)" ;;`,
            sh`*) echo ${u} >> ${marker}; systemctl stop ${u}; echo ${u} stopped "(it was $st)" ;; esac`,
          ]),
        ];
      }
      return [
        sh`if [ -e ${marker}.started ]; then echo the API server units this run stopped are started again already; exit 0; fi`,
        sh`if [ ! -e ${marker} ]; then echo no API server unit was stopped here by this run; exit 0; fi`,
        sh`while read -r u; do systemctl start "$u"; echo "$u started again"; done < ${marker}`,
        sh`mv ${marker} ${marker}.started`,
      ];
    },
    apiserverText: (p, action) => `systemctl ${action} ${(p.units as string[]).join(' ')}${action === 'stop' ? ' (those running)' : ' (those this run stopped)'}`,

    references(m): MemberReference[] {
      const list = (v: string | undefined) => (v === undefined ? null : v.split(',').map((x) => x.trim()).filter(Boolean));
      const api = conf.apiserverUnits;
      return [
        {
          path: m.masterConfig ?? conf.masterConfig,
          what: 'master-config.yaml etcdClientInfo.urls',
          names: 'client-urls',
          read: etcdClientUrls,
          rewrite: withEtcdClientUrls,
          // OpenShift 3.10+ runs the API as a static pod restarted by master-restart; before, as these units.
          apply: {
            text: `master-restart api where the host has it, else systemctl restart ${api.join(' ')}`,
            lines: [
              'if command -v master-restart >/dev/null 2>&1; then master-restart api; echo the API restarted with master-restart api;',
              `else ${api.map((u) => sh`systemctl restart ${u}`).join('; ')}; echo ${sh`${api.join(' ')}`} restarted; fi`,
            ],
          },
        },
        {
          path: paths(m).config,
          what: 'etcd.conf ETCD_INITIAL_CLUSTER',
          names: 'members',
          read: (text) => list(envFlag(text, 'initial-cluster')),
          // Read by etcd only when it starts on an empty data dir: nothing to restart.
          rewrite: (text, entries) => withEnvFlags(text, { 'initial-cluster': entries.join(',') }),
        },
        {
          path: m.flanneldConfig ?? conf.flanneldConfig,
          what: 'flanneld FLANNEL_ETCD_ENDPOINTS',
          names: 'client-urls',
          read: (text) => list(envValue(text, 'FLANNEL_ETCD_ENDPOINTS')),
          rewrite: (text, entries) => withEnvValues(text, { FLANNEL_ETCD_ENDPOINTS: entries.join(',') }),
          apply: { text: 'systemctl restart flanneld', lines: ['systemctl restart flanneld; echo flanneld restarted'] },
        },
      ];
    },
    layoutLines(m) {
      const p = paths(m);
      return [
        sh`if ! command -v systemctl >/dev/null 2>&1; then echo "layout:there is no systemctl: etcd does not run under systemd on this host";`,
        // `systemctl cat` reads the unit's files without starting anything; a unit that is not installed fails it.
        sh`elif ! medic_unit=$(systemctl cat ${unit} 2>/dev/null); then echo "layout:the unit "${unit}" is not installed (systemctl cat "${unit}" fails)";`,
        // The profile changes etcd's flags in etcd.conf: a unit that takes them from elsewhere (its ExecStart line) would
        // be stopped, rewritten and started again on flags the bot never changed.
        'else medic_reads=0; while IFS= read -r medic_l; do medic_l=${medic_l#"${medic_l%%[![:space:]]*}"}; case "$medic_l" in EnvironmentFile=*)',
        sh`  read -ra medic_fs <<< "\${medic_l#EnvironmentFile=}"; for medic_f in "\${medic_fs[@]}"; do [ "\${medic_f#-}" = ${p.config} ] && medic_reads=1; done ;; esac; done <<< "$medic_unit"`,
        sh`  if [ "$medic_reads" = 0 ]; then echo "layout:the unit "${unit}" does not read "${p.config}" (no EnvironmentFile= names it in systemctl cat "${unit}")"; fi; fi`,
        sh`if [ ! -d ${dirname(p.config)} ]; then echo "layout:there is no "${dirname(p.config)}" (where "${p.config}" belongs)"; fi`,
        sh`if [ ! -d ${dirname(p.dataDir)} ]; then echo "layout:the parent directory of the data dir "${p.dataDir}" does not exist"; fi`,
      ];
    },
    // The seed's backup: the whole of /etc/etcd (etcd.conf and the member's certificates).
    backupPaths: (m) => [...new Set([dirname(paths(m).config), paths(m).pkiDir])],
    kubelet: (h, runId) => kubeletPlaceOf(conf, h, runId),
    // openshift-ansible keeps the etcd CA (with its key) under /etc/etcd/ca on the master it made it on, not on the others.
    pki(m) {
      const dir = paths(m).pkiDir;
      return { caCert: etcdPkiFiles(dir).caCert, caKey: `${dir}/ca/ca.key`, certs: servingCerts(m, dir) };
    },
  };
}
