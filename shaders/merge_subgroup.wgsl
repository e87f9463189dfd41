enable subgroups;

// Workgroup-wide merge of per-invocation Moments using subgroup operations.
//
// Step 1, inside each subgroup, uses the exact two-step form of Chan's merge that needs only
// sums: the subgroup mean is sum(n*mean)/sum(n), then M2 = sum(m2 + n*(mean_i - mean)^2).
// This works for any subgroup size (4 on SwiftShader, 32 or 64 on GPUs) and never assumes one.
// Step 2: one elected invocation per subgroup claims a slot with an atomic counter (the spec
// does not promise which local indices form a subgroup), and invocation 0 Chan-merges the
// slots after a barrier. The total is valid in invocation 0 only.

var<workgroup> mergeSlots: array<Moments, WG>;
var<workgroup> mergeSlotCount: atomic<u32>;

fn subgroupMoments(a: Moments) -> Moments {
  let n = subgroupAdd(a.n);
  let mean = select(0.0, subgroupAdd(a.n * a.mean) / n, n > 0.0);
  let d = a.mean - mean;
  let m2 = subgroupAdd(a.m2 + a.n * d * d);
  return Moments(n, mean, m2);
}

fn workgroupMerge(a: Moments, lid: u32) -> Moments {
  let s = subgroupMoments(a);
  if (subgroupElect()) {
    mergeSlots[atomicAdd(&mergeSlotCount, 1u)] = s;
  }
  workgroupBarrier();
  var total = Moments(0.0, 0.0, 0.0);
  if (lid == 0u) {
    let count = atomicLoad(&mergeSlotCount);
    for (var i = 0u; i < count; i++) {
      total = chanMerge(total, mergeSlots[i]);
    }
  }
  return total;
}
