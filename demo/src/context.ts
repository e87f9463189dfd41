import type { Engine } from '../../src/index';

/** What the tabs share: the engine the page runs on, the CPU reference engine, a report sink and test hooks. */
export interface DemoContext {
  /** WebGPU when the browser has it, else the CPU backend (the page says so). */
  engine: Engine;
  /** normgpu's float64 CPU backend: the reference the GPU results are compared with. */
  cpu: Engine;
  /** Publish a tab's latest result on `window.demo` (read by the e2e test). */
  report(key: string, value: unknown): void;
  /** Publish a function on `window.demo.hooks` for the e2e test to read state too big for a report. */
  expose(key: string, read: () => unknown): void;
}
