/**
 * The canonical view every normalization is planned on: the input as a 4-D array
 * [O, P, Q, S] of kept, reduced, kept and reduced extents. A statistics group is one (o, q)
 * pair and owns the P*S elements x[o, p, q, s]; flat index ((o*P + p)*Q + q)*S + s.
 *
 * | op (layout)                  | O     | P      | Q   | S          |
 * |------------------------------|-------|--------|-----|------------|
 * | BatchNorm (channels-first)   | 1     | N      | C   | spatial    |
 * | BatchNorm (channels-last)    | 1     | N*sp   | C   | 1          |
 * | InstanceNorm (first / last)  | N     | 1 / sp | C   | sp / 1     |
 * | GroupNorm (first / last)     | N     | 1 / sp | G   | C/G*sp / C/G |
 * | LayerNorm, RMSNorm           | rows  | 1      | 1   | prod(normalized_shape) |
 */
export interface GroupView {
  readonly o: number;
  readonly p: number;
  readonly q: number;
  readonly s: number;
}

export const groupCount = (v: GroupView): number => v.o * v.q;
export const groupSize = (v: GroupView): number => v.p * v.s;
export const elementCount = (v: GroupView): number => v.o * v.p * v.q * v.s;
