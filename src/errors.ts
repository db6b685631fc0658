/**
 * Errors carry a stable code so that handlers, the timeline and tests can tell
 * them apart without matching message text.
 */
export enum ErrorCode {
  Config = 'config',
  Usage = 'usage',
  UnknownCluster = 'unknown_cluster',
  HostKeyMismatch = 'host_key_mismatch',
  SshFailed = 'ssh_failed',
  Kube = 'kube',
}

export class MedicError extends Error {
  constructor(
    readonly code: ErrorCode,
    message: string,
  ) {
    super(message);
    this.name = new.target.name;
  }
}

export class ConfigError extends MedicError {
  constructor(message: string) {
    super(ErrorCode.Config, message);
  }
}

/** Bad input from a person: the message says what was wrong, `usage` how to write it. */
export class UsageError extends MedicError {
  constructor(
    message: string,
    readonly usage: string,
  ) {
    super(ErrorCode.Usage, message);
  }
}

export class UnknownClusterError extends MedicError {
  constructor(
    readonly cluster: string,
    readonly known: string[],
  ) {
    super(ErrorCode.UnknownCluster, `unknown cluster "${cluster}"; known clusters: ${known.join(', ')}`);
  }
}

export class HostKeyMismatch extends MedicError {
  constructor(
    readonly host: string,
    readonly expected: string,
    readonly actual: string,
  ) {
    super(ErrorCode.HostKeyMismatch, `host key of ${host} is ${actual}, but the inventory pins ${expected}; refusing to connect`);
  }
}

export class SshFailed extends MedicError {
  constructor(message: string) {
    super(ErrorCode.SshFailed, message);
  }
}

/** Another system's message quoted inside one of ours: on one line, at most `max` characters. */
export function oneLine(text: string, max = 200): string {
  return text.replace(/\s+/g, ' ').slice(0, max);
}
