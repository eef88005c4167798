#pragma once
// Ladder Side-Tuning's side network for a BERT or GPT-2 backbone (METHODS.md §1.1), beside a frozen
// backbone that runs without gradients. With c = d/r (heads unchanged) and kept layers K ⊆ {0..L-1}:
//   s = first_down(h_0)                                  h_i = output of backbone layer i (h_0: embeddings)
//   for i in K:  g_i = sigmoid(alpha_i / T)
//                s = g_i * s + (1 - g_i) * down_i(h_{i+1})     (the ladder from backbone layer i)
//                s = side_block_i(s)                           (a post-LN BERT layer of width c, FFN F/r)
//   features = up(s[first token])  (BERT: [CLS]; GPT-2 uses the last real token)  -> the task head
// alpha_i starts at 0 (g = 1/2), T = 0.1; there is one alpha per backbone layer, dropped ones included, as in
// LST's code. Side blocks start from the structurally pruned backbone (magnitude or Fisher importance,
// adapters/lst/side_init.h) or at random (N(0, 0.02), LayerNorm 1/0); ladders, first_down and up use
// PyTorch's default Linear init. Parameters are registered trainable in the backbone's registry under
// "side.*", so the optimizer, checkpoints and data parallelism treat them like any other.
// Backward never enters the backbone: it needs only the taps h_i (inputs of the ladders) and the side
// network's own activations.
#include <memory>
#include <string>
#include <vector>

#include "adapters/lst/side_init.h"
#include "core/backbones/backbone.h"
#include "core/modules/backward_workspace.h"
#include "core/modules/bert_layer.h"

namespace ladder::adapters {

// One backbone output the side network reads: [B*T, d] rows of f32, f16 or bf16. LST keeps its taps at the
// activation store's precision (cache.dtype, f16 by default) online too, so an online run and a run from the
// store compute the same thing, and the taps, the largest thing the side network keeps, take half the memory.
struct TapRows {
  const void* data = nullptr;
  core::DType dtype = core::DType::f32;
};

// What the side network's backward recomputes instead of keeping (see LstSideNetwork::set_recompute).
enum class LstRecompute { blocks, softmax, none };
// "blocks" | "softmax" | "none"; anything else is an error naming method.lst_recompute.
LstRecompute parse_lst_recompute(const std::string& s);

struct LstOptions {
  int reduction = 8;            // side width d / r
  std::vector<int> layers;      // backbone layers that get a side block and a ladder (empty = all)
  float gate_T = 0.1f;
  std::string init = "magnitude";  // magnitude | fisher | random (fisher needs `importance`)
  int fisher_samples = 1024;       // init = fisher: training examples in the Fisher sum (LST's samples_for_fisher)
  // blocks | softmax | none, or auto: blocks online, softmax when training from an activation store
  // (apps/train decides; the side network alone reads auto as blocks). See set_recompute.
  std::string recompute = "auto";
  uint64_t seed = 42;
};

class LstSideNetwork {
 public:
  // importance: Fisher estimates by backbone parameter name for init = fisher (see side_init.h).
  LstSideNetwork(core::Backbone& backbone, const LstOptions& opt, const ImportanceMap& importance = {});

  // The backbone layer outputs the side network reads: indices into hidden_state(0..L).
  std::vector<int> taps() const;
  // taps[j] = hidden state taps()[j] of the backbone, each [B*T, d]. Returns the features [B, d] for the
  // head: up(s) at the first token of each row (BERT) or at `feature_rows[b]` (GPT-2: last real token).
  const core::Tensor& forward(const std::vector<TapRows>& taps, const core::TokenBatch& b,
                              const core::StepOptions& opt, const std::vector<int>& feature_rows = {});
  // d_features [B, d]; accumulates every side parameter's gradient. Needs a forward with save_for_backward
  // and the same taps still valid.
  void backward(const float* d_features);

  int width() const { return c_; }
  const std::vector<int>& kept_layers() const { return kept_; }
  float gate(int layer) const;  // sigmoid(alpha_layer / T)
  // What backward recomputes instead of keeping (LstOptions::recompute). Gradients are bit-identical in
  // every mode (same kernels, inputs and dropout masks).
  //   blocks:  forward keeps only each block's input (which the ladder mixing keeps anyway); backward runs
  //            each block's forward again, one block at a time, into one shared set of buffers, and the
  //            attention backward recomputes its softmax one (b, h) at a time. Least memory, one more side
  //            forward per step (docs/LST.md has its cost). The default online, where the
  //            backbone's forward dominates the step.
  //   softmax: the blocks keep their activations except the [B, heads, T, T] attention probabilities, which
  //            the attention backward recomputes (one more Q K^T and softmax, half the memory of
  //            none). The default from an activation store.
  //   none:    everything is kept: the fastest step and the most memory.
  void set_recompute(LstRecompute mode);

 private:
  core::Backbone& backbone_;
  LstOptions opt_;
  int C_ = 0, c_ = 0, L_ = 0;
  std::vector<int> kept_;
  core::Linear first_down_, up_;
  std::vector<core::Linear> downs_;      // per kept layer
  std::vector<core::BertLayer> blocks_;  // per kept layer
  core::Parameter* alpha_ = nullptr;     // [L]
  // forward state
  std::vector<TapRows> taps_;
  core::Tensor tap_chunk_;  // 16-bit taps: kTapChunkRows rows converted to f32 at a time for a ladder's GEMMs
  core::TokenBatch batch_{};
  core::StepOptions sopt_;
  std::vector<int> feature_rows_;
  bool first_token_ = true;
  std::vector<core::Tensor> prev_, mixed_, ladder_;  // per kept layer: block input before mixing, after, down(h)
  core::Tensor s0_, last_, last_rows_, features_;
  std::vector<core::BertLayer::Buffers> bufs_;
  core::BertLayer::Buffers scratch_;
  core::BertLayer::Buffers rec_;  // with recompute: what the block being differentiated keeps
  core::BackwardWorkspace ws_;
  bool recompute_ = true;  // LstRecompute::blocks
  core::Tensor d_a_, d_b_, d_rows_, d_tmp_;
  // A ladder's down-projection of a tap: forward into lad [N, c], or (lad null) its weight gradients from dl.
  void ladder_pass(core::Linear& down, const TapRows& tap, int N, float* lad, const float* dl);
};

}  // namespace ladder::adapters
