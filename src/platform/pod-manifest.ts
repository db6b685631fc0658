import { isMap, isScalar, isSeq, parseDocument, type Pair, type Scalar, type YAMLMap, type YAMLSeq } from 'yaml';
import { envKey } from './flags.js';
import { overrideValue, scriptComputes, scriptFlag, scriptValueProblem, withOverride, withScriptFlag } from './pod-script.js';

/**
 * etcd's flags in an OpenShift 4 static pod manifest (etcd-member.yaml,
 * etcd-pod.yaml): the etcd container runs `/bin/sh -c <script>` whose
 * `exec etcd` line carries flags, and takes others from its `env`
 * (ETCD_INITIAL_CLUSTER, …). Both are read and written here, on the text: the
 * manifest is never serialised again, so every line the change is not about
 * stays as it was, byte for byte.
 *
 * Where a flag is set both ways, the script's flag is the one read: etcd 3.3
 * (OpenShift 4.1–4.3) takes the flag and ignores the variable it shadows,
 * and etcd 3.4 refuses to start ("conflicting environment variable … is
 * shadowed by corresponding command-line flag"). So a flag is written where it
 * already is (the script's flag first) and every other setting of it is
 * taken out; a flag set nowhere is added to `env`, as OpenShift's own recovery
 * script patches the manifest.
 *
 * Where the script computes the variable itself (4.4+'s etcd-pod.yaml discovers
 * ETCD_INITIAL_CLUSTER and exports ETCD_NAME), its env entry says nothing: the
 * flag is then written as an `export` of the bot's right before the `exec etcd`
 * line (see pod-script.ts `withOverride`), the only place that decides it.
 */

interface EnvEntry {
  node: YAMLMap;
  name: string;
  value: string | undefined;
  /** Set from the pod (valueFrom): its value is known only to the kubelet. */
  fromPod: boolean;
}

interface EtcdPod {
  container: YAMLMap;
  /** The script's scalar node and its text. */
  scriptNode: Scalar;
  script: string;
  /** The container's `env` pair, when it has one. */
  envPair: Pair | undefined;
  env: EnvEntry[];
}

const SHELLS = /(^|\/)(ba)?sh$/;

/** The container that runs etcd: named etcd-member (4.1–4.3) or etcd (4.4+), else the first with a shell script. */
function etcdPodOf(text: string, what = 'the manifest'): EtcdPod {
  const doc = parseDocument(text);
  if (doc.errors.length) throw new Error(`${what} is not valid YAML: ${doc.errors[0]!.message.split('\n')[0]}`);
  const containers = doc.getIn(['spec', 'containers'], true);
  if (!isSeq(containers)) throw new Error(`${what} has no spec.containers`);
  const maps = containers.items.filter(isMap) as YAMLMap[];
  const named = (n: string) => maps.find((c) => c.get('name') === n);
  const candidates = [named('etcd-member'), named('etcd'), ...maps].filter((c): c is YAMLMap => !!c);
  for (const container of candidates) {
    const script = scriptOf(container);
    if (!script) continue;
    const envPair = container.items.find((p) => isScalar(p.key) && p.key.value === 'env') as Pair | undefined;
    const env: EnvEntry[] = [];
    if (envPair && isSeq(envPair.value)) {
      for (const item of (envPair.value as YAMLSeq).items) {
        if (!isMap(item)) continue;
        const value = item.get('value');
        env.push({ node: item, name: String(item.get('name')), value: value === undefined || value === null ? undefined : String(value), fromPod: item.has('valueFrom') });
      }
    }
    return { container, scriptNode: script, script: String(script.value), envPair, env };
  }
  throw new Error(`${what} has no container that runs etcd from a /bin/sh -c script`);
}

/** The scalar holding the script of `command: [/bin/sh, -c, …]` (or of its `args`). */
export function scriptOf(container: YAMLMap): Scalar | null {
  const words = [container.get('command', true), container.get('args', true)].flatMap((s) => (isSeq(s) ? (s as YAMLSeq).items : []));
  for (let i = 0; i + 2 < words.length + 1; i++) {
    const shell = words[i];
    if (!isScalar(shell) || !SHELLS.test(String(shell.value))) continue;
    const opt = words[i + 1];
    const script = words[i + 2];
    if (isScalar(opt) && /^-[a-z]*c[a-z]*$/.test(String(opt.value)) && isScalar(script) && typeof script.value === 'string') return script;
  }
  return null;
}

function entryValue(env: EnvEntry[], key: string): { set: boolean; value: string | undefined } {
  const e = env.filter((x) => x.name === key).at(-1);
  return { set: !!e, value: e?.value };
}

/** One flag of the manifest's etcd: the script's flag where it has one, else its env entry (undefined: not set, or set from the pod). */
export function podFlag(text: string, flag: string): string | undefined {
  const pod = etcdPodOf(text);
  const key = envKey(flag);
  const fromScript = scriptFlag(pod.script, flag) ?? overrideValue(pod.script, key);
  if (fromScript !== undefined) return fromScript;
  // Computed as the script runs (discovered, or from the pod's node variables): not known here.
  if (scriptComputes(pod.script, key)) return undefined;
  return entryValue(pod.env, key).value;
}

/** Why a value cannot be written into the manifest as it is (null: it can): the script's limits, which env values are within. */
export function podValueProblem(value: string): string | null {
  return scriptValueProblem(value);
}

/** The manifest with flags set (a string) or taken out (null); every other line as it was. */
export function withPodFlags(text: string, flags: Record<string, string | null>): string {
  let out = text;
  for (const [flag, value] of Object.entries(flags)) out = withPodFlag(out, flag, value);
  // Read back as the kubelet and etcd would: what was asked is what the manifest says now.
  for (const [flag, value] of Object.entries(flags)) {
    const got = podFlag(out, flag);
    if (got !== (value ?? undefined)) throw new Error(`writing --${flag} into the manifest did not hold (it reads ${JSON.stringify(got)}): not written`);
  }
  return out;
}

function withPodFlag(text: string, flag: string, value: string | null): string {
  if (value !== null) {
    const problem = scriptValueProblem(value);
    if (problem) throw new Error(`refusing a value for --${flag}: ${problem}`);
  }
  const key = envKey(flag);
  let pod = etcdPodOf(text);
  let out = text;
  const inScript = scriptFlag(pod.script, flag) !== undefined;
  if (!inScript && (overrideValue(pod.script, key) !== undefined || scriptComputes(pod.script, key))) {
    // The script's own assignment would win over any env entry: the bot's export after it decides (its env entries left as they are, unread).
    return replaceScript(out, pod, withOverride(pod.script, key, value));
  }
  if (inScript) {
    out = replaceScript(out, pod, withScriptFlag(pod.script, flag, value));
    pod = etcdPodOf(out);
  }
  // Every env entry of the flag goes, but the first one where the flag is written there.
  const keep = value !== null && !inScript ? pod.env.find((e) => e.name === key) : undefined;
  for (const e of [...pod.env].reverse()) if (e.name === key && e !== keep) out = removeEnvEntry(out, e);
  if (value === null || inScript) return out;
  pod = etcdPodOf(out);
  const first = pod.env.find((e) => e.name === key);
  return first ? setEnvEntry(out, first, value) : addEnvEntry(out, pod, key, value);
}

/** Where a line starts and ends around an offset. */
function lineStartOf(text: string, at: number): number {
  return text.lastIndexOf('\n', at - 1) + 1;
}

/** A node's text from its start to where its value ends, the line break that ends a block node kept. */
function replaceNode(text: string, range: [number, number, number] | null | undefined, with_: string): string {
  if (!range) throw new Error('the manifest node has no position');
  const [s, e] = range;
  const nl = text.slice(s, e).endsWith('\n') ? '\n' : '';
  const space = s > 0 && text[s - 1] === ':' ? ' ' : '';
  return text.slice(0, s) + space + with_ + nl + text.slice(e);
}

/**
 * The script node given a new script. A literal block (`|`, as OpenShift
 * writes it) keeps every line that did not change, only the changed lines
 * written again at the block's indentation; anything else, or a block that
 * would not read back the same, is written as one double-quoted string.
 */
function replaceScript(text: string, pod: EtcdPod, script: string): string {
  const node = pod.scriptNode;
  const range = node.range!;
  const check = (out: string) => etcdPodOf(out).script === script;
  if (node.type === 'BLOCK_LITERAL') {
    const block = text.slice(range[0], range[1]);
    const headerEnd = block.indexOf('\n');
    const lines = block.slice(headerEnd + 1).replace(/\n$/, '').split('\n');
    const indent = Math.min(...lines.filter((l) => l.trim()).map((l) => l.length - l.trimStart().length));
    const decoded = lines.map((l) => l.slice(Math.min(indent, l.length - l.trimStart().length)));
    const wanted = script.replace(/\n$/, '').split('\n');
    let p = 0;
    while (p < decoded.length && p < wanted.length && decoded[p] === wanted[p]) p++;
    let s = 0;
    while (s < decoded.length - p && s < wanted.length - p && decoded[decoded.length - 1 - s] === wanted[wanted.length - 1 - s]) s++;
    const middle = wanted.slice(p, wanted.length - s).map((l) => (l ? ' '.repeat(indent) + l : ''));
    const body = [...lines.slice(0, p), ...middle, ...lines.slice(lines.length - s)];
    const out = text.slice(0, range[0]) + block.slice(0, headerEnd + 1) + body.join('\n') + (block.endsWith('\n') ? '\n' : '') + text.slice(range[1]);
    if (check(out)) return out;
  }
  const out = replaceNode(text, range, JSON.stringify(script));
  if (!check(out)) throw new Error('the etcd script could not be written back as it should read: not written');
  return out;
}

function pairOf(entry: YAMLMap, key: string): Pair | undefined {
  return entry.items.find((p) => isScalar(p.key) && p.key.value === key) as Pair | undefined;
}

/** An env entry's value set (a `valueFrom` replaced by the value). */
function setEnvEntry(text: string, e: EnvEntry, value: string): string {
  const v = pairOf(e.node, 'value');
  if (v && isScalar(v.value)) return replaceNode(text, v.value.range, JSON.stringify(value));
  const from = pairOf(e.node, 'valueFrom');
  if (!from) throw new Error(`the env entry ${e.name} has neither value nor valueFrom`);
  const start = (from.key as Scalar).range![0];
  const end = (from.value as Scalar).range![1];
  const nl = text.slice(start, end).endsWith('\n') ? '\n' : '';
  return `${text.slice(0, start)}value: ${JSON.stringify(value)}${nl}${text.slice(end)}`;
}

/** An env entry taken out: its lines, in a block list; the list written again where it is a flow one. */
function removeEnvEntry(text: string, e: EnvEntry): string {
  const seq = etcdPodOf(text).envPair!.value as YAMLSeq;
  if (seq.flow) {
    const rest = (seq.toJSON() as unknown[]).filter((_, i) => seq.items[i] !== undefined && !sameEntry(seq.items[i] as YAMLMap, e.node));
    return replaceNode(text, seq.range, JSON.stringify(rest));
  }
  const [s, end] = e.node.range!;
  const lineStart = lineStartOf(text, s);
  if (!/^[ \t]*-[ \t]+$/.test(text.slice(lineStart, s))) throw new Error(`the env entry ${e.name} does not start a line of its own: not changed`);
  const stop = text.slice(s, end).endsWith('\n') ? end : Math.min(text.length, (text.indexOf('\n', end) + 1) || text.length);
  return text.slice(0, lineStart) + text.slice(stop);
}

function sameEntry(a: YAMLMap, b: YAMLMap): boolean {
  return a.range?.[0] === b.range?.[0];
}

/** A new env entry: after the last one of a block list, or the list written again, or a new `env` for the container. */
function addEnvEntry(text: string, pod: EtcdPod, key: string, value: string): string {
  const seq = pod.envPair?.value;
  if (isSeq(seq) && !seq.flow && seq.items.length) {
    const last = seq.items.at(-1) as YAMLMap;
    const first = seq.items[0] as YAMLMap;
    const lineStart = lineStartOf(text, first.range![0]);
    const keyCol = first.range![0] - lineStart;
    const dashCol = text.slice(lineStart, first.range![0]).indexOf('-');
    const entry = `${' '.repeat(dashCol)}-${' '.repeat(keyCol - dashCol - 1)}name: ${key}\n${' '.repeat(keyCol)}value: ${JSON.stringify(value)}\n`;
    let at = last.range![1];
    if (!text.slice(0, at).endsWith('\n')) at = (text.indexOf('\n', at) + 1) || text.length;
    const pre = text.slice(0, at).endsWith('\n') || at === 0 ? '' : '\n';
    return text.slice(0, at) + pre + entry + text.slice(at);
  }
  const entries = [...(isSeq(seq) ? (seq.toJSON() as unknown[]) : []), { name: key, value }];
  if (pod.envPair) return replaceNode(text, (pod.envPair.value as Scalar | YAMLSeq | null)?.range ?? [(pod.envPair.key as Scalar).range![1] + 1, (pod.envPair.key as Scalar).range![1] + 1, 0], JSON.stringify(entries));
  // No env yet: one, after the line of the container's name, at the column of its keys.
  const name = pairOf(pod.container, 'name');
  if (!name || !isScalar(name.value)) throw new Error('the etcd container has no name to put its env after');
  const keyStart = (name.key as Scalar).range![0];
  const col = keyStart - lineStartOf(text, keyStart);
  const at = (text.indexOf('\n', name.value.range![1] - 1) + 1) || text.length;
  const pad = ' '.repeat(col);
  return `${text.slice(0, at)}${pad}env:\n${pad}- name: ${key}\n${pad}  value: ${JSON.stringify(value)}\n${text.slice(at)}`;
}
