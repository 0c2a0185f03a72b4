/**
 * Word error rate for the speech benchmark: (substitutions + deletions + insertions) / words in the reference, from
 * a word-level edit distance after both texts are normalised the same way (lower case, punctuation dropped, runs of
 * spaces folded). Summed over a set it is Σ errors / Σ reference words, not the mean of per-clip rates.
 */

/** Lower case, apostrophes kept inside words, every other non-letter/digit a space, words split. */
export function words(text: string): string[] {
  return text
    .toLowerCase()
    .replace(/[^\p{L}\p{N}']+/gu, ' ')
    .replace(/(^|\s)'+|'+(?=\s|$)/g, '$1')
    .split(/\s+/)
    .filter((w) => w !== '');
}

export interface WordErrors {
  /** Substitutions + deletions + insertions. */
  errors: number;
  /** Words in the reference. */
  words: number;
}

/** The word-level edit distance between a reference and a hypothesis. */
export function wordErrors(reference: string, hypothesis: string): WordErrors {
  const ref = words(reference);
  const hyp = words(hypothesis);
  let prev = Array.from({ length: hyp.length + 1 }, (_, j) => j);
  for (let i = 1; i <= ref.length; i++) {
    const row = [i];
    for (let j = 1; j <= hyp.length; j++) {
      const same = ref[i - 1] === hyp[j - 1] ? 0 : 1;
      row.push(Math.min((prev[j] as number) + 1, (row[j - 1] as number) + 1, (prev[j - 1] as number) + same));
    }
    prev = row;
  }
  return { errors: prev[hyp.length] as number, words: ref.length };
}

/** Σ errors / Σ words as a percentage (one decimal); 0 for an empty set. */
export function werPercent(all: readonly WordErrors[]): number {
  const words = all.reduce((n, e) => n + e.words, 0);
  const errors = all.reduce((n, e) => n + e.errors, 0);
  return words === 0 ? 0 : Math.round((1000 * errors) / words) / 10;
}
