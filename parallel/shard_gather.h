#pragma once
// Whole tensors from tensor-parallel shards, for checkpoints (always written unsharded, so they resume at
// any dp x tp) and for tests that compare a sharded run with one process.
#include "core/modules/tensor_parallel.h"
#include "core/tensor/tensor.h"
#include "parallel/communicator.h"

namespace ladder::parallel {

// Every rank of `tp` passes its part (f32, spec.local_shape()) of a tensor cut by `spec` (spec.index ==
// tp.rank(), spec.parts == tp.size()); every rank gets the full tensor (f32, spec.full). Parts may differ
// in size (an uneven vocabulary split): they travel padded to the largest. A replicated spec returns a copy.
core::Tensor gather_shards(const core::Tensor& local, const core::ShardSpec& spec, Communicator& tp,
                           core::MemCategory cat = core::MemCategory::workspace);

}  // namespace ladder::parallel
