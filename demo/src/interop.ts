/**
 * Interop tab: one frame through a model pipeline on ONE GPUDevice, never leaving the GPU until
 * the final read. normgpu turns the bundled sample into an ImageNet tensor (`preprocess`), an
 * ONNX Runtime Web session (`onnxruntime-web/webgpu`, given normgpu's device through
 * `ortWebGpuProvider`) runs a 1×1 convolution and ReLU on that buffer and keeps its output on
 * the GPU, and normgpu wraps that output (`fromOrt`) and applies GroupNorm. The page counts
 * every `mapAsync` (a host round trip) and checks the result against the same pipeline on
 * normgpu's CPU backend with the convolution in plain JS.
 */
import sampleUrl from '../assets/sample.png';
import { encodeModel } from '../../bench/onnx-model';
import { fromOrt, ortWebGpuProvider, preprocess, type Engine } from '../../src/index';
import type { DemoContext } from './context';
import { channelImage, el } from './draw';

const SIZE = 64;
const PREPROCESS = { preset: 'imagenet', resize: SIZE, centerCrop: SIZE } as const;
const FEATURES = 8;
const GROUPS = 4;
/** The model's 1×1 convolution: FEATURES × 3 weights and FEATURES biases, fixed. */
const CONV_W = Float32Array.from({ length: FEATURES * 3 }, (_, i) => Math.sin(i * 1.7 + 0.3) * 0.8);
const CONV_B = Float32Array.from({ length: FEATURES }, (_, i) => ((i % 3) - 1) * 0.2);

const MODEL = encodeModel({
  name: 'conv1x1-relu',
  nodes: [
    { op: 'Conv', inputs: ['x', 'w', 'b'], outputs: ['c'], attributes: { kernel_shape: [1, 1] } },
    { op: 'Relu', inputs: ['c'], outputs: ['y'] },
  ],
  initializers: [
    { name: 'w', dims: [FEATURES, 3, 1, 1], data: CONV_W },
    { name: 'b', dims: [FEATURES], data: CONV_B },
  ],
  inputs: [{ name: 'x', dims: [1, 3, SIZE, SIZE] }],
  outputs: [{ name: 'y', dims: [1, FEATURES, SIZE, SIZE] }],
});

/** What the tab reports (read by the e2e test through `window.demo.results.interop`). */
export interface InteropReport {
  /** A validation error on the shared device during the pipeline (a foreign buffer would raise one), or null. */
  gpuError: string | null;
  /** mapAsync calls between the first op and the final read: 0 means no host round trip. */
  mapAsyncBeforeRead: number;
  /** Max |GPU − CPU| / (1 + |CPU|) over the GroupNorm output. */
  maxError: number;
  shape: number[];
  ms: number;
}

/** Every mapAsync of the page, whoever calls it. */
let mapAsyncCalls = 0;
function countMapAsync(): void {
  const original = GPUBuffer.prototype.mapAsync;
  if ((original as { counted?: boolean }).counted) return;
  const counted = function (this: GPUBuffer, ...args: Parameters<GPUBuffer['mapAsync']>) {
    mapAsyncCalls++;
    return original.apply(this, args);
  };
  GPUBuffer.prototype.mapAsync = Object.assign(counted, { counted: true });
}

async function loadSample(): Promise<ImageBitmap> {
  return createImageBitmap(await (await fetch(sampleUrl)).blob());
}

/** The same pipeline on normgpu's CPU backend, the convolution and ReLU in float32 JS. */
async function reference(cpu: Engine, image: ImageBitmap): Promise<Float32Array> {
  const x = await preprocess(cpu, image, PREPROCESS).read();
  const plane = SIZE * SIZE;
  const y = new Float32Array(FEATURES * plane);
  for (let f = 0; f < FEATURES; f++) {
    for (let p = 0; p < plane; p++) {
      let s = CONV_B[f];
      for (let c = 0; c < 3; c++) s = Math.fround(s + Math.fround(CONV_W[f * 3 + c] * x[c * plane + p]));
      y[f * plane + p] = Math.max(0, s);
    }
  }
  const t = cpu.tensor(y, [1, FEATURES, SIZE, SIZE]);
  return cpu.groupNorm(t, { numGroups: GROUPS }).read();
}

export function mountInterop(section: HTMLElement, ctx: DemoContext): void {
  const { engine, cpu } = ctx;
  section.append(
    el('h2', { text: 'Interop: normgpu → ONNX Runtime Web → normgpu on one GPUDevice' }),
    el('p', {
      class: 'hint',
      text: 'preprocess (normgpu) → Conv 1×1 + ReLU (ONNX Runtime Web, onnxruntime-web/webgpu, on normgpu’s device) → '
        + `GroupNorm(${GROUPS}) (normgpu, wrapping ORT’s output buffer). Nothing is read back until the end.`,
    }),
  );
  if (engine.backend !== 'webgpu') {
    section.append(el('div', { class: 'notice', text: 'This pipeline shares a GPUDevice, so it needs the WebGPU backend; the page runs on the CPU backend.' }));
    return;
  }
  const button = el('button', { class: 'primary', 'data-testid': 'interop-run', text: 'Run the pipeline' });
  const status = el('p', { class: 'status', 'data-testid': 'interop-status' });
  const out = el('div');
  section.append(button, status, out);

  button.addEventListener('click', () => {
    button.disabled = true;
    status.textContent = 'loading ONNX Runtime Web…';
    run()
      .catch((e: unknown) => {
        status.textContent = `failed: ${e instanceof Error ? e.message : String(e)}`;
        ctx.report('interop', { error: status.textContent });
      })
      .finally(() => { button.disabled = false; });
  });

  async function run(): Promise<void> {
    countMapAsync();
    const { ort } = await import('./interop-ort');
    const image = await loadSample();
    const session = await ort.InferenceSession.create(MODEL, {
      executionProviders: [ortWebGpuProvider(engine, ort.env)],
      preferredOutputLocation: 'gpu-buffer',
      extra: { session: { disable_cpu_ep_fallback: '1' } },
    });
    try {
      status.textContent = 'running…';
      const t0 = performance.now();
      const maps = mapAsyncCalls;
      engine.device!.pushErrorScope('validation');
      const x = preprocess(engine, image, PREPROCESS);
      // x.buffer submits normgpu's pending work, so ORT reads the finished tensor.
      const { y } = await session.run({ x: ort.Tensor.fromGpuBuffer(x.buffer, { dataType: 'float32', dims: x.shape }) });
      const h = fromOrt(engine, y);
      const z = engine.groupNorm(h, { numGroups: GROUPS });
      const mapAsyncBeforeRead = mapAsyncCalls - maps;
      const got = await z.read();
      const ms = performance.now() - t0;
      const gpuError = (await engine.device!.popErrorScope())?.message ?? null;
      const want = await reference(cpu, image);
      let maxError = 0;
      for (let i = 0; i < want.length; i++) maxError = Math.max(maxError, Math.abs(got[i] - want[i]) / (1 + Math.abs(want[i])));
      const report: InteropReport = { gpuError, mapAsyncBeforeRead, maxError, shape: [...z.shape], ms };
      for (const t of [z, h, x]) t.dispose();
      show(got, report);
      ctx.report('interop', report);
    } finally {
      await session.release();
      image.close();
    }
  }

  function show(values: Float32Array, r: InteropReport): void {
    status.textContent = `${Math.round(r.ms)} ms for the whole pipeline (a first run includes compiling the shaders) · ${r.mapAsyncBeforeRead} host round trips before the final read · `
      + `max scaled error vs the CPU pipeline ${r.maxError.toExponential(2)}`;
    const plane = SIZE * SIZE;
    const grid = el('div', { class: 'figures' });
    for (let f = 0; f < FEATURES; f++) {
      const picture = channelImage(values, f * plane, SIZE, SIZE, 2.5);
      picture.style.width = `${2 * SIZE}px`;
      grid.append(el('figure', { class: 'pixelated' }, picture, el('figcaption', { text: `feature ${f}` })));
    }
    out.replaceChildren(grid);
  }
}
