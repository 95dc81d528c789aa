/** A workspace package: its folder relative to the root and its parsed package.json. */
export interface WorkspacePackage {
  readonly dir: string
  readonly pkg: { readonly name: string; readonly version: string; readonly private?: boolean; readonly 'moe-route'?: unknown; readonly [k: string]: unknown }
}
export const ROOT: string
export function workspacePackages(root?: string): WorkspacePackage[]
export function publishedPackages(root?: string): WorkspacePackage[]
export function firstPartyPluginPackages(root?: string): WorkspacePackage[]
export function manifestPackages(root?: string): WorkspacePackage[]
