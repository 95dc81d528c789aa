/**
 * Mistral tokenization for replays, with mistral-tokenizer-js (Mixtral's SentencePiece
 * vocabulary of 32000). The text is tokenized line by line and lines are joined with the
 * newline byte token 13: the same ids as tokenizing the whole text at once (SentencePiece
 * encodes "\n" as <0x0A> with no dummy prefix after it), but several times faster because
 * the library's BPE merge is slow on very long strings.
 */

interface MistralTokenizer {
  encode(text: string, addBos?: boolean, addPrecedingSpace?: boolean): number[]
  decode(ids: number[], addBos?: boolean, addPrecedingSpace?: boolean): string
}

let loading: Promise<MistralTokenizer> | undefined
/** Loads mistral-tokenizer-js on first use (it takes ~90 ms to import; most users never tokenize). */
function tokenizer(): Promise<MistralTokenizer> {
  // @ts-expect-error mistral-tokenizer-js ships no type declarations
  loading ??= import('mistral-tokenizer-js').then((m: { default: MistralTokenizer }) => m.default)
  return loading
}

/** The newline byte token <0x0A> of the Mistral vocabulary. */
export const MISTRAL_NEWLINE = 13

/**
 * Token ids of `text` under the Mistral tokenizer (no BOS; a dummy prefix space before the
 * first line, as SentencePiece adds). Feed them to `mixtralReplayWorkload(domain, layer,
 * { tokenIds })` to replay your own text through the recorded per-token routing.
 *
 * @example await tokenizeMistral('Hello world!') // Uint16Array [22557, 1526, 28808]
 */
export async function tokenizeMistral(text: string): Promise<Uint16Array> {
  const tok = await tokenizer()
  const ids: number[] = []
  text.split('\n').forEach((line, i) => {
    if (i > 0) ids.push(MISTRAL_NEWLINE)
    if (line.length > 0) for (const id of tok.encode(line, false, i === 0)) ids.push(id)
  })
  return Uint16Array.from(ids)
}

/** Text of Mistral token ids (inverse of {@link tokenizeMistral}). */
export async function detokenizeMistral(ids: ArrayLike<number>): Promise<string> {
  return (await tokenizer()).decode(Array.from(ids), false, true)
}
