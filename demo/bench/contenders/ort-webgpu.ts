/**
 * ONNX Runtime Web's `onnxruntime-web/webgpu` import: the native WebGPU EP, ORT's C++ kernels
 * compiled to wasm (asyncify build).
 */
import * as ort from 'onnxruntime-web/webgpu';
import wasmUrl from 'onnxruntime-web/ort-wasm-simd-threaded.asyncify.wasm?url';
import mjsUrl from 'onnxruntime-web/ort-wasm-simd-threaded.asyncify.mjs?url';
import { ortContenders } from './ort';

export const [ortNative, ortNativeNchw] = ortContenders({
  ort, id: 'ort-webgpu', label: 'ORT native', wasmUrl, mjsUrl,
  entry: "import 'onnxruntime-web/webgpu' (C++ WebGPU EP compiled to wasm)",
});
