import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TestProject } from 'vitest/node';
import { ensureLabPackages } from '../../src/lab/packages.js';
import { startRedis, type LabRedis } from '../../src/lab/redis.js';

declare module 'vitest' {
  export interface ProvidedContext {
    redisUrl: string;
    redisPort: number;
    labRoot: string;
  }
}

let redis: LabRedis | undefined;

/** Once per run: the Debian packages the lab needs, and a real Redis of the tests' own. */
export default async function setup(project: TestProject) {
  await ensureLabPackages((s) => console.log(`[lab] ${s}`));
  const root = mkdtempSync(join(tmpdir(), 'etcd-medic-test-'));
  redis = await startRedis(join(root, 'redis'));
  project.provide('redisUrl', redis.url);
  project.provide('redisPort', redis.port);
  project.provide('labRoot', root);
  return async () => {
    await redis?.stop();
    rmSync(root, { recursive: true, force: true });
  };
}
