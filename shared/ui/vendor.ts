/**
 * The browser modules the status pages of gslb-dns and slb-agent import, served from the
 * installed npm packages (no bundler, no build step: `npm ci` is the only set-up). Each page
 * declares them in an import map, so its own scripts say `import { h } from 'preact'`.
 */
import { createRequire } from 'node:module';
import path from 'node:path';

const require = createRequire(import.meta.url);

/** A module served to the browser: its bare specifier, the file name under the vendor route, the file on disk. */
export interface VendorModule {
  readonly specifier: string;
  readonly file: string;
  readonly path: string;
}

/** preact, its hooks and htm, as ES modules. */
export function vendorModules(): readonly VendorModule[] {
  // preact's exports give its ES modules to require() too; htm's give CommonJS, its ES module sits beside it
  return [
    { specifier: 'preact', file: 'preact.mjs', path: require.resolve('preact') },
    { specifier: 'preact/hooks', file: 'hooks.mjs', path: require.resolve('preact/hooks') },
    { specifier: 'htm', file: 'htm.mjs', path: path.join(path.dirname(require.resolve('htm')), 'htm.mjs') },
  ];
}

/** The `<script type="importmap">` body mapping each specifier to `${prefix}/${file}`. */
export function importMap(prefix: string): string {
  const imports: Record<string, string> = {};
  for (const m of vendorModules()) imports[m.specifier] = `${prefix}/${m.file}`;
  return JSON.stringify({ imports });
}
