import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

/** One `Key=value` line of a unit file, in file order (systemd applies them in that order). */
export interface Assignment {
  section: string;
  key: string;
  value: string;
}

/**
 * A service unit as the lab's supervisor runs it: the unit file with its
 * drop-ins applied. List settings keep every value in order; an empty
 * assignment has already reset the list, as systemd does.
 */
export interface UnitSpec {
  name: string;
  description: string;
  /** Command lines, still unexpanded; a simple service must end with exactly one. */
  execStart: string[];
  /** `Environment=` values, each one or more quoted `KEY=value` words. */
  environment: string[];
  environmentFiles: { path: string; optional: boolean }[];
  restart: 'no' | 'always' | 'on-failure';
  /**
   * simple (and exec): started once the process runs. notify: started once the
   * process sends READY=1 to $NOTIFY_SOCKET (etcd does once it has joined a
   * cluster with a leader), as the etcd package's etcd.service is.
   */
  type: 'simple' | 'notify';
}

/** A unit that cannot be started; `message` is what systemd logs about it. */
export class UnitError extends Error {
  constructor(
    message: string,
    /** bad-setting: the unit file is wrong; resources: a file it needs is missing. */
    readonly kind: 'not-found' | 'bad-setting' | 'resources',
  ) {
    super(message);
  }
}

/** Parses unit-file text (INI with `[Section]` headers, `#`/`;` comments and `\` line continuations). */
export function parseUnitFile(text: string): Assignment[] {
  const out: Assignment[] = [];
  let section = '';
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    let line = lines[i]!.trim();
    if (line === '' || line.startsWith('#') || line.startsWith(';')) continue;
    while (line.endsWith('\\') && i + 1 < lines.length) line = `${line.slice(0, -1)} ${lines[++i]!.trim()}`;
    const header = /^\[([^\]]+)\]$/.exec(line);
    if (header) {
      section = header[1]!;
      continue;
    }
    const eq = line.indexOf('=');
    if (eq <= 0) continue; // systemd logs and ignores a line it cannot parse
    out.push({ section, key: line.slice(0, eq).trim(), value: line.slice(eq + 1).trim() });
  }
  return out;
}

/** The unit file and its drop-ins (`<unit>.service.d/*.conf`, in name order), read now: a change shows at the next start. */
export function loadUnit(unitDir: string, name: string): UnitSpec {
  const file = join(unitDir, `${name}.service`);
  if (!existsSync(file)) throw new UnitError(`Unit ${name}.service not found.`, 'not-found');
  const dropInDir = `${file}.d`;
  const dropIns = existsSync(dropInDir) ? readdirSync(dropInDir).filter((f) => f.endsWith('.conf')).sort().map((f) => join(dropInDir, f)) : [];
  const spec: UnitSpec = { name, description: `${name}.service`, execStart: [], environment: [], environmentFiles: [], restart: 'no', type: 'simple' };
  for (const path of [file, ...dropIns]) {
    for (const { section, key, value } of parseUnitFile(readFileSync(path, 'utf8'))) {
      if (section === 'Unit' && key === 'Description') spec.description = value;
      if (section !== 'Service') continue;
      if (key === 'ExecStart') spec.execStart = value === '' ? [] : [...spec.execStart, value];
      else if (key === 'Environment') spec.environment = value === '' ? [] : [...spec.environment, value];
      else if (key === 'EnvironmentFile') {
        spec.environmentFiles = value === '' ? [] : [...spec.environmentFiles, { path: value.replace(/^-/, ''), optional: value.startsWith('-') }];
      } else if (key === 'Restart') {
        if (value !== 'no' && value !== 'always' && value !== 'on-failure') throw new UnitError(`${name}.service: Failed to parse service restart specifier, ignoring: ${value}`, 'bad-setting');
        spec.restart = value;
      } else if (key === 'Type') {
        if (value === 'simple' || value === 'exec' || value === '') spec.type = 'simple';
        else if (value === 'notify') spec.type = 'notify';
        else throw new UnitError(`${name}.service: Type=${value} is not something the lab's supervisor runs (simple, exec, notify)`, 'bad-setting');
      }
    }
  }
  return spec;
}

/**
 * KEY=VALUE lines of an EnvironmentFile: blank lines and `#`/`;` comments
 * skipped, one pair of double or single quotes around a value removed
 * (inside double quotes `\"` and `\\` are escapes), as systemd reads them.
 */
export function parseEnvironmentFile(text: string): Record<string, string> {
  const env: Record<string, string> = {};
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (line === '' || line.startsWith('#') || line.startsWith(';')) continue;
    const eq = line.indexOf('=');
    if (eq <= 0) continue;
    const key = line.slice(0, eq).trim();
    if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(key)) continue; // systemd ignores an invalid name
    let value = line.slice(eq + 1).trim();
    if (value.length >= 2 && value.startsWith('"') && value.endsWith('"')) value = value.slice(1, -1).replace(/\\(["\\])/g, '$1');
    else if (value.length >= 2 && value.startsWith("'") && value.endsWith("'")) value = value.slice(1, -1);
    env[key] = value;
  }
  return env;
}

/** Splits a setting into words the way systemd does: whitespace separates, double or single quotes group, `\` escapes. */
export function splitWords(text: string): string[] {
  const words: string[] = [];
  let word: string | null = null;
  let quote: '"' | "'" | null = null;
  for (let i = 0; i < text.length; i++) {
    const c = text[i]!;
    if (quote) {
      if (c === quote) quote = null;
      else if (c === '\\' && quote === '"' && i + 1 < text.length) word += text[++i]!;
      else word += c;
    } else if (c === ' ' || c === '\t') {
      if (word !== null) words.push(word);
      word = null;
    } else if (c === '"' || c === "'") {
      quote = c;
      word ??= '';
    } else if (c === '\\' && i + 1 < text.length) {
      word = (word ?? '') + text[++i]!;
    } else {
      word = (word ?? '') + c;
    }
  }
  if (quote) throw new UnitError(`unbalanced quotes in: ${text}`, 'bad-setting');
  if (word !== null) words.push(word);
  return words;
}

/**
 * The environment a service's process gets: systemd's minimal PATH, then
 * `Environment=`, then every EnvironmentFile in order (their values win).
 * A missing file without the `-` prefix makes the start fail.
 */
export function unitEnvironment(spec: UnitSpec): Record<string, string> {
  const env: Record<string, string> = { PATH: '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin', LANG: 'C.UTF-8' };
  for (const setting of spec.environment) {
    for (const word of splitWords(setting)) {
      const eq = word.indexOf('=');
      if (eq > 0) env[word.slice(0, eq)] = word.slice(eq + 1);
    }
  }
  for (const f of spec.environmentFiles) {
    let text: string;
    try {
      text = readFileSync(f.path, 'utf8');
    } catch {
      if (f.optional) continue;
      throw new UnitError(`${spec.name}.service: Failed to load environment files: No such file or directory (${f.path})`, 'resources');
    }
    Object.assign(env, parseEnvironmentFile(text));
  }
  return env;
}

/**
 * The argv of the service's one ExecStart line: its prefixes (`-`, `@`, `+`,
 * `!`, `:`) dropped, `${VAR}` replaced by the value as one word and a bare
 * `$VAR` word split on whitespace, as systemd expands them.
 */
export function execArgv(spec: UnitSpec, env: Record<string, string>): string[] {
  const argv: string[] = [];
  for (const word of splitWords(execLine(spec))) {
    const bare = /^\$([A-Za-z_][A-Za-z0-9_]*)$/.exec(word);
    if (bare) {
      argv.push(...(env[bare[1]!] ?? '').split(/\s+/).filter(Boolean));
      continue;
    }
    argv.push(word.replace(/\$\{([A-Za-z_][A-Za-z0-9_]*)\}/g, (_, k: string) => env[k] ?? '').replace(/\$\$/g, '$'));
  }
  return argv;
}

/**
 * The one ExecStart line of a simple service, prefixes dropped. What systemd
 * checks when it loads the unit: a unit failing here is refused before
 * anything is stopped.
 */
export function execLine(spec: UnitSpec): string {
  if (spec.execStart.length === 0) throw new UnitError(`${spec.name}.service: Service has no ExecStart=, ExecStop=, or SuccessAction=. Refusing.`, 'bad-setting');
  if (spec.execStart.length > 1) throw new UnitError(`${spec.name}.service: Service has more than one ExecStart= setting, which is only allowed for Type=oneshot services. Refusing.`, 'bad-setting');
  const line = spec.execStart[0]!.replace(/^[-@+!:]+/, '');
  const first = splitWords(line)[0] ?? '';
  if (!first.startsWith('/')) throw new UnitError(`${spec.name}.service: Executable path is not absolute: ${first}`, 'bad-setting');
  return line;
}
