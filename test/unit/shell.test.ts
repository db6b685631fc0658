import { execFileSync } from 'node:child_process';
import { existsSync, rmSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { quote, quoteScript, sh } from '../../src/ssh/shell.js';

/** What bash really receives as one argument: the value printed back by printf. */
const echoed = (line: string) => execFileSync('bash', ['-c', line], { encoding: 'utf8' });

// Values that would do something if a shell read them: each is a canary that prints FIRED.
const canary = `/tmp/medic-canary-${process.pid}`;
const hostile = [
  '$(echo FIRED)',
  '`echo FIRED`',
  '; echo FIRED',
  '&& echo FIRED',
  '| echo FIRED',
  "'; echo FIRED; '",
  '"; echo FIRED; "',
  `$(touch\${IFS}${canary})`,
  `\`touch ${canary}\``,
  '${IFS}echo${IFS}FIRED',
  '\\\'; echo FIRED',
  'a b\tc',
  '*',
  '~root',
  '-n',
  '',
  "it's",
  'ünïcödé ☃',
];

describe('shell quoting', () => {
  it('passes every hostile value through bash as exactly one unchanged argument', () => {
    rmSync(canary, { force: true });
    for (const v of hostile) {
      expect(echoed(sh`printf '%s|' ${v}`)).toBe(`${v}|`);
    }
    expect(existsSync(canary)).toBe(false);
  });

  it('quotes numbers and builds whole commands', () => {
    expect(sh`mv ${'/a b'} ${'/c'}`).toBe("mv '/a b' '/c'");
    expect(sh`seq 1 ${3}`).toBe("seq 1 '3'");
    expect(echoed(sh`seq 1 ${3}`)).toBe('1\n2\n3\n');
    expect(quote("it's")).toBe("'it'\\''s'");
  });

  it('refuses a value with a newline, carriage return or NUL rather than quoting it', () => {
    for (const v of ['a\nrm -rf /', 'a\rb', 'a\0b']) {
      expect(() => quote(v)).toThrow('refusing to put a value with a newline or NUL into a shell command');
      expect(() => sh`echo ${v}`).toThrow(/newline or NUL/);
    }
  });

  it('quotes a whole multi-line script for bash -c, with quotes and hostile values inside', () => {
    const script = [sh`x=${'$(echo FIRED)'}`, 'echo "got: $x"', sh`echo ${"it's"}`].join('\n');
    expect(echoed(`bash -c ${quoteScript(script)}`)).toBe("got: $(echo FIRED)\nit's\n");
    expect(() => quoteScript('echo a\0b')).toThrow('refusing a script with a NUL byte');
  });
});
