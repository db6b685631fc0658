/**
 * Builds shell command lines from values that were already validated, quoting
 * every interpolated value so that nothing in it is read by the shell.
 * Usage: sh`mv ${from} ${to}` → mv 'from' 'to'
 */
export function quote(value: string | number): string {
  const s = String(value);
  // A newline or NUL in a value has no business in a path, name or URL: refuse rather than quote.
  if (/[\0\n\r]/.test(s)) throw new Error('refusing to put a value with a newline or NUL into a shell command');
  return `'${s.replace(/'/g, `'\\''`)}'`;
}

export function sh(strings: TemplateStringsArray, ...values: (string | number)[]): string {
  let out = strings[0]!;
  values.forEach((v, i) => {
    out += quote(v) + strings[i + 1]!;
  });
  return out;
}

/** Quotes a whole script for `bash -c`: newlines are fine inside single quotes; a NUL is not. */
export function quoteScript(script: string): string {
  if (script.includes('\0')) throw new Error('refusing a script with a NUL byte');
  return `'${script.replace(/'/g, `'\\''`)}'`;
}
