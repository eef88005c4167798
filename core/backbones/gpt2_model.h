#pragma once
// GPT-2 decoder (pre-LN) as Hugging Face's GPT2Model, plus the tied LM head of GPT2LMHeadModel:
// token + position embeddings, dropout, `layers` Gpt2Blocks, ln_f; logits = ln_f(h) wte^T.
// hidden_state(i) follows Hugging Face's output_hidden_states: i < layers is the input of block i,
// hidden_state(layers) is the output of ln_f.
#include "core/backbones/backbone.h"
#include "core/io/safetensors.h"
#include "core/modules/gpt2_block.h"
#include "core/modules/token_embedding.h"

namespace ladder::core {

class Gpt2Model : public Backbone {
 public:
  // tp: shard the blocks Megatron-style and wte by vocabulary rows over this group (null or size 1: none);
  // the tied LM head (lm_logits) then refuses to run.
  // values = deferred: the weights are registered but not held (see WeightValues); forward then throws.
  Gpt2Model(const TransformerConfig& cfg, const SafetensorsCheckpoint& ckpt, TensorParallelGroup* tp = nullptr,
            WeightValues values = WeightValues::mapped);

  const TransformerConfig& config() const override { return cfg_; }
  ParameterRegistry& params() override { return reg_; }
  void forward(const TokenBatch& batch, const StepOptions& opt) override;
  Tensor hidden_state(int i) const override;
  void backward(const float* d_last, const std::vector<const float*>& d_hidden = {}) override;
  double forward_flops(int B, int T) const override;
  std::vector<std::pair<std::string, Linear*>> linear_modules() override;
  std::string name() const override { return "gpt2"; }
  ClassifierLayout classifier_layout() const override {
    return {"transformer.", "score", "GPT2ForSequenceClassification", /*from_pooler=*/false, /*bias=*/false, /*dropout=*/false};
  }
  TensorParallelGroup* tensor_parallel() const override { return tp_; }
  std::string layer_prefix() const override { return "h."; }
  void set_prompt_embeddings(Parameter* rows) override { prompt_ = rows; }
  int prompt_position() const override { return 0; }
  const Parameter& token_embeddings() override { return *wte_; }
  std::vector<LayerSeams> layer_seams() override;

  // The decoder blocks, for methods that install hooks (pointers live as long as the model).
  std::vector<Gpt2Block*> blocks() {
    std::vector<Gpt2Block*> out;
    for (auto& b : blocks_) out.push_back(&b);
    return out;
  }
  // The LM head is tied to wte.
  bool has_lm_head() const override { return true; }
  void lm_logits(Tensor& logits) const override;
  void backward_from_logits(const float* dlogits, const std::vector<const float*>& d_hidden = {}) override;

 private:
  int block_slot(int i) const { return keep_all_ ? i : i % 2; }

  TransformerConfig cfg_;
  TensorParallelGroup* tp_ = nullptr;
  bool deferred_ = false;  // loaded with WeightValues::deferred: holds no weights, cannot run
  int wte_row0_ = 0;
  ParameterRegistry reg_;
  Parameter *wte_ = nullptr, *wpe_ = nullptr;
  Parameter* prompt_ = nullptr;  // soft prompt rows for ids >= vocab (input side only; the LM head stays wte)
  std::vector<Gpt2Block> blocks_;
  LayerNorm ln_f_;

  TokenBatch batch_;
  StepOptions opt_;
  bool keep_all_ = false;
  int floor_ = 0;  // gradient floor of the current step (see gradient_floor.h)
  std::vector<Gpt2Block::Buffers> bufs_;
  Gpt2Block::Buffers scratch_;
  std::vector<Tensor> stream_;           // residual stream: stream_[i] = input of block i, [layers] = last output
  Tensor final_, lnf_mean_, lnf_rstd_;   // ln_f output and statistics
  Tensor pos_ids_;
  BackwardWorkspace ws_;
  Tensor d_cur_, d_next_, d_final_;
};

}  // namespace ladder::core
