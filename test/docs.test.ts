/**
 * docs/operations.md points at files that exist, and the README points at it: a renamed example
 * or unit fails here instead of leaving the guide pointing at nothing.
 */
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { ROOT } from './helpers/server.js';

const guide = await readFile(path.join(ROOT, 'docs/operations.md'), 'utf8');

describe('docs/operations.md', () => {
  it('names only files of the repository that exist', () => {
    const named = [...new Set([...guide.matchAll(/`((?:examples|deploy|docs)\/[\w./-]+)`/g)].map((m) => m[1]!))];
    expect(named.length).toBeGreaterThan(5);
    expect(named.filter((f) => !existsSync(path.join(ROOT, f)))).toEqual([]);
  });

  it('links every section of its contents', () => {
    const anchors = [...guide.matchAll(/\]\(#([\w-]+)\)/g)].map((m) => m[1]!);
    const headings = [...guide.matchAll(/^## (.+)$/gm)].map((m) => m[1]!.toLowerCase().replace(/[^\w\s-]/g, '').replace(/\s+/g, '-'));
    expect(anchors.filter((a) => !headings.includes(a))).toEqual([]);
    expect(headings.filter((h) => h !== 'contents' && !anchors.includes(h))).toEqual([]);
  });

  it('writes every duration of a setting with a unit', () => {
    const unitless = [...guide.matchAll(/\b(interval|timeout|staleAfter|persistence|flowTimeout|drainTimeout): (\d+)(?![\w.])/g)].map((m) => m[0]);
    expect(unitless).toEqual([]);
  });

  it('is linked from the README', async () => {
    expect(await readFile(path.join(ROOT, 'README.md'), 'utf8')).toContain('(docs/operations.md)');
  });
});
