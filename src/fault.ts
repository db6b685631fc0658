/**
 * Fault injection inside a step, for tests only: with MEDIC_FAULT_KILL_MID_SNAPSHOT=1 the
 * process kills itself (SIGKILL, no cleanup) once the first chunk of a snapshot stream has
 * been written to disk, so that a test can see what a worker dying mid-stream leaves behind.
 */
export function killIfMidSnapshotFault(): void {
  if (process.env.MEDIC_FAULT_KILL_MID_SNAPSHOT === '1') process.kill(process.pid, 'SIGKILL');
}
