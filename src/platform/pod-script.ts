/**
 * etcd's flags on the `exec etcd …` line of a static pod's shell script, as
 * OpenShift 4 writes its etcd container: `command: [/bin/sh, -c, <script>]`,
 * the script ending in `exec etcd \` with one flag a line. Read as the shell
 * reads the words (quotes, backslashes, line continuations), changed by
 * replacing or removing the words of one flag, so every other character of the
 * script stays as it was.
 */

/** One word of the etcd command: where it is in the script and what the shell makes of it. */
export interface ScriptWord {
  start: number;
  end: number;
  /** The word after quote removal; expansions (`${X}`, `$(…)`, backquotes) kept as written. */
  value: string;
  /** It holds an expansion: what etcd gets is known only when the script runs. */
  dynamic: boolean;
}

/** A text change of the script: [start, end) replaced by `text`. */
export interface ScriptEdit {
  start: number;
  end: number;
  text: string;
}

/** etcd's boolean flags (Go's flag package: `--flag` alone is true, and never takes the next word as its value). */
const BOOL_FLAGS = new Set(['force-new-cluster', 'client-cert-auth', 'peer-client-cert-auth', 'auto-tls', 'peer-auto-tls', 'strict-reconfig-check', 'enable-v2', 'debug', 'enable-pprof', 'pre-vote', 'enable-grpc-gateway', 'experimental-initial-corrupt-check']);

// A line that runs etcd: `exec etcd`, `exec /usr/bin/etcd`, or etcd run without exec.
const ETCD_LINE = /^[ \t]*(?:exec[ \t]+)?(?:\S*\/)?etcd(?=[ \t]|\\\n|\n|$)/gm;

/** Where the script's etcd command starts (the offset of its first word); throws unless there is exactly one. */
export function etcdCommandStart(script: string): number {
  const starts: number[] = [];
  for (const m of script.matchAll(ETCD_LINE)) {
    // A line continued from the one before is not the start of a command.
    const before = script.slice(0, m.index).replace(/\n$/, '');
    if (before.endsWith('\\')) continue;
    starts.push(m.index! + m[0].length - m[0].trimStart().length);
  }
  if (starts.length === 0) throw new Error('the script has no `exec etcd` line');
  if (starts.length > 1) throw new Error(`the script runs etcd on ${starts.length} lines: which one starts the member is not clear`);
  return starts[0]!;
}

/**
 * The words of the simple command that starts at `from`, as sh splits them,
 * up to the end of the command (an unescaped line break, `;`, `&`, `|`, a
 * comment). Throws on what it cannot follow (an unterminated quote).
 */
export function commandWords(script: string, from: number): ScriptWord[] {
  const words: ScriptWord[] = [];
  let i = from;
  let cur: ScriptWord | null = null;
  const begin = () => (cur ??= { start: i, end: i, value: '', dynamic: false });
  const finish = () => {
    if (cur) {
      cur.end = i;
      words.push(cur);
      cur = null;
    }
  };
  while (i < script.length) {
    const c = script[i]!;
    if (c === '\\' && script[i + 1] === '\n') {
      // A line continuation joins the lines; between words it is only a separator.
      i += 2;
      continue;
    }
    if (c === ' ' || c === '\t') {
      finish();
      i++;
      continue;
    }
    if (c === '\n' || c === ';' || c === '&' || c === '|' || c === '<' || c === '>' || c === '(' || c === ')') break;
    if (c === '#' && !cur) break;
    const w = begin();
    if (c === '\\') {
      w.value += script[i + 1] ?? '';
      i += 2;
    } else if (c === "'") {
      const close = script.indexOf("'", i + 1);
      if (close < 0) throw new Error('the etcd command has an unterminated single quote');
      w.value += script.slice(i + 1, close);
      i = close + 1;
    } else if (c === '"') {
      i++;
      for (;;) {
        if (i >= script.length) throw new Error('the etcd command has an unterminated double quote');
        const d = script[i]!;
        if (d === '"') break;
        if (d === '\\' && script[i + 1] === '\n') i += 2;
        else if (d === '\\' && '$`"\\'.includes(script[i + 1] ?? '')) {
          w.value += script[i + 1];
          i += 2;
        } else {
          if (d === '$' || d === '`') w.dynamic = true;
          w.value += d;
          i++;
        }
      }
      i++;
    } else {
      if (c === '$' || c === '`') w.dynamic = true;
      w.value += c;
      i++;
    }
  }
  finish();
  return words;
}

/** One setting of a flag on the command: its words (one, or two for `--flag value`) and its value. */
interface FlagUse {
  first: ScriptWord;
  last: ScriptWord;
  value: string;
}

function flagUses(words: ScriptWord[], flag: string): FlagUse[] {
  const uses: FlagUse[] = [];
  // Past `exec` and the etcd word: only its arguments are flags.
  const args = words.slice(words[0]?.value === 'exec' ? 2 : 1);
  for (let k = 0; k < args.length; k++) {
    const w = args[k]!;
    const m = /^--?([A-Za-z0-9-]+)(?:=([\s\S]*))?$/.exec(w.value);
    if (!m || m[1] !== flag) continue;
    if (m[2] !== undefined) uses.push({ first: w, last: w, value: m[2] });
    else if (BOOL_FLAGS.has(flag) || k + 1 >= args.length || args[k + 1]!.value.startsWith('-')) uses.push({ first: w, last: w, value: 'true' });
    else {
      uses.push({ first: w, last: args[k + 1]!, value: args[k + 1]!.value });
      k++;
    }
  }
  return uses;
}

/** A flag on the script's etcd command (the last setting wins, as in Go's flag package); undefined when it is not there. */
export function scriptFlag(script: string, flag: string): string | undefined {
  const uses = flagUses(commandWords(script, etcdCommandStart(script)), flag);
  return uses.at(-1)?.value;
}

/** Whether the flag is on the script's etcd command at all. */
export function scriptHasFlag(script: string, flag: string): boolean {
  return scriptFlag(script, flag) !== undefined;
}

/** What is safe to write as a word without quotes: names, URLs, lists of them. */
const BARE = /^[A-Za-z0-9_@%+=:,./-]+$/;

/** `value` as one shell word that the shell gives etcd as written: bare where it can be, else single-quoted. */
export function shellWord(value: string): string {
  return BARE.test(value) ? value : `'${value.replace(/'/g, `'\\''`)}'`;
}

/**
 * Why a value cannot go into the script as written (null: it can). Quoting
 * handles every printable character; a line break would end the command (or
 * the YAML block the script is in) and control characters have no business in
 * a name or URL.
 */
export function scriptValueProblem(value: string): string | null {
  if (/[\0\n\r\u0085\u2028\u2029]/.test(value)) return 'it has a line break or NUL in it';
  // eslint-disable-next-line no-control-regex
  if (/[\u0001-\u0008\u000b\u000c\u000e-\u001f\u007f]/.test(value)) return 'it has a control character in it';
  return null;
}

/**
 * The script with `flag` set (a string) or taken out (null) on its etcd
 * command: the first setting's words replaced by `--flag=value`, every later
 * setting taken out; every other character as it was. A flag that is not
 * there is not added (the caller puts new flags elsewhere). Removing a word
 * takes the blanks before it, or its whole line where it is alone on a
 * continued line. One change at a time, each read again from the result, so
 * no two edits overlap.
 */
export function withScriptFlag(script: string, flag: string, value: string | null): string {
  if (value !== null) {
    const problem = scriptValueProblem(value);
    if (problem) throw new Error(`refusing a value for --${flag}: ${problem}`);
  }
  let out = script;
  for (;;) {
    const words = commandWords(out, etcdCommandStart(out));
    const uses = flagUses(words, flag);
    if (uses.length > 1) {
      out = applyEdit(out, removal(out, uses.at(-1)!, words));
      continue;
    }
    const u = uses[0];
    if (!u) return out;
    if (value === null) return applyEdit(out, removal(out, u, words));
    return applyEdit(out, { start: u.first.start, end: u.last.end, text: `--${flag}=${shellWord(value)}` });
  }
}

function removal(script: string, u: FlagUse, words: ScriptWord[]): ScriptEdit {
  const lineStart = script.lastIndexOf('\n', u.first.start - 1) + 1;
  const nl = script.indexOf('\n', u.last.end);
  const lineEnd = nl < 0 ? script.length : nl;
  const before = script.slice(lineStart, u.first.start);
  const after = script.slice(u.last.end, lineEnd);
  const isLast = words.at(-1) === u.last;
  if (/^[ \t]*$/.test(before) && /^[ \t]*(\\)?$/.test(after)) {
    const continued = after.trimStart() === '\\';
    if (continued || !isLast) return { start: lineStart, end: nl < 0 ? lineEnd : nl + 1, text: '' };
    // The command's last line goes: the line before it ends the command now, without its continuation.
    const prevEnd = lineStart - 1;
    const prev = script.slice(script.lastIndexOf('\n', prevEnd - 1) + 1, prevEnd);
    const cont = /[ \t]*\\$/.exec(prev);
    return { start: cont ? prevEnd - cont[0].length : lineStart, end: lineEnd, text: '' };
  }
  // Other words on the line: the flag's words go with the blanks before them.
  let s = u.first.start;
  while (s > lineStart && (script[s - 1] === ' ' || script[s - 1] === '\t')) s--;
  return { start: s, end: u.last.end, text: '' };
}

function applyEdit(text: string, e: ScriptEdit): string {
  return text.slice(0, e.start) + e.text + text.slice(e.end);
}

/** Whether the script itself assigns or exports an etcd variable (then neither the flag nor the env entry alone says what etcd gets). */
export function scriptAssigns(script: string, key: string): boolean {
  return new RegExp(`(^|[\\s;&|(])(export[ \\t]+)?${key}=`, 'm').test(script);
}

/**
 * Where a script computes an etcd variable itself (4.4+'s etcd-pod.yaml:
 * `ETCD_INITIAL_CLUSTER=$(discover-etcd-initial-cluster …)`, `export
 * ETCD_NAME=${NODE_…}`), neither the `exec etcd` line nor the container's env
 * decides what etcd gets: the script's own assignment overrides the env entry.
 * The bot then writes the variable as an `export` of its own on a line right
 * before the etcd command, so it runs after every line of the script that
 * sets it, each line marked as the bot's under one comment that says why.
 * Taking the flag out takes that line out (the block's comment with its last
 * line), and the script computes it again as it did. The etcd operator's next
 * revision of the file (a forced redeployment after a restore) drops them all.
 */
const OVERRIDE_MARK = '# etcd-medic';
const OVERRIDE_HEADER = `${OVERRIDE_MARK}: recovery settings, exported after the lines above set theirs (etcd takes these); the etcd operator's next revision of this file drops them`;
const OVERRIDE_LINE = /^[ \t]*export[ \t]+(ETCD_[A-Z0-9_]+)=(.*)[ \t]+# etcd-medic$/;

interface OverrideLine {
  key: string;
  value: string;
  /** [start, end) of the line, its line break included. */
  start: number;
  end: number;
}

function lineSpans(script: string): { text: string; start: number; end: number }[] {
  const spans: { text: string; start: number; end: number }[] = [];
  let at = 0;
  while (at < script.length) {
    const nl = script.indexOf('\n', at);
    const end = nl < 0 ? script.length : nl + 1;
    spans.push({ text: script.slice(at, nl < 0 ? script.length : nl), start: at, end });
    at = end;
  }
  return spans;
}

function overrideLines(script: string): OverrideLine[] {
  const out: OverrideLine[] = [];
  for (const l of lineSpans(script)) {
    const m = OVERRIDE_LINE.exec(l.text);
    if (!m) continue;
    // The value as the shell reads the word (it was written by shellWord: bare or single-quoted).
    const words = commandWords(l.text, l.text.indexOf('export'));
    const assignment = words[1]?.value ?? '';
    out.push({ key: m[1]!, value: assignment.slice(assignment.indexOf('=') + 1), start: l.start, end: l.end });
  }
  return out;
}

/** The value the bot exported for `key` before the etcd command; undefined when it wrote none. */
export function overrideValue(script: string, key: string): string | undefined {
  return overrideLines(script).find((o) => o.key === key)?.value;
}

/** The script without the bot's override lines and their comment: the script as its owner wrote it. */
export function withoutOverrides(script: string): string {
  let out = script;
  for (const k of new Set(overrideLines(script).map((o) => o.key))) out = withOverride(out, k, null);
  return out;
}

/** Whether the script (the bot's own lines aside) computes `key` itself, so only an override line can set it. */
export function scriptComputes(script: string, key: string): boolean {
  return scriptAssigns(withoutOverrides(script), key);
}

/**
 * The script with the bot's `export KEY=value` line for `key` set (a string)
 * or taken out (null), right before the etcd command; the block's comment is
 * written with its first line and goes with its last. Every other character
 * stays as it was.
 */
export function withOverride(script: string, key: string, value: string | null): string {
  if (value !== null) {
    const problem = scriptValueProblem(value);
    if (problem) throw new Error(`refusing a value for ${key}: ${problem}`);
  }
  let out = script;
  const old = overrideLines(out).find((o) => o.key === key);
  if (old) out = out.slice(0, old.start) + out.slice(old.end);
  if (overrideLines(out).length === 0) {
    const header = lineSpans(out).find((l) => l.text.trim() === OVERRIDE_HEADER);
    if (header) out = out.slice(0, header.start) + out.slice(header.end);
  }
  if (value === null) return out;
  const at = out.lastIndexOf('\n', etcdCommandStart(out) - 1) + 1;
  const indent = /^[ \t]*/.exec(out.slice(at))![0];
  const hasHeader = lineSpans(out).some((l) => l.text.trim() === OVERRIDE_HEADER);
  const lines = `${hasHeader ? '' : `${indent}${OVERRIDE_HEADER}\n`}${indent}export ${key}=${shellWord(value)}  ${OVERRIDE_MARK}\n`;
  return out.slice(0, at) + lines + out.slice(at);
}
