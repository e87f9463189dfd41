/**
 * The environment the Vulkan loader reads when Dawn (npm `webgpu`) makes its instance in Node on
 * Linux. Node builtins come through `process.getBuiltinModule`, so a browser bundle of normgpu
 * sees no `node:` import.
 */

const SWIFTSHADER_ICD = '/usr/lib/chromium/vk_swiftshader_icd.json';

/** Device nodes through which a hardware Vulkan driver reaches a GPU: DRM (Intel, AMD, Nouveau, Asahi...), NVIDIA's own, WSL2's. */
const GPU_DEVICE_NODES = ['/dev/dri', '/dev/nvidiactl', '/dev/dxg'];

/**
 * Set, before Dawn loads (only what the user left unset):
 * - `XDG_RUNTIME_DIR`, when unset or relative (as on CI runners and in containers): the Wayland
 *   client inside the Vulkan drivers then prints "XDG_RUNTIME_DIR is invalid" per driver. It
 *   gets a private (0700) directory of this user under the OS temp dir.
 * - The Vulkan drivers, when none is configured and Chromium's SwiftShader (a CPU Vulkan) is
 *   installed. On a machine with no GPU device node no hardware driver can work, and the
 *   software drivers besides SwiftShader are Mesa's lavapipe/llvmpipe, which Dawn rejects with a
 *   warning on stderr: SwiftShader becomes the only driver (`VK_ICD_FILENAMES`). Where a GPU
 *   node exists SwiftShader is only added (`VK_ADD_DRIVER_FILES`), so the GPU's own driver is
 *   still found and preferred: never hide a real GPU to silence a warning.
 */
export function prepareVulkanEnv(): void {
  if (process.platform !== 'linux') return;
  const fs = process.getBuiltinModule('node:fs');
  const path = process.getBuiltinModule('node:path');
  const env = process.env;
  if (!env.XDG_RUNTIME_DIR || !path.isAbsolute(env.XDG_RUNTIME_DIR)) {
    const dir = privateRuntimeDir();
    if (dir) env.XDG_RUNTIME_DIR = dir;
  }
  if (env.VK_ICD_FILENAMES || env.VK_DRIVER_FILES || env.VK_ADD_DRIVER_FILES || !fs.existsSync(SWIFTSHADER_ICD)) return;
  if (GPU_DEVICE_NODES.some((p) => fs.existsSync(p))) env.VK_ADD_DRIVER_FILES = SWIFTSHADER_ICD;
  else env.VK_ICD_FILENAMES = SWIFTSHADER_ICD;
}

/**
 * `<tmpdir>/normgpu-runtime-<uid>`, made 0700; a fresh one if that path is not ours; undefined
 * where the temp dir is not writable (the lines on stderr are noise, not worth an error).
 */
function privateRuntimeDir(): string | undefined {
  const fs = process.getBuiltinModule('node:fs');
  const { tmpdir } = process.getBuiltinModule('node:os');
  const { join } = process.getBuiltinModule('node:path');
  const uid = process.getuid?.() ?? 0;
  const dir = join(tmpdir(), `normgpu-runtime-${uid}`);
  try {
    fs.mkdirSync(dir, { mode: 0o700 });
  } catch {
    // Already there (or the temp dir is read-only): checked below.
  }
  const st = fs.lstatSync(dir, { throwIfNoEntry: false });
  if (st?.isDirectory() && st.uid === uid && (st.mode & 0o077) === 0) return dir;
  try {
    return fs.mkdtempSync(join(tmpdir(), 'normgpu-runtime-'));
  } catch {
    return undefined;
  }
}
