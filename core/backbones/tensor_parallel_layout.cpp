#include "core/backbones/tensor_parallel_layout.h"

#include <stdexcept>
#include <string>

namespace ladder::core {

TensorParallelLayout::TensorParallelLayout(const TransformerConfig& cfg, TensorParallelGroup* tp)
    : tp_(tp && tp->size() > 1 ? tp : nullptr), heads_(cfg.heads) {
  if (!tp_) return;
  size_ = tp_->size();
  rank_ = tp_->rank();
  if (cfg.heads % size_)
    throw std::invalid_argument("parallel.tp = " + std::to_string(size_) + " does not divide the model's " +
                                std::to_string(cfg.heads) + " attention heads (tensor parallelism splits whole heads)");
  if (cfg.intermediate % size_)
    throw std::invalid_argument("parallel.tp = " + std::to_string(size_) + " does not divide the model's FFN width " +
                                std::to_string(cfg.intermediate));
}

ShardSpec TensorParallelLayout::spec(const Shape& full, int dim, int blocks) const {
  ShardSpec s;
  s.full = full;
  if (size_ > 1) {
    s.dim = dim;
    s.index = rank_;
    s.parts = size_;
    s.blocks = blocks;
  }
  return s;
}

void TensorParallelLayout::mark(Linear& l, Linear::Parallel kind) const {
  if (size_ <= 1) return;
  l.parallel = kind;
  l.tp = tp_;
}

void TensorParallelLayout::place_heads(SelfAttention& attn) const {
  attn.heads_total = heads_;
  attn.NH = heads_ / size_;
  attn.head0 = rank_ * attn.NH;
  attn.D = attn.C / size_;
  attn.tp = tp_;
}

}  // namespace ladder::core
