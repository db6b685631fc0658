import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { build } from 'esbuild';
import type { TestProject } from 'vitest/node';
import { ensureLabPackages, TEST_PACKAGES } from '../../src/lab/packages.js';
import { startRedis, type LabRedis } from '../../src/lab/redis.js';

declare module 'vitest' {
  export interface ProvidedContext {
    redisUrl: string;
    redisPort: number;
    labRoot: string;
    /** src/main.ts bundled for this run: worker processes the crash tests start by the dozen (see startWorker). */
    mainBundle: string;
  }
}

let redis: LabRedis | undefined;

/** Once per run: the Debian packages the lab needs, and a real Redis of the tests' own. */
export default async function setup(project: TestProject) {
  await ensureLabPackages((s) => console.log(`[lab] ${s}`), TEST_PACKAGES);
  const root = mkdtempSync(join(tmpdir(), 'etcd-medic-test-'));
  redis = await startRedis(join(root, 'redis'));
  project.provide('redisUrl', redis.url);
  project.provide('redisPort', redis.port);
  project.provide('labRoot', root);
  // The crash tests start a worker process after every step they kill. Through tsx each start transforms the
  // whole source tree again (about 4 s of CPU here); bundled once with esbuild, the transformer tsx itself uses,
  // a start takes half that. Inside the project, so the bundle's package imports resolve to node_modules.
  const bundle = join(process.cwd(), 'node_modules', '.cache', 'etcd-medic-test', `main-${process.pid}.mjs`);
  await build({ entryPoints: [join(process.cwd(), 'src/main.ts')], bundle: true, platform: 'node', format: 'esm', target: 'node20', packages: 'external', outfile: bundle, logLevel: 'warning' });
  project.provide('mainBundle', bundle);
  return async () => {
    await redis?.stop();
    rmSync(root, { recursive: true, force: true });
    rmSync(bundle, { force: true });
  };
}
