/** The recorded routing the page replays: spec, batches and tokens per batch. */
export declare const ROUTING: { readonly spec: string; readonly batches: number; readonly tokensPerBatch: number; readonly seed: number }
/** dist/routing.json's content. */
export interface RecordedRouting {
  readonly spec: string
  readonly description: string
  readonly experts: number
  readonly topK: number
  readonly batches: { id: number; tokens: number; scores: number[] }[]
}
/** Writes `outdir`/routing.json from the recorded routing. */
export declare function writeRouting(outdir: string): RecordedRouting
/** Builds the page into `outdir` (default dist/); resolves to the folder. */
export declare function buildPage(outdir?: string): Promise<string>
