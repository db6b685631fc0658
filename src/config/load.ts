import { randomBytes } from 'node:crypto';
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
  // How often a worker looks for runs nobody works on and locks nobody holds (one worker at a time).
  MEDIC_SWEEP_MS: z.coerce.number().int().min(200).max(3_600_000).default(15_000),
  // --- Integrity and transport security (kept together) ---
  // Signs approvals and the timeline's hash chain; never stored in Redis, never logged.
  ETCD_MEDIC_HMAC_KEY: z.string().min(32, 'at least 32 characters (e.g. `openssl rand -hex 32`)').optional(),
  // Redis AUTH; a rediss:// URL turns on TLS, REDIS_TLS_CA names a private CA's certificate file.
  REDIS_PASSWORD: z.string().optional(),
  REDIS_TLS_CA: z.string().optional(),
  // Fault injection for tests only: the worker kills itself right after a step of this kind acts
  // (`kind#n`: the n-th step of that kind in the plan).
  MEDIC_FAULT_KILL_AFTER: z
    .string()
    .regex(/^(snapshot|member-remove|stop-and-move-aside|member-add-learner|write-manifest|wait-caught-up|promote|verify|fence|force-new-cluster|verify-backup|restore-snapshot|apiservers|kube-check|kubelet-rebootstrap|kubelet-csrs|issue-certs|workload-check|pdb-delete|sts-initial-state|drain|wipe-claim|uncordon|pdb-restore|compact|defrag-member|alarm-disarm|write-check)(#[1-9]\d*)?$/, 'a step kind, optionally #n')
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
  sweepMs: number;
  faultKillAfter?: z.infer<typeof envSchema>['MEDIC_FAULT_KILL_AFTER'];
  /** The HMAC key for approvals and the timeline chain. */
  hmacKey: string;
  /** True when no key was set and one was made for this process (lab only: SLACK_API_URL points at a stand-in). */
  hmacKeyGenerated: boolean;
  redisPassword?: string;
  redisTlsCaFile?: string;
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
  const hmac = hmacKeyOf(e);
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
    sweepMs: e.MEDIC_SWEEP_MS,
    faultKillAfter: e.MEDIC_FAULT_KILL_AFTER,
    hmacKey: hmac.key,
    hmacKeyGenerated: hmac.generated,
    redisPassword: e.REDIS_PASSWORD || undefined,
    redisTlsCaFile: e.REDIS_TLS_CA || undefined,
  };
}

/**
 * With a real Slack workspace (a bot token and Slack's own API) the key must come
 * from the environment: approvals and timelines signed with a key that dies with
 * the process could not be checked by another worker or after a restart. Against
 * a Slack stand-in (SLACK_API_URL: the lab, the playground, the bench) one is made.
 */
function hmacKeyOf(e: z.infer<typeof envSchema>): { key: string; generated: boolean } {
  if (e.ETCD_MEDIC_HMAC_KEY) return { key: e.ETCD_MEDIC_HMAC_KEY, generated: false };
  if (e.SLACK_BOT_TOKEN && !e.SLACK_API_URL) {
    throw new ConfigError(
      'environment variable ETCD_MEDIC_HMAC_KEY is not set: it signs approvals and the incident timeline, and is required with a Slack workspace. Set it to a random secret of at least 32 characters (e.g. `openssl rand -hex 32`), the same for the bot and every worker, kept out of Redis.',
    );
  }
  return { key: randomBytes(32).toString('hex'), generated: true };
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
