/**
 * Splits an operator's command line into arguments, honouring single and double quotes and
 * backslash escapes, so commands run without a shell (nothing from a request ever reaches them).
 * Throws a TypeError for an unterminated quote.
 */
export function splitCommandLine(text: string): string[] {
  const args: string[] = [];
  let current = "";
  let inArg = false;
  let quote: '"' | "'" | null = null;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (quote) {
      if (c === quote) quote = null;
      else if (c === "\\" && quote === '"' && i + 1 < text.length) current += text[++i];
      else current += c;
    } else if (c === '"' || c === "'") {
      quote = c;
      inArg = true;
    } else if (c === "\\" && i + 1 < text.length) {
      current += text[++i];
      inArg = true;
    } else if (/\s/.test(c)) {
      if (inArg) args.push(current);
      current = "";
      inArg = false;
    } else {
      current += c;
      inArg = true;
    }
  }
  if (quote) throw new TypeError(`unterminated ${quote} quote in command: ${text}`);
  if (inArg) args.push(current);
  return args;
}
