import { LogLevel, type Logger as BoltLogger } from '@slack/bolt';
import type { Logger } from '../log.js';

/**
 * Routes Bolt's own log lines into our JSON log (with its redaction). Bolt logs several debug lines
 * per request (each ack's whole body among them): a line below the level is dropped before it is
 * built, so a burst of commands does not pay for text nobody reads.
 */
export function boltLogger(log: Logger): BoltLogger {
  let level = LogLevel.INFO;
  const l = log.child({ component: 'bolt' });
  const at = (lvl: 'debug' | 'info' | 'warn' | 'error') => (...m: unknown[]) => {
    if (l.isLevelEnabled(lvl)) l[lvl](m.map(String).join(' '));
  };
  return {
    debug: at('debug'),
    info: at('info'),
    warn: at('warn'),
    error: at('error'),
    setLevel: (v: LogLevel) => {
      level = v;
    },
    getLevel: () => level,
    setName: () => undefined,
  };
}
