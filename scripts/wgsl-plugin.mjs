/**
 * Vite plugin for the WGSL stages: a `.wgsl?raw` import becomes the shader without its
 * comments, indentation and blank lines. The files keep their prose headers for readers; the
 * bundle (and every test, which compiles what ships) gets about half the bytes.
 */
import { readFile } from 'node:fs/promises';

/**
 * WGSL has no string literals, so `//` always starts a comment.
 * @param {string} source
 * @returns {string}
 */
export function minifyWgsl(source) {
  return source
    .replace(/\/\*[\s\S]*?\*\//g, '')
    .split('\n')
    .map((line) => line.replace(/\/\/.*$/, '').trim().replace(/\s+/g, ' '))
    .filter((line) => line !== '')
    .join('\n');
}

/** @returns {import('vite').Plugin} */
export function wgsl() {
  return {
    name: 'normgpu-wgsl',
    enforce: 'pre',
    async load(id) {
      const match = /^(.*\.wgsl)\?raw$/.exec(id);
      if (!match) return null;
      this.addWatchFile(match[1]);
      return `export default ${JSON.stringify(minifyWgsl(await readFile(match[1], 'utf8')))};`;
    },
  };
}
