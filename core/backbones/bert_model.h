#pragma once
// BERT encoder (post-LN) with its pooler, as Hugging Face's BertModel: embeddings (word + position +
// token type, LayerNorm, dropout), `layers` BertLayers, pooler tanh(W h[CLS] + b).
#include <memory>

#include "core/backbones/backbone.h"
#include "core/io/safetensors.h"
#include "core/modules/bert_layer.h"
#include "core/modules/token_embedding.h"

namespace ladder::core {

class BertModel : public Backbone {
 public:
  // tp: shard the layers Megatron-style and the vocabulary by rows over this group (null or size 1: none).
  // values = deferred: the weights are registered but not held (see WeightValues); forward then throws.
  BertModel(const TransformerConfig& cfg, const SafetensorsCheckpoint& ckpt, TensorParallelGroup* tp = nullptr,
            WeightValues values = WeightValues::mapped);

  const TransformerConfig& config() const override { return cfg_; }
  ParameterRegistry& params() override { return reg_; }
  // The batch's pointers must stay valid until backward has run.
  void forward(const TokenBatch& batch, const StepOptions& opt) override;
  Tensor hidden_state(int i) const override;
  void backward(const float* d_last, const std::vector<const float*>& d_hidden = {}) override {
    backward(d_last, nullptr, d_hidden);
  }
  // d_pooled: dL/d(pooled output) [B, d] or null.
  void backward(const float* d_last, const float* d_pooled, const std::vector<const float*>& d_hidden);
  double forward_flops(int B, int T) const override;
  std::vector<std::pair<std::string, Linear*>> linear_modules() override;
  std::string name() const override { return "bert"; }
  TensorParallelGroup* tensor_parallel() const override { return tp_; }
  std::string layer_prefix() const override { return "encoder.layer."; }
  void set_prompt_embeddings(Parameter* rows) override { word_.extra = rows; }
  int prompt_position() const override { return 1; }  // after [CLS]
  const Parameter& token_embeddings() override { return *word_.table; }
  std::vector<LayerSeams> layer_seams() override;

  bool has_pooler() const override { return pooler_.weight != nullptr; }
  ClassifierLayout classifier_layout() const override {
    return {"bert.", "classifier", "BertForSequenceClassification", /*from_pooler=*/true, /*bias=*/true, /*dropout=*/true};
  }
  // The encoder layers, for methods that install hooks (pointers live as long as the model).
  std::vector<BertLayer*> layers() {
    std::vector<BertLayer*> out;
    for (auto& l : layers_) out.push_back(&l);
    return out;
  }
  // [B, d] pooled output after forward (requires has_pooler()).
  Tensor pooled() const override { return pooled_; }
  void backward_from_pooled(const float* d_pooled) override { backward(nullptr, d_pooled, {}); }

 private:
  int hidden_slot(int i) const { return keep_all_ ? i : i % 2; }
  void embeddings_forward();
  void embeddings_backward(const float* d_h0);

  TransformerConfig cfg_;
  TensorParallelGroup* tp_ = nullptr;
  bool deferred_ = false;  // loaded with WeightValues::deferred: holds no weights, cannot run
  ParameterRegistry reg_;
  TokenEmbedding word_;
  Parameter *pos_ = nullptr, *type_ = nullptr;
  LayerNorm emb_ln_;
  std::vector<BertLayer> layers_;
  Linear pooler_;

  // activations
  TokenBatch batch_;
  StepOptions opt_;
  bool keep_all_ = false;
  int floor_ = 0;  // gradient floor of the current step (see gradient_floor.h)
  std::vector<BertLayer::Buffers> bufs_;
  BertLayer::Buffers scratch_;
  std::vector<Tensor> hidden_;
  Tensor pos_ids_, type_ids_;            // [N] i32
  Tensor emb_sum_, emb_mean_, emb_rstd_;  // embeddings before LayerNorm and its statistics
  Tensor cls_, pooled_;                   // [B, d]
  // backward scratch
  BackwardWorkspace ws_;
  Tensor d_cur_, d_next_, d_cls_;
};

}  // namespace ladder::core
