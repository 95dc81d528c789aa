/** Type of the demo script (for its test). */
export declare function runDemo(options?: { batches?: number; tokens?: number; log?: (line: string) => void }): {
  policy: string
  pairs: number
  dropped: number
  droppedFraction: number
  meanEntropyDropped: number
  meanEntropyKept: number
}
