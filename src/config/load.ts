import { readFileSync } from 'node:fs';
import { parse as parseYaml, YAMLParseError } from 'yaml';
import { z } from 'zod';
import { inventorySchema, type Inventory } from './schema.js';
import { ConfigError } from '../errors.js';

/** Settings that come from the environment (secrets and where things are), validated once. */
const envSchema = z.object({
  ETCD_MEDIC_INVENTORY: z.string().min(1, 'the path of the cluster inventory YAML file'),
  REDIS_URL: z.string().default('redis://127.0.0.1:6379'),
  QUEUE_PREFIX: z.string().regex(/^[A-Za-z0-9_-]+$/).default('etcd-medic'),
  PORT: z.coerce.number().int().min(0).max(65535).default(3000),
  HOST: z.string().default('0.0.0.0'),
  LOG_LEVEL: z.enum(['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent']).default('info'),
  SLACK_BOT_TOKEN: z.string().optional(),
  SLACK_SIGNING_SECRET: z.string().optional(),
  SLACK_APP_TOKEN: z.string().optional(),
  // Points every Web API call at another base URL (a local fake Slack in tests and the playground).
  SLACK_API_URL: z.string().url().optional(),
  WORKER_CONCURRENCY: z.coerce.number().int().min(1).max(64).default(4),
  // A crashed worker's job is taken over by another after about this long.
  WORKER_LOCK_MS: z.coerce.number().int().min(1000).max(600_000).default(30_000),
  // Fault injection for tests only: the worker kills itself right after a step of this kind acts
  // (`kind#n`: the n-th step of that kind in the plan).
  MEDIC_FAULT_KILL_AFTER: z
    .string()
    .regex(/^(snapshot|member-remove|stop-and-move-aside|member-add-learner|write-manifest|wait-caught-up|promote|verify|fence|force-new-cluster|verify-backup|restore-snapshot|apiservers)(#[1-9]\d*)?$/, 'a step kind, optionally #n')
    .optional(),
});

export interface Settings {
  inventoryPath: string;
  redisUrl: string;
  queuePrefix: string;
  port: number;
  host: string;
  logLevel: z.infer<typeof envSchema>['LOG_LEVEL'];
  slack: { botToken?: string; signingSecret?: string; appToken?: string; apiUrl?: string };
  workerConcurrency: number;
  workerLockMs: number;
  faultKillAfter?: z.infer<typeof envSchema>['MEDIC_FAULT_KILL_AFTER'];
}

export interface Config {
  settings: Settings;
  inventory: Inventory;
}

type Env = Record<string, string | undefined>;

export function readSettings(env: Env): Settings {
  const parsed = envSchema.safeParse(env);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    throw new ConfigError(`environment variable ${issue.path.join('.')}: ${issue.message}`);
  }
  const e = parsed.data;
  return {
    inventoryPath: e.ETCD_MEDIC_INVENTORY,
    redisUrl: e.REDIS_URL,
    queuePrefix: e.QUEUE_PREFIX,
    port: e.PORT,
    host: e.HOST,
    logLevel: e.LOG_LEVEL,
    slack: {
      botToken: e.SLACK_BOT_TOKEN || undefined,
      signingSecret: e.SLACK_SIGNING_SECRET || undefined,
      appToken: e.SLACK_APP_TOKEN || undefined,
      apiUrl: e.SLACK_API_URL || undefined,
    },
    workerConcurrency: e.WORKER_CONCURRENCY,
    workerLockMs: e.WORKER_LOCK_MS,
    faultKillAfter: e.MEDIC_FAULT_KILL_AFTER,
  };
}

/** Renders a zod issue path the way a person finds it in YAML: clusters[0].members[2].ssh.port */
export function formatPath(path: ReadonlyArray<PropertyKey>): string {
  let out = '';
  for (const p of path) out += typeof p === 'number' ? `[${p}]` : out ? `.${String(p)}` : String(p);
  return out || '(top level)';
}

/** Parses and validates inventory text; errors name the file, the path inside it and what was expected. */
export function parseInventory(text: string, file: string): Inventory {
  let raw: unknown;
  try {
    raw = parseYaml(text);
  } catch (err) {
    const where = err instanceof YAMLParseError && err.linePos ? ` at line ${err.linePos[0].line}` : '';
    throw new ConfigError(`${file}${where}: not valid YAML: ${(err as Error).message.split('\n')[0]}`);
  }
  const result = inventorySchema.safeParse(raw);
  if (!result.success) {
    const lines = result.error.issues.slice(0, 5).map((i) => `${file}: ${formatPath(i.path)}: ${describeIssue(i)}`);
    throw new ConfigError(lines.join('\n'));
  }
  return result.data;
}

function describeIssue(i: z.core.$ZodIssue): string {
  if (i.code === 'invalid_type') return `expected ${i.expected}${/received undefined/.test(i.message) ? ', but it is missing' : ''}`;
  if (i.code === 'unrecognized_keys') return `unknown key(s) ${i.keys.map((k) => `"${k}"`).join(', ')}`;
  if (i.code === 'custom') return i.message;
  // Our own messages name what is expected ("a Unix user name"); zod's start with "Invalid" or "Too".
  return /^(Invalid|Too|Expected)/i.test(i.message) ? i.message : `expected ${i.message}`;
}

export function loadConfig(env: Env, readFile: (p: string) => string = (p) => readFileSync(p, 'utf8')): Config {
  const settings = readSettings(env);
  let text: string;
  try {
    text = readFile(settings.inventoryPath);
  } catch (err) {
    throw new ConfigError(`${settings.inventoryPath}: cannot read the inventory file (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`);
  }
  return { settings, inventory: parseInventory(text, settings.inventoryPath) };
}
