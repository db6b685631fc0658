import { pino, type Logger } from 'pino';
import { maskSecrets } from './secrets/mask.js';

export type { Logger };

// Secrets must never reach the logs: every field that can hold one is censored
// wherever it appears in a logged object, and every line written goes through
// the same masking as chat messages and the timeline (a token or key pasted by a
// user, or carried in an error message, is masked by its shape).
const SECRET_KEYS = ['token', 'botToken', 'appToken', 'signingSecret', 'hmacKey', 'privateKey', 'key', 'password', 'redisPassword', 'authorization'];

export function createLogger(level: string = process.env.LOG_LEVEL ?? 'info', destination?: NodeJS.WritableStream): Logger {
  const paths = SECRET_KEYS.flatMap((k) => [k, `*.${k}`, `*.*.${k}`]);
  return pino(
    {
      level,
      base: { app: 'etcd-medic' },
      timestamp: pino.stdTimeFunctions.isoTime,
      redact: { paths, censor: '[redacted]' },
      hooks: { streamWrite: (line) => maskSecrets(line) },
    },
    destination ?? pino.destination(1),
  );
}
