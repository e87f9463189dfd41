import type { Workload, WorkloadData } from '../workloads';

/** One workload made ready on one contender: inputs uploaded, graph/session built. */
export interface Prepared {
  /** Enqueue one call (GPU contenders return once the work is submitted). */
  run(): unknown;
  /** Submit work the library still holds in an open command encoder (TF.js batches). */
  flush?(): void;
  /** Copy the output of the latest run to the host. */
  read(): Promise<Float32Array>;
  /** What ran, when it is not the library's own op (e.g. an op composition). */
  note?: string;
  release(): void;
}

export interface Contender {
  id: string;
  label: string;
  /** A GPU contender is timed on its device with timestamps; a CPU one by wall clock. */
  device: GPUDevice | null;
  /** Library versions, placement proof and the like, for the report. */
  info: Record<string, string>;
  /** null when the contender can run the workload, else why not. */
  unsupported?(w: Workload): string | null;
  /** Why the workload is not run although it could be (another column already covers it), else null. */
  skip?(w: Workload): string | null;
  prepare(w: Workload, data: WorkloadData): Promise<Prepared>;
  dispose(): void;
}

export interface ContenderFactory {
  id: string;
  label: string;
  create(): Promise<Contender>;
}
