import { openSync, readFileSync, rmSync, writeSync, closeSync } from 'node:fs';

/** Who holds a playground's directory: the process and the page it serves. */
export interface PlaygroundHolder {
  pid: number;
  port: number;
}

/**
 * One playground per lab directory. Starting a lab wipes its directory and kills
 * the processes left in it, so a second `npm start` on the same directory would
 * take the running one down. The lock is a file beside the directory, created
 * only if absent (atomic), naming the process that holds it; a lock whose
 * process is gone (a playground killed with SIGKILL) is taken over.
 *
 * Returns a release function, or the holder when another live playground has it.
 */
export function claimPlayground(root: string, port: number): { release: () => void } | { heldBy: PlaygroundHolder } {
  const path = `${root}.lock`;
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      const fd = openSync(path, 'wx', 0o644);
      writeSync(fd, JSON.stringify({ pid: process.pid, port }));
      closeSync(fd);
      return { release: () => rmSync(path, { force: true }) };
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    }
    const holder = readHolder(path);
    if (holder && alive(holder.pid)) return { heldBy: holder };
    rmSync(path, { force: true });
  }
  throw new Error(`could not take ${path}: another playground keeps creating it`);
}

function readHolder(path: string): PlaygroundHolder | null {
  try {
    const h = JSON.parse(readFileSync(path, 'utf8')) as Partial<PlaygroundHolder>;
    return typeof h.pid === 'number' && typeof h.port === 'number' ? { pid: h.pid, port: h.port } : null;
  } catch {
    return null; // half written or unreadable: treated as stale
  }
}

/** Whether `pid` is a live process of ours (a reused pid of another program's counts as gone). */
function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes('node');
  } catch {
    return true; // no /proc to ask: trust the signal
  }
}
