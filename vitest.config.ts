import { defineConfig } from 'vitest/config';

const timeouts = { testTimeout: 90_000, hookTimeout: 180_000 };

export default defineConfig({
  test: {
    // Once for the whole run, whichever project a file is in: the Debian packages, the tests' Redis, the worker bundle.
    globalSetup: ['test/support/global-setup.ts'],
    // Two files at a time: a lab file spends most of its time waiting (on elections, job locks, SSH),
    // about a third of one core busy, so two side by side halve the run on a two-core machine. Each lab
    // file binds its own loopback subnet and queue prefix; a test that looks at the machine's processes
    // (the etcd-alive check) does so in a PID namespace of its own.
    fileParallelism: true,
    maxWorkers: 2,
    reporters: ['default'],
    projects: [
      // Each lab file in a process of its own: it starts servers, bots and workers, and a file's leftovers must not reach the next.
      { test: { ...timeouts, name: 'integration', include: ['test/integration/**/*.test.ts'] } },
      // Unit files share their worker's loaded modules: loading src and its libraries again for each of them cost
      // about three times the CPU of the tests themselves (53 s against 17 s for the folder here), CPU the lab files
      // beside them then lacked. None of them mocks a module; those that fake timers or change process.env put them back.
      { test: { ...timeouts, name: 'unit', include: ['test/unit/**/*.test.ts'], isolate: false } },
    ],
  },
});
