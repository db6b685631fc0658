import { readdirSync, readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { Ajv } from 'ajv';
import { parse } from 'yaml';

// No helm binary here: these read the chart's templates as text, for what must hold in them.
const read = (p: string) => readFileSync(new URL(`../../helm/etcd-medic/${p}`, import.meta.url), 'utf8');
const helpers = read('templates/_helpers.tpl');
const define = (name: string) => {
  const m = new RegExp(`{{- define "${name}" -}}([\\s\\S]*?){{- end -}}`).exec(helpers);
  if (!m) throw new Error(`no define ${name}`);
  return m[1]!;
};

describe('the Helm chart', () => {
  const bot = read('templates/bot-deployment.yaml');
  const worker = read('templates/worker-deployment.yaml');

  it('mounts no SSH keys, etcd client keys or backups in the internet-facing bot pod; workers get them', () => {
    for (const shared of [define('etcd-medic.volumes'), define('etcd-medic.mounts')]) {
      expect(shared).not.toContain('secrets.files');
      expect(shared).not.toContain('/etc/etcd-medic/secrets');
      expect(shared).not.toContain('backups');
    }
    expect(bot).not.toMatch(/workerVolumes|workerMounts|secrets\.files/);
    expect(worker).toContain('include "etcd-medic.workerVolumes"');
    expect(worker).toContain('include "etcd-medic.workerMounts"');
    expect(define('etcd-medic.workerVolumes')).toContain('secretName: {{ .Values.secrets.files }}, defaultMode: 0440');
  });

  it("makes secret files readable by the pods' non-root user through fsGroup", () => {
    const pod = define('etcd-medic.podSecurityContext');
    expect(pod).toContain('fsGroup: {{ .Values.podSecurity.fsGroup }}');
    expect(pod).toContain('runAsNonRoot: true');
    for (const d of [bot, worker]) expect(d).toContain('securityContext: {{- include "etcd-medic.podSecurityContext" . | nindent 8 }}');
    const values = parse(read('values.yaml')) as { podSecurity: { runAsUser: number; fsGroup: number } };
    expect(values.podSecurity.fsGroup).toBe(values.podSecurity.runAsUser);
  });

  it('passes the HMAC key and the Redis password from secrets, and uses TLS for Redis by default', () => {
    const env = define('etcd-medic.env');
    expect(env).toMatch(/name: ETCD_MEDIC_HMAC_KEY\n\s+valueFrom: { secretKeyRef:/);
    expect(env).toMatch(/name: REDIS_PASSWORD\n\s+valueFrom: { secretKeyRef: { name: {{ .Values.secrets.redis }}/);
    const values = parse(read('values.yaml')) as { redis: { url: string } };
    expect(values.redis.url).toMatch(/^rediss:\/\//);
  });

  it('keeps the bot in service while no worker is alive: its probes ask /healthz, not /readyz', () => {
    expect(bot).toMatch(/readinessProbe:\n\s+httpGet: { path: \/healthz, port: http }/);
    expect(bot).toMatch(/livenessProbe:\n\s+httpGet: { path: \/healthz, port: http }/);
  });

  it('probes workers on their own port: ready while their Redis answers, alive while the process is', () => {
    expect(worker).toContain('- { name: http, containerPort: {{ .Values.bot.port }} }');
    expect(worker).toMatch(/readinessProbe:\n\s+httpGet: { path: \/readyz, port: http }/);
    expect(worker).toMatch(/livenessProbe:\n\s+httpGet: { path: \/healthz, port: http }/);
  });

  it('lets only metrics.scrapeFrom reach a worker, and only its http port', () => {
    const policy = read('templates/networkpolicy.yaml');
    expect(policy).toContain('{{- if .Values.metrics.scrapeFrom }}');
    expect(policy).toContain('ports: [{ port: http, protocol: TCP }]');
    expect(policy).toMatch(/{{- else }}\n\s+ingress: \[\]/);
    const values = parse(read('values.yaml')) as { metrics: { scrapeFrom: unknown[]; prometheusRule: { enabled: boolean } } };
    expect(values.metrics.scrapeFrom).toEqual([]);
  });

  it('alerts, when asked, only on metrics the processes export', async () => {
    const rule = read('templates/prometheusrule.yaml');
    expect(rule.split('\n')[0]).toBe('{{- if .Values.metrics.prometheusRule.enabled }}');
    expect((parse(read('values.yaml')) as { metrics: { prometheusRule: { enabled: boolean } } }).metrics.prometheusRule.enabled).toBe(false);
    expect([...rule.matchAll(/- alert: (\w+)/g)].map((m) => m[1])).toEqual(['EtcdMedicQuorumLost', 'EtcdMedicMemberDown', 'EtcdMedicDbNearQuota', 'EtcdMedicRunStuck', 'EtcdMedicNoWorker']);
    const { registry } = await import('../../src/metrics/registry.js');
    const exported = new Set(registry.getMetricsAsArray().map((m) => m.name));
    const used = new Set([...rule.matchAll(/etcd_medic_\w+/g)].map((m) => m[0]));
    expect(used.size).toBeGreaterThan(5);
    for (const name of used) expect(exported, name).toContain(name);
  });

  describe('values.schema.json', () => {
    const schema = JSON.parse(read('values.schema.json')) as Record<string, any>;
    const validate = new Ajv({ allErrors: true, strict: false }).compile(schema);
    const values = () => parse(read('values.yaml')) as Record<string, any>;

    it('accepts the chart\'s own values.yaml', () => {
      expect(validate(values()), JSON.stringify(validate.errors)).toBe(true);
    });

    it('refuses a wrong value at install, naming its path', () => {
      const wrong = values();
      wrong.bot.port = 'three thousand';
      wrong.redis.url = 'http://redis:6379';
      wrong.metrics.prometheusRule.dbQuotaRatio = 2;
      wrong.worker.replicaz = 3;
      expect(validate(wrong)).toBe(false);
      const said = validate.errors!.map((e) => `${e.instancePath} ${e.message}${e.params && 'additionalProperty' in e.params ? ` ${e.params.additionalProperty}` : ''}`);
      expect(said).toEqual(expect.arrayContaining(['/bot/port must be integer', '/redis/url must match pattern "^rediss?://[^\\s]+$"', '/metrics/prometheusRule/dbQuotaRatio must be <= 1', '/worker must NOT have additional properties replicaz']));
    });

    it('declares every value the templates read', () => {
      const templates = readdirSync(new URL('../../helm/etcd-medic/templates/', import.meta.url)).map((f) => read(`templates/${f}`)).join('\n');
      const used = new Set([...templates.matchAll(/\.Values\.([A-Za-z0-9_.]+)/g)].map((m) => m[1]!));
      expect(used.size).toBeGreaterThan(20);
      for (const path of used) {
        let node: any = schema;
        for (const key of path.split('.')) {
          node = node.properties?.[key] ?? (node.$ref ? schema.definitions[node.$ref.split('/').pop()!].properties?.[key] : undefined);
          expect(node, `.Values.${path} is not in values.schema.json`).toBeDefined();
        }
      }
    });
  });

  it('grants on the admin cluster of a statefulset cluster exactly the verbs /etcd replace uses there, nothing on secrets or exec', () => {
    const docs = read('files/admin-cluster-statefulset-rbac.yaml').split(/^---$/m).map((d) => parse(d) as { kind: string; rules: { apiGroups: string[]; resources: string[]; verbs: string[] }[] });
    const grants = (kind: string) => docs.find((d) => d.kind === kind)!.rules.flatMap((r) => r.resources.flatMap((res) => r.verbs.map((v) => `${r.apiGroups[0] || 'core'}/${res}:${v}`))).sort();
    // What src/kube's drain, pdbs, statefulsets and pods calls do, as the replace steps make them.
    expect(grants('ClusterRole')).toEqual(['core/nodes:get', 'core/nodes:patch', 'core/pods/eviction:create', 'core/pods:get', 'core/pods:list']);
    expect(grants('Role')).toEqual(['apps/statefulsets:get', 'apps/statefulsets:patch', 'core/persistentvolumeclaims:get', 'core/pods:create', 'core/pods:delete', 'policy/poddisruptionbudgets:create', 'policy/poddisruptionbudgets:delete', 'policy/poddisruptionbudgets:get']);
    const all = [...grants('ClusterRole'), ...grants('Role')];
    expect(all.filter((g) => /secrets|pods\/exec|\*/.test(g))).toEqual([]);
  });
});
