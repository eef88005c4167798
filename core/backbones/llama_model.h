#pragma once
// The Llama family's decoders as Hugging Face's LlamaModel / Gemma3TextModel with their causal-LM head:
// token embeddings (times sqrt(d) for Gemma), `layers` LlamaBlocks (RoPE per layer: global or sliding-window
// base), the final RMSNorm, and logits = norm(h) E^T (tied) or lm_head. Loads from a Hugging Face directory
// (safetensors) or, through gguf_model.h, from a GGUF file with the same code. hidden_state(i) follows
// output_hidden_states: i < layers is the input of layer i, hidden_state(layers) the final norm's output.
// Also runs inference with a KV cache (begin_decoding / decode).
#include "core/backbones/backbone.h"
#include "core/io/safetensors.h"
#include "core/kernels/rope.h"
#include "core/modules/llama_block.h"
#include "core/modules/token_embedding.h"

namespace ladder::core {

class LlamaModel : public Backbone {
 public:
  // tp: heads (query and key/value: kv_heads must divide by tp), FFN columns and the vocabulary's rows
  // split over the group (null or size 1: none).
  LlamaModel(const TransformerConfig& cfg, const SafetensorsCheckpoint& ckpt, TensorParallelGroup* tp = nullptr,
             WeightValues values = WeightValues::mapped);

  const TransformerConfig& config() const override { return cfg_; }
  ParameterRegistry& params() override { return reg_; }
  void forward(const TokenBatch& batch, const StepOptions& opt) override;
  Tensor hidden_state(int i) const override;
  void backward(const float* d_last, const std::vector<const float*>& d_hidden = {}) override;
  double forward_flops(int B, int T) const override;
  std::vector<std::pair<std::string, Linear*>> linear_modules() override;
  std::string name() const override { return cfg_.arch == Architecture::gemma3 ? "gemma3" : "llama"; }
  ClassifierLayout classifier_layout() const override;
  TensorParallelGroup* tensor_parallel() const override { return tp_; }
  std::string layer_prefix() const override { return "layers."; }
  void set_prompt_embeddings(Parameter* rows) override { prompt_ = rows; }
  int prompt_position() const override { return 0; }
  const Parameter& token_embeddings() override { return *embed_; }
  std::vector<LayerSeams> layer_seams() override;
  bool has_lm_head() const override { return true; }
  void lm_logits(Tensor& logits) const override;
  void backward_from_logits(const float* dlogits, const std::vector<const float*>& d_hidden = {}) override;
  LmLoss lm_loss(const int32_t* targets, int ignore_index, bool backward, float grad_scale) override;
  // Rows of logits lm_loss forms at once (0: about 64 MiB of them).
  void set_head_block_rows(int rows) { head_block_rows_ = rows; }
  bool has_kv_cache() const override { return true; }
  void begin_decoding(int B, int capacity) override;
  void decode(const int32_t* ids, int B, int Tn, Tensor& last_logits) override;

 private:
  int block_slot(int i) const { return keep_all_ ? i : i % 2; }
  // logits [rows, V] OVERWRITTEN from final-norm rows h [rows, C] (gathered over the vocabulary under tp).
  void head_forward(float* logits, const float* h, int rows) const;

  TransformerConfig cfg_;
  TensorParallelGroup* tp_ = nullptr;
  bool deferred_ = false;
  int embed_row0_ = 0;
  ParameterRegistry reg_;
  Parameter* embed_ = nullptr;
  Parameter* lm_head_ = nullptr;  // null when tied to embed_
  Parameter* prompt_ = nullptr;
  std::vector<LlamaBlock> blocks_;
  RmsNorm norm_;
  RopeTable rope_global_, rope_local_;

  TokenBatch batch_;
  StepOptions opt_;
  bool keep_all_ = false;
  int floor_ = 0;
  std::vector<LlamaBlock::Buffers> bufs_;
  LlamaBlock::Buffers scratch_;
  std::vector<Tensor> stream_;
  Tensor final_, norm_rstd_, pos_ids_;
  LlamaBlock::Workspace ws_;
  Tensor d_cur_, d_next_, d_final_;
  std::vector<KvCache> cache_;
  Tensor dec_a_, dec_b_, dec_final_;
  Tensor chunk_logits_;
  int head_block_rows_ = 0;
};

}  // namespace ladder::core
