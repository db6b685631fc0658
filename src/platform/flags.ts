/**
 * etcd's flags in the two shapes configs hold them: a command line
 * (`--initial-cluster=…`, as in a static pod manifest) and environment
 * variables (`ETCD_INITIAL_CLUSTER=…`, as in etcd.conf).
 */

/** Sets (or adds) `--flag=value` in an etcd command line. */
export function setFlag(command: string[], flag: string, value: string): string[] {
  const out = withoutFlag(command, flag);
  out.push(`--${flag}=${value}`);
  return out;
}

/** Takes `--flag` and `--flag=…` out of an etcd command line. */
export function withoutFlag(command: string[], flag: string): string[] {
  return command.filter((a) => a !== `--${flag}` && !a.startsWith(`--${flag}=`));
}

/** `--flag=value` of a command line; `--flag` alone reads as "true". */
export function flagOf(command: string[], flag: string): string | undefined {
  for (const a of command) {
    if (a === `--${flag}`) return 'true';
    if (a.startsWith(`--${flag}=`)) return a.slice(flag.length + 3);
  }
  return undefined;
}

/** The environment variable etcd reads a flag from: initial-cluster → ETCD_INITIAL_CLUSTER. */
export function envKey(flag: string): string {
  return `ETCD_${flag.toUpperCase().replace(/-/g, '_')}`;
}

const envLine = /^\s*(?:export\s+)?([A-Z0-9_]+)\s*=(.*)$/;

function unquote(v: string): string {
  const t = v.trim();
  if (t.length >= 2 && ((t.startsWith('"') && t.endsWith('"')) || (t.startsWith("'") && t.endsWith("'")))) return t.slice(1, -1);
  return t;
}

/** A flag as an EnvironmentFile gives it (the last assignment wins, as systemd reads it); comments are not read. */
export function envFlag(text: string, flag: string): string | undefined {
  return envValue(text, envKey(flag));
}

/** A variable of an EnvironmentFile (the last assignment wins); undefined when it is not set. */
export function envValue(text: string, key: string): string | undefined {
  let value: string | undefined;
  for (const line of text.split('\n')) {
    const m = envLine.exec(line);
    if (m && m[1] === key) value = unquote(m[2]!);
  }
  return value;
}

/**
 * The EnvironmentFile with flags set or taken out: a set flag replaces the
 * first assignment of its variable (later ones are dropped, so nothing
 * overrides it) or is added at the end; a null flag loses every assignment.
 * Comments and every other line stay as they were.
 */
export function withEnvFlags(text: string, flags: Record<string, string | null>): string {
  return withEnvValues(text, Object.fromEntries(Object.entries(flags).map(([f, v]) => [envKey(f), v])));
}

/**
 * Why a value cannot be written unquoted into an EnvironmentFile and read back
 * as written; null when it can. One variable per line: a line break would set
 * another. systemd takes a leading quote as the start of a quoted value (lines
 * included, up to the closing quote), a backslash as an escape (a line
 * continuation at the end), and drops surrounding blanks; units that run etcd
 * through `bash -c "… \"${ETCD_NAME}\" …"` (the RHEL package's) give quotes,
 * `$` and backquotes to a shell. Names and URLs need none of these.
 */
export function envValueProblem(v: string): string | null {
  if (/[\n\r\0]/.test(v)) return 'it has a line break or NUL in it';
  if (/["'\\$`]/.test(v) || v !== v.trim()) return `systemd or the unit's shell would not read it as written: ${JSON.stringify(v.slice(0, 80))}`;
  return null;
}

/** withEnvFlags by variable name (FLANNEL_ETCD_ENDPOINTS). */
export function withEnvValues(text: string, values: Record<string, string | null>): string {
  const lines = text.replace(/\n$/, '').split('\n');
  const out: string[] = [];
  const placed = new Set<string>();
  const wanted = new Map(Object.entries(values));
  for (const [key, v] of wanted) {
    const problem = v === null ? null : envValueProblem(v);
    if (problem) throw new Error(`refusing a value for ${key}: ${problem}`);
  }
  for (const line of lines) {
    const m = envLine.exec(line);
    const key = m?.[1];
    if (!key || !wanted.has(key)) {
      out.push(line);
      continue;
    }
    const v = wanted.get(key)!;
    if (v === null || placed.has(key)) continue;
    out.push(`${key}=${v}`);
    placed.add(key);
  }
  for (const [key, v] of wanted) if (v !== null && !placed.has(key)) out.push(`${key}=${v}`);
  return `${out.join('\n')}\n`;
}
