/**
 * Fault injection inside the machinery, for tests only: with MEDIC_FAULT_KILL_AT=<point> the
 * process kills itself (SIGKILL, no cleanup) the first time it reaches that point, so that a
 * test can see what a worker dying there leaves behind and whether the next one copes.
 * - `mid-snapshot`: once the first chunk of a snapshot stream is written to disk;
 * - `gate-opened`: once a destructive step's gate is saved, before its buttons are drawn;
 * - `step-ended`: once a destructive step's signed end is on the timeline, before the run records it;
 * - `kubelet-aside`: once a kubelet's files are moved aside, before it is started again.
 * - `mid-cert`: once a member's certificate is signed by the CA, before it is written on the member's host.
 * - `certs-signed`: once every certificate a step signs is signed (each by its own CA), before any CA certificate or pair is written on the member's host.
 */
export function killAtFault(point: 'mid-snapshot' | 'gate-opened' | 'step-ended' | 'kubelet-aside' | 'mid-cert' | 'certs-signed'): void {
  if (process.env.MEDIC_FAULT_KILL_AT === point) process.kill(process.pid, 'SIGKILL');
}
