#pragma once
// The only ways a tensor-parallel module communicates: Megatron-Core's region functions (mappings.py),
// each a forward with its conjugate backward. Every function is a no-op without a group or with a group
// of one rank, so callers need no guard of their own.
//
//   copy_to_region      forward: identity (each rank reads the whole input)
//                       backward: copy_to_region_backward, the sum of the ranks' partial input gradients
//   reduce_from_region  forward: reduce_from_region, the sum of the ranks' partial outputs
//                       backward: identity (each rank's output gradient is the whole one)
//   gather_from_region  forward: gather_from_region, the whole tensor from every rank's shard
//                       backward: gather_from_region_backward, this rank's shard of the whole gradient
#include <cstddef>

#include "core/modules/tensor_parallel.h"

namespace ladder::core {

// Whether `tp` splits anything (a group of more than one rank).
inline bool tp_active(const TensorParallelGroup* tp) { return tp && tp->size() > 1; }

// Backward of copy-to-region, in place: a column-parallel layer's input gradient (or a replicated
// parameter's gradient) that each rank computed from its part, summed over the group.
void copy_to_region_backward(TensorParallelGroup* tp, float* grad, size_t count);

// Forward of reduce-from-region, in place: a row-parallel layer's partial output (or a vocabulary-parallel
// embedding's rows, zero where another rank holds the token), summed over the group. Also the sum of a
// scalar each rank computed from its shards (a gradient norm's sharded part).
void reduce_from_region(TensorParallelGroup* tp, float* data, size_t count);

// Forward of gather-from-region: the whole tensor (f32, spec.full) of which `local` is this rank's part;
// collective over `tp`; replicated or no group: a copy. For rare whole reads (initialisations, checkpoints).
Tensor gather_from_region(const Tensor& local, const ShardSpec& spec, TensorParallelGroup* tp, MemCategory cat);
// Backward of gather-from-region: this rank's part of a whole gradient (no communication).
Tensor gather_from_region_backward(const Tensor& whole, const ShardSpec& spec, MemCategory cat);

}  // namespace ladder::core
