/**
 * Internal: float64 column statistics of a tensor viewed as [rows, width] on either backend,
 * shared by dataset statistics and the feature scalers (Backend.columnMoments), and the size
 * checks that keep them within one buffer binding.
 */
import type { Backend, ColumnMoments } from '../backend';
import { check } from '../errors';
import { COLUMN_KERNELS } from '../plan/column-stats';
import type { Tensor } from './tensor';
import { fitsBinding, rowsPerBinding } from './validate';

/**
 * GPU partials per column, in bytes, at most: 16 (n, mean, M2, shift) + 8 (min, max) for the
 * columns and as much again for the groups, each bound and read back whole.
 */
const PARTIAL_BYTES_PER_COLUMN = 48;

/**
 * TENSOR_TOO_LARGE unless `width` columns' partial statistics fit one buffer binding of
 * `backend`: then any tensor of that width (which fits one binding itself) can be reduced.
 */
export function checkColumnWidth(backend: Backend, width: number, what: string): void {
  check(
    fitsBinding(backend, width * PARTIAL_BYTES_PER_COLUMN), 'TENSOR_TOO_LARGE',
    `${what} has ${width} columns, whose statistics need ${width * PARTIAL_BYTES_PER_COLUMN} bytes,`
      + ` over the ${backend.maxBindingBytes}-byte limit of one buffer binding on this device`,
  );
}

/**
 * Rows of a [rows, width] float32 matrix one `columnMoments` call takes on `backend` (a width
 * passed by `checkColumnWidth`): as many as one buffer binding holds. The stage-1 partials then
 * fit too: one per column and chunk, a chunk covering at least 32 rows of a column
 * (chooseReduce), so at most 24 bytes per 128 of data beyond the first chunk.
 */
export function columnRowsPerCall(backend: Backend, width: number): number {
  return rowsPerBinding(backend, width * 4);
}

/**
 * Per column (when `wantColumns`) and per group of `groups` = [A, B, C] (merged over B);
 * `skipNaN` leaves NaN values out of each column's statistics (the scalers, as scikit-learn).
 */
export async function columnMoments(
  backend: Backend, x: Tensor, rows: number, width: number, wantColumns: boolean, groups?: readonly [number, number, number],
  skipNaN = false,
): Promise<ColumnMoments> {
  return backend.columnMoments(x.storage, { rows, width, wantColumns, groups, skipNaN, kernels: COLUMN_KERNELS });
}
