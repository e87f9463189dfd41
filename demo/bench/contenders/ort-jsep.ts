/**
 * ONNX Runtime Web's default import, `onnxruntime-web`: the JSEP build, whose WebGPU kernels
 * are TypeScript (what most users get).
 */
import * as ort from 'onnxruntime-web';
import wasmUrl from 'onnxruntime-web/ort-wasm-simd-threaded.jsep.wasm?url';
import mjsUrl from 'onnxruntime-web/ort-wasm-simd-threaded.jsep.mjs?url';
import { ortContenders } from './ort';

export const [ortJsep, ortJsepNchw] = ortContenders({
  ort, id: 'ort-jsep', label: 'ORT JSEP', wasmUrl, mjsUrl,
  entry: "import 'onnxruntime-web' (JSEP: TypeScript WebGPU kernels)",
});
