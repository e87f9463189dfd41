/** How the `normgpu` command's errors read: usage errors apart (exit 2), every message one line. */

/** A malformed command line: exit status 2. */
export class UsageError extends Error {}

/** An error's message as one line; its class name when it has no message (some GPU errors). */
export function oneLine(e: unknown): string {
  const message = e instanceof Error ? e.message : String(e);
  const text = message.split('\n').map((l) => l.trim()).filter(Boolean).join(' ');
  return text || (e instanceof Error ? `${e.name} (no message)` : 'unknown error');
}
