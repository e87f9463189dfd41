/**
 * Vitest setup file: lets Dawn (npm `webgpu`) find an adapter on GPU-less machines. It runs
 * before each test file, ahead of any engine; the Vulkan loader reads these at instance creation.
 * Values already set (e.g. a real GPU's ICD) are left alone.
 */
import { existsSync } from 'node:fs';
import { tmpdir } from 'node:os';

const SWIFTSHADER_ICD = '/usr/lib/chromium/vk_swiftshader_icd.json';

// Chromium's SwiftShader; Debian's Mesa lavapipe lacks a feature Dawn requires.
if (!process.env.VK_ICD_FILENAMES && existsSync(SWIFTSHADER_ICD)) {
  process.env.VK_ICD_FILENAMES = SWIFTSHADER_ICD;
}
// Without it the Vulkan stack prints "XDG_RUNTIME_DIR is invalid or not set" into the test log.
process.env.XDG_RUNTIME_DIR ||= tmpdir();
