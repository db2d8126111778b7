/** What a secret must have: a length and enough distinct characters to not be a pattern. */
export interface SecretRule {
  minLength: number;
  minDistinct: number;
}

/** Peer secrets key HMACs between proxies and agents. */
export const PEER_SECRET_RULE: SecretRule = { minLength: 16, minDistinct: 8 };
/** API and agent-control passwords guard switchover, drains, stop and bootstrap. */
export const PASSWORD_RULE: SecretRule = { minLength: 8, minDistinct: 4 };

/**
 * Why `secret` is too weak to accept, or null: too short, too few distinct characters, or one
 * short run repeated ("abcabcabc…"). Never quotes the secret itself.
 */
export function secretProblem(secret: string, rule: SecretRule): string | null {
  const chars = [...secret];
  if (chars.length < rule.minLength) {
    return `it has ${chars.length} characters: at least ${rule.minLength} are expected`;
  }
  const distinct = new Set(chars).size;
  if (distinct < rule.minDistinct) {
    return `it has only ${distinct} distinct characters: at least ${rule.minDistinct} are expected`;
  }
  for (let period = 1; period <= chars.length / 3; period++) {
    if (chars.every((c, i) => c === chars[i % period])) {
      return `it repeats ${period} characters over and over: use a random secret (openssl rand -base64 32)`;
    }
  }
  return null;
}
