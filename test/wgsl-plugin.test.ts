/** The build ships each WGSL stage without comments (scripts/wgsl-plugin.mjs): same tokens, fewer bytes. */
import { readdirSync, readFileSync } from 'node:fs';
import { expect, test } from 'vitest';
import { minifyWgsl } from '../scripts/wgsl-plugin.mjs';
import applyNorm from '../shaders/apply_norm.wgsl?raw';

const dir = new URL('../shaders/', import.meta.url);
const tokens = (s: string) => s.replace(/\/\/.*$/gm, '').split(/\s+/).filter(Boolean);

test('every stage keeps its tokens and loses its comments', () => {
  let before = 0;
  let after = 0;
  for (const name of readdirSync(dir).filter((f) => f.endsWith('.wgsl'))) {
    const source = readFileSync(new URL(name, dir), 'utf8');
    const min = minifyWgsl(source);
    expect(tokens(min), name).toEqual(tokens(source));
    expect(min, name).not.toMatch(/\/\/|^\s|\n\n/m);
    before += source.length;
    after += min.length;
  }
  console.log(`[wgsl] stages: ${before} bytes in the files, ${after} shipped`);
  expect(after).toBeLessThan(before * 0.7);
});

test('the ?raw imports the library and the tests compile are the minified text', () => {
  expect(applyNorm).toBe(minifyWgsl(readFileSync(new URL('apply_norm.wgsl', dir), 'utf8')));
});
