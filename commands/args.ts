import { NAME_PATTERN, type ClusterConfig, type Inventory } from '../src/config/schema.js';
import { UnknownClusterError, UsageError } from '../src/errors.js';

/** Resolves the optional cluster argument: named, else the default, else the only one. */
export function resolveCluster(inventory: Inventory, name: string | undefined, usage: string): ClusterConfig {
  const known = inventory.clusters.map((c) => c.name);
  if (name === undefined) {
    const fallback = inventory.defaultCluster ?? (known.length === 1 ? known[0] : undefined);
    if (!fallback) throw new UsageError(`more than one cluster is configured; name one of: ${known.join(', ')}`, usage);
    return inventory.clusters.find((c) => c.name === fallback)!;
  }
  if (!NAME_PATTERN.test(name)) {
    throw new UsageError(`"${name}" is not a cluster name (lowercase letters, digits, "-" and "." only)`, usage);
  }
  const found = inventory.clusters.find((c) => c.name === name);
  if (!found) throw new UnknownClusterError(name, known);
  return found;
}

/** Refuses more positional arguments than a command takes, naming the first extra one. */
export function atMost(args: string[], n: number, usage: string): void {
  if (args.length > n) throw new UsageError(`unexpected argument "${args[n]}"`, usage);
}

/** Separates `--flags` from positional arguments, refusing flags the command does not know. */
export function splitFlags(args: string[], known: string[], usage: string): { positional: string[]; flags: Set<string> } {
  const flags = new Set<string>();
  const positional: string[] = [];
  for (const a of args) {
    if (a.startsWith('-')) {
      if (!known.includes(a.toLowerCase())) throw new UsageError(`unknown option "${a}"`, usage);
      flags.add(a.toLowerCase());
    } else positional.push(a);
  }
  return { positional, flags };
}
