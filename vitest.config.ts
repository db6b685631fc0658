import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    globalSetup: ['test/support/global-setup.ts'],
    // Two files at a time: a lab file spends most of its time waiting (on elections, job locks, SSH),
    // about a third of one core busy, so two side by side halve the run on a two-core machine. Each lab
    // file binds its own loopback subnet and queue prefix; a test that looks at the machine's processes
    // (the etcd-alive check) does so in a PID namespace of its own.
    fileParallelism: true,
    maxWorkers: 2,
    testTimeout: 90_000,
    hookTimeout: 180_000,
    reporters: ['default'],
  },
});
