#pragma once
// Tensor parallelism as core/ sees it: the group a sharded layer reduces over, and how a parameter is cut
// into shards. core/ has no MPI or NCCL; parallel/ implements TensorParallelGroup over a Communicator.
//
// Megatron-style layers (Shoeybi et al. 2019): a column-parallel Linear holds rows [out/tp] of W (its
// output features, e.g. a slice of the attention heads), a row-parallel Linear holds columns [in/tp] and
// its output is a partial sum that one all-reduce completes. The conjugate: a column-parallel layer's
// input gradient is partial and is all-reduced by the module that owns the layer.
#include <cstddef>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "core/tensor/tensor.h"

namespace ladder::core {

class TensorParallelGroup {
 public:
  virtual ~TensorParallelGroup() = default;
  virtual int rank() const = 0;
  virtual int size() const = 0;
  // In-place sum over the group's ranks (every rank calls it, same count, same order).
  virtual void all_reduce_sum(float* data, size_t count) = 0;
};

// How a tensor of shape `full` is split over `parts` ranks along dimension `dim` (dim < 0: replicated).
// With blocks > 1 the dimension is `blocks` equal blocks split alike (GPT-2's fused q|k|v columns: each
// rank holds its heads' columns of q, of k and of v). Part i holds [extent*i/parts, extent*(i+1)/parts)
// of each block, so parts need not divide the extent evenly (a vocabulary of 30522 rows over 4 ranks).
struct ShardSpec {
  int dim = -1;
  int index = 0, parts = 1;
  int blocks = 1;
  Shape full;
  bool sharded() const { return dim >= 0 && parts > 1; }
  // [begin, end) of this part within one block of dimension `dim`.
  std::pair<int64_t, int64_t> range() const { return range_of(index); }
  std::pair<int64_t, int64_t> range_of(int part) const;
  // The local shape of part `part`.
  Shape local_shape_of(int part) const;
  Shape local_shape() const { return local_shape_of(index); }
  std::string describe() const;  // "dim 0 part 1/2 of [30522, 384]"
};

// The even split helper: [extent*i/parts, extent*(i+1)/parts).
std::pair<int64_t, int64_t> split_range(int64_t extent, int i, int parts);

// local (f32, local_shape_of(part)) <- the part's elements of full (f32, spec.full).
void extract_shard(float* local, const float* full, const ShardSpec& spec, int part);
// full <- local for part `part` (the inverse of extract_shard).
void place_shard(float* full, const float* local, const ShardSpec& spec, int part);
// This rank's part (spec.index) of a whole tensor (shape spec.full, any float dtype) as a new f32 tensor;
// a replicated spec copies. Throws naming both shapes when `full` is not spec.full.
Tensor shard_of(const Tensor& full, const ShardSpec& spec, MemCategory cat);
// The whole tensor of which `local` is this rank's part (f32, spec.full), via one all-reduce of a zeroed
// whole with each part in place: collective over `tp`. Replicated (or tp null): a copy of local.
// Meant for rare reads of whole weights (initialisations), not for a step's hot path.
Tensor gather_whole(const Tensor& local, const ShardSpec& spec, TensorParallelGroup* tp, MemCategory cat);

}  // namespace ladder::core
