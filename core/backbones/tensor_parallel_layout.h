#pragma once
// How a backbone is cut over a tensor-parallel group (Megatron-LM's layout), shared by BERT and GPT-2:
// attention heads and FFN columns are split evenly (their counts must divide by tp: an error names both),
// the vocabulary by rows (any size; see ShardSpec), everything else replicated.
#include "core/backbones/transformer_config.h"
#include "core/modules/linear.h"
#include "core/modules/self_attention.h"
#include "core/modules/tensor_parallel.h"

namespace ladder::core {

class TensorParallelLayout {
 public:
  // Checks that cfg's heads and FFN width divide by the group's size. tp may be null (one rank).
  TensorParallelLayout(const TransformerConfig& cfg, TensorParallelGroup* tp);
  int size() const { return size_; }
  int rank() const { return rank_; }
  // This rank's part of a tensor of shape `full` cut along `dim` (replicated with one rank).
  ShardSpec spec(const Shape& full, int dim, int blocks = 1) const;
  // This rank's share of an evenly split extent.
  int local(int extent) const { return extent / size_; }
  // Marks a Linear column- or row-parallel over the group (nothing with one rank).
  void mark(Linear& l, Linear::Parallel kind) const;
  // Gives attention this rank's heads; attn.C must be set.
  void place_heads(SelfAttention& attn) const;

 private:
  TensorParallelGroup* tp_ = nullptr;
  int size_ = 1, rank_ = 0, heads_ = 0;
};

}  // namespace ladder::core
