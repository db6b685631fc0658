import { existsSync, renameSync } from 'node:fs';
import { join } from 'node:path';
import type { Lab } from '../../src/lab/harness.js';
import { waitFor } from '../../src/lab/proc.js';

/**
 * Waits (bounded) until the cluster has a leader again and it is not `name`:
 * after a member's machine was reinstalled (wiped) or stopped, the others
 * elect one before a replace is asked for.
 */
export async function waitForLeaderOtherThan(lab: Lab, name: string): Promise<void> {
  await waitFor(
    `a leader other than ${name}`,
    async () => {
      const leader = await lab.leaderHex().catch(() => null);
      const id = (await lab.memberList()).find((m) => m.name === name)?.id;
      return leader !== null && leader !== '0' && leader !== id;
    },
    20_000,
    200,
  );
}

/**
 * The fault of a master without the etcd CA key (as when only one master kept
 * a copy): the key moved out of its pki dir (`park`) and back (`unpark`).
 * `lab`: the test's lab once started (these are made before it is).
 */
export function caKeyParking(lab: () => Lab): { caKey: (name: string) => string; park: (name: string) => void; unpark: (name: string) => void } {
  const caKey = (name: string) => join(lab().host(name).pkiDir, 'ca.key');
  const parked = (name: string) => join(lab().host(name).root, 'tmp-ca.key.parked');
  return {
    caKey,
    park: (name) => renameSync(caKey(name), parked(name)),
    unpark: (name) => {
      if (existsSync(parked(name))) renameSync(parked(name), caKey(name));
    },
  };
}
