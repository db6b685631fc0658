import { parseInventory } from '../../src/config/load.js';

/** An inventory of one cluster, "prod", of three masters on 10.0.0.1-3, with the given workspace line. */
export function threeMasters(workspace: string) {
  const fp = 'SHA256:' + 'A'.repeat(43);
  const inventory = parseInventory(
    `workspace: ${workspace}
backups: { dir: /backups }
clusters:
  - name: prod
    etcd: { endpoints: ["https://10.0.0.1:2379", "https://10.0.0.2:2379", "https://10.0.0.3:2379"] }
    members:
${[1, 2, 3].map((i) => `      - { name: m${i}, host: 10.0.0.${i}, ssh: { user: core, keyFile: /k, hostKeyFingerprint: ${fp} } }`).join('\n')}
`,
    't.yaml',
  );
  return { inventory, cluster: inventory.clusters[0]! };
}
