/**
 * Mistral tokenization for replays, with mistral-tokenizer-js (Mixtral's SentencePiece
 * vocabulary of 32000). The text is tokenized line by line and lines are joined with the
 * newline byte token 13: the same ids as tokenizing the whole text at once (SentencePiece
 * encodes "\n" as <0x0A> with no dummy prefix after it), but several times faster because
 * the library's BPE merge is slow on very long strings.
 */
// @ts-expect-error mistral-tokenizer-js ships no type declarations
import mistralTokenizer from 'mistral-tokenizer-js'

interface MistralTokenizer {
  encode(text: string, addBos?: boolean, addPrecedingSpace?: boolean): number[]
  decode(ids: number[], addBos?: boolean, addPrecedingSpace?: boolean): string
}
const tokenizer = mistralTokenizer as MistralTokenizer

/** The newline byte token <0x0A> of the Mistral vocabulary. */
export const MISTRAL_NEWLINE = 13

/**
 * Token ids of `text` under the Mistral tokenizer (no BOS; a dummy prefix space before the
 * first line, as SentencePiece adds). Feed them to `mixtralReplayWorkload(domain, layer,
 * { tokenIds })` to replay your own text through the recorded per-token routing.
 *
 * @example tokenizeMistral('Hello world!') // [22557, 1526, 28808]
 */
export function tokenizeMistral(text: string): Uint16Array {
  const ids: number[] = []
  text.split('\n').forEach((line, i) => {
    if (i > 0) ids.push(MISTRAL_NEWLINE)
    if (line.length > 0) for (const id of tokenizer.encode(line, false, i === 0)) ids.push(id)
  })
  return Uint16Array.from(ids)
}

/** Text of Mistral token ids (inverse of {@link tokenizeMistral}). */
export function detokenizeMistral(ids: ArrayLike<number>): string {
  return tokenizer.decode(Array.from(ids), false, true)
}
