#pragma once
// A pretrained transformer backbone built from a Hugging Face directory (config.json + safetensors).
// Forward runs the whole stack; hidden_state(i) is the output of layer i (0 = embeddings); backward takes
// dL/d(last hidden) plus optional gradients injected at any layer boundary and accumulates gradients of
// trainable parameters only. All parameters live in params(), named as in the Hugging Face checkpoint
// (without a task-model prefix such as "bert." or "transformer.").
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "core/backbones/transformer_config.h"
#include "core/backbones/weight_loader.h"
#include "core/modules/linear.h"
#include "core/modules/linear_branch.h"
#include "core/modules/parameter.h"
#include "core/modules/sublayer_hook.h"
#include "core/modules/tensor_parallel.h"
#include "core/modules/step_context.h"

namespace ladder::core {

// What a Linear does inside its layer, so methods pick targets by role rather than by module name.
// Backbones with fused projections (GPT-2's c_attn) report `qkv`; separate ones report query, key, value.
enum class LinearRole { query, key, value, qkv, attention_output, ffn_in, ffn_out };
const char* role_name(LinearRole r);

// The places of one layer where methods install themselves (pointers live as long as the backbone).
// The FFN activation is the input of the `ffn_out` Linear: a method scaling it ((IA)^3's l_ff) scales
// that Linear's input.
struct LayerSeams {
  int index = 0;
  std::string prefix;      // "encoder.layer.3" / "h.3": every method parameter of the layer starts with it
  std::string attn_site;   // registration prefix of a module after the attention sublayer
  std::string ffn_site;    // ... after the FFN sublayer
  std::string block_site;  // ... parallel to the whole FFN (KronA^B)
  SublayerHook** after_attention = nullptr;
  SublayerHook** after_ffn = nullptr;
  LinearBranch** ffn_parallel = nullptr;
  struct RoleLinear {
    LinearRole role;
    std::string name;  // Hugging Face module name, e.g. "encoder.layer.3.attention.self.key"
    Linear* linear;
  };
  std::vector<RoleLinear> linears;  // in layer order
};

// How Hugging Face's sequence-classification model of a backbone family is laid out, so that the head and
// `ladder export` follow it: BERT classifies the pooled first token through `classifier` (with a bias, after
// hidden dropout); GPT-2 the last real token through `score` (no bias, no dropout).
struct ClassifierLayout {
  std::string task_prefix;     // the backbone's prefix inside the task model: "bert." / "transformer."
  std::string head;            // the head's module name: "classifier" / "score"
  std::string hf_class;        // "BertForSequenceClassification" / "GPT2ForSequenceClassification"
  bool from_pooler = false;    // true: the pooler's output; false: the last real token's hidden state
  bool bias = false;
  bool dropout = false;        // the backbone's hidden dropout before the head
};

class Backbone {
 public:
  virtual ~Backbone() = default;
  virtual const TransformerConfig& config() const = 0;
  virtual ParameterRegistry& params() = 0;
  virtual void forward(const TokenBatch& batch, const StepOptions& opt) = 0;
  // [B*T, d] output of layer i after forward: always for i == layers, otherwise when the forward kept
  // hidden states (keep_hidden_states or save_for_backward).
  virtual Tensor hidden_state(int i) const = 0;
  Tensor last_hidden() const { return hidden_state(config().layers); }
  // d_last: dL/d(last hidden) [B*T, d] or null. d_hidden: empty, or layers+1 pointers (null = none) added
  // to the gradient at each layer boundary. Needs a forward with save_for_backward.
  virtual void backward(const float* d_last, const std::vector<const float*>& d_hidden = {}) = 0;
  // Floating-point operations of one forward pass (matmuls only), for throughput reports.
  virtual double forward_flops(int B, int T) const = 0;
  // Architecture name, for reports and checkpoints.
  virtual std::string name() const = 0;
  // Every Linear of the stack under its Hugging Face module name ("encoder.layer.0.attention.self.query",
  // "h.0.attn.c_attn"), in layer order. Methods attach branches (LoRA) here; the pointers live as long as
  // the backbone.
  virtual std::vector<std::pair<std::string, Linear*>> linear_modules() = 0;
  // Prompt tuning: token ids >= vocab_size read these [P, d] rows instead of the vocabulary (null = none).
  virtual void set_prompt_embeddings(Parameter* rows) = 0;
  // Where soft-prompt tokens go in an encoded row: after [CLS] for encoders, first for decoders.
  virtual int prompt_position() const = 0;
  // The input token-embedding table [vocab, d] (this rank's rows under tensor parallelism).
  virtual const Parameter& token_embeddings() = 0;
  // Every layer's seams, in layer order.
  virtual std::vector<LayerSeams> layer_seams() = 0;
  // A pooler over the first token (BERT): its output [B, d] after forward, and backward from dL/d(pooled).
  // Backbones without one classify from the last real token instead.
  virtual bool has_pooler() const { return false; }
  virtual ClassifierLayout classifier_layout() const = 0;
  virtual Tensor pooled() const;
  virtual void backward_from_pooled(const float* d_pooled);
  // A language-model head over every position (decoders): logits [B*T, vocab] from the last forward,
  // OVERWRITTEN into `logits` (grown as needed), and backward from dL/dlogits through the whole stack.
  virtual bool has_lm_head() const { return false; }
  virtual void lm_logits(Tensor& logits) const;
  virtual void backward_from_logits(const float* dlogits, const std::vector<const float*>& d_hidden = {});
  // The causal-LM loss of the last forward: mean cross-entropy of the logits against targets [B*T] (rows
  // equal to ignore_index skipped) and how many counted; with `backward`, d(mean loss) * grad_scale goes back
  // through the stack (parameter gradients accumulate). Decoders with a large vocabulary run the head a
  // block of rows at a time, so the [B*T, vocab] logits never exist whole.
  struct LmLoss {
    double mean = 0;
    long count = 0;
  };
  virtual LmLoss lm_loss(const int32_t* targets, int ignore_index, bool backward, float grad_scale);
  // Incremental decoding with a KV cache (decoders): begin_decoding empties the cache for B sequences of
  // at most `capacity` positions; decode runs the next Tn tokens of each ([B, Tn] ids) and OVERWRITES
  // last_logits [B, vocab] with the logits at each sequence's last new position. Inference only.
  virtual bool has_kv_cache() const { return false; }
  virtual void begin_decoding(int B, int capacity);
  virtual void decode(const int32_t* ids, int B, int Tn, Tensor& last_logits);
  // The tensor-parallel group the backbone is sharded over; null when it is not.
  virtual TensorParallelGroup* tensor_parallel() const { return nullptr; }
  // Dotted prefix of per-layer parameter names ("encoder.layer." for BERT, "h." for GPT-2).
  virtual std::string layer_prefix() const = 0;
  // The layer a parameter belongs to by its name (adapters on a layer included), or -1 when it belongs
  // to none (embeddings, pooler, heads, rules shared by every layer).
  int layer_of(const std::string& param_name) const;

  // Called by backward as soon as layer i's parameter gradients are final, top layer first, so that
  // data parallelism can start averaging them while the layers below still run. Empty = none.
  void set_layer_backward_hook(std::function<void(int layer)> hook) { layer_hook_ = std::move(hook); }

 protected:
  void layer_backward_done(int layer) const {
    if (layer_hook_) layer_hook_(layer);
  }

 private:
  std::function<void(int)> layer_hook_;
};

// Reads `dir`/config.json, picks the architecture, loads (memory-maps) the weights. `dir` may also be a GGUF
// file (core/backbones/gguf_model.h): its weights are dequantized to f32 in memory. Errors name the file
// and the tensor. With a tensor-parallel group of size > 1 each rank loads only its shard of the sharded
// tensors (core/backbones/tensor_parallel_layout.h); every rank of the group must then run the same calls.
// values = deferred registers the weights without holding them (WeightValues): the backbone cannot run.
std::unique_ptr<Backbone> load_backbone(const std::string& dir, TensorParallelGroup* tp = nullptr,
                                        WeightValues values = WeightValues::mapped);

// Mean of the last hidden state over real tokens: sentence-transformers' pooling. out [B, d].
void mean_pool(float* out, const float* hidden, const float* attention_mask, int B, int T, int C);
// Row-wise L2 normalisation (sentence-transformers' Normalize module), in place.
void l2_normalize_rows(float* x, int rows, int C);

}  // namespace ladder::core
