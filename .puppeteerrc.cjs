/**
 * Puppeteer's install step would download its own Chrome; the tests drive the system Chromium
 * (test/browser/harness.ts, `CHROME_PATH` or /usr/bin/chromium), and `npm ci` must work offline.
 */
module.exports = { skipDownload: true };
