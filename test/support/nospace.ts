import { existsSync, readFileSync } from 'node:fs';
import { openEndpoint } from '../../src/etcd/pool.js';
import { startMedicLab, type MedicLab } from './medic-lab.js';

// A quota small enough to reach in a second: etcd raises NOSPACE past it.
export const QUOTA = 6 * 1024 * 1024;

/** A lab whose members run with a small quota, and the inventory told the same. */
export function nospaceLab(name: string, subnet: number, extra: Parameters<typeof startMedicLab>[2] = {}): Promise<MedicLab> {
  return startMedicLab(name, subnet, {
    ...extra,
    lab: { etcdFlags: [`--quota-backend-bytes=${QUOTA}`] },
    editInventory: (inv) => {
      inv.clusters[0].etcd.quotaBytes = QUOTA;
    },
  });
}

/**
 * The fault: a few keys rewritten with 100 KB values until etcd refuses ("database space exceeded"),
 * as events or leases rewritten faster than they are compacted fill a real cluster. The history
 * fills the database; the live data is small, so compact and defragment give the space back.
 */
export async function fillUntilNospace(t: MedicLab): Promise<number> {
  const cluster = t.config.inventory.clusters[0]!;
  const client = openEndpoint(cluster, t.lab.endpoints[0]!, 10_000);
  const value = 'x'.repeat(100_000);
  try {
    for (let i = 0; i < 2000; i++) {
      try {
        await client.put(`/fill/k${i % 5}`).value(value);
      } catch (err) {
        if (/database space exceeded/.test((err as Error).message)) return i;
        throw err;
      }
    }
    throw new Error('etcd took 2000 writes of 100 KB without reaching its quota');
  } finally {
    client.close();
  }
}

/** When each member's etcd logged the end of a defragment (its zap log, all its runs), in ms since the epoch. */
export function defragTimes(t: MedicLab, member: string): number[] {
  const file = `${t.lab.host(member).logDir}/etcd.log`;
  if (!existsSync(file)) return [];
  return readFileSync(file, 'utf8')
    .split('\n')
    .filter((l) => /"msg":"defragmented"/.test(l))
    .map((l) => Date.parse(JSON.parse(l).ts as string));
}

