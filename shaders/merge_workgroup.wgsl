// Workgroup-wide merge of per-invocation Moments through workgroup memory, for adapters
// without the `subgroups` feature: a binary tree of Chan merges, log2(WG) barriers.
// WG must be a power of two. The total is valid in invocation 0 only.

var<workgroup> mergeTree: array<Moments, WG>;

fn workgroupMerge(a: Moments, lid: u32) -> Moments {
  mergeTree[lid] = a;
  workgroupBarrier();
  for (var stride = WG / 2u; stride > 0u; stride /= 2u) {
    if (lid < stride) {
      mergeTree[lid] = chanMerge(mergeTree[lid], mergeTree[lid + stride]);
    }
    workgroupBarrier();
  }
  return mergeTree[0];
}
