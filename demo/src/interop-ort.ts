/**
 * ONNX Runtime Web's native WebGPU build for the Interop tab, loaded on first use (its wasm is
 * about 27 MB). It takes a device per session, so it shares normgpu's device even when the
 * Benchmark tab has started ORT's other build on a device of its own.
 */
import * as ort from 'onnxruntime-web/webgpu';
import wasmUrl from 'onnxruntime-web/ort-wasm-simd-threaded.asyncify.wasm?url';
import mjsUrl from 'onnxruntime-web/ort-wasm-simd-threaded.asyncify.mjs?url';

ort.env.wasm.wasmPaths = { wasm: new URL(wasmUrl, location.href).href, mjs: new URL(mjsUrl, location.href).href };
// Not cross-origin isolated: no threads.
ort.env.wasm.numThreads = 1;
ort.env.logLevel = 'error';

export { ort };
