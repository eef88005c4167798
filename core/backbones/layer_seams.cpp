// The backbone seams (core/backbones/backbone.h) of BERT and GPT-2: where each layer's Linears, sublayer
// hooks and FFN-parallel branch are, under the Hugging Face names methods register their parameters with.
#include <stdexcept>

#include "core/kernels/losses.h"

#include "core/backbones/backbone.h"
#include "core/backbones/bert_model.h"
#include "core/backbones/gpt2_model.h"

namespace ladder::core {

const char* role_name(LinearRole r) {
  switch (r) {
    case LinearRole::query: return "query";
    case LinearRole::key: return "key";
    case LinearRole::value: return "value";
    case LinearRole::qkv: return "qkv";
    case LinearRole::attention_output: return "attention_output";
    case LinearRole::ffn_in: return "ffn_in";
    case LinearRole::ffn_out: return "ffn_out";
  }
  return "?";
}

Tensor Backbone::pooled() const {
  throw std::logic_error(name() + " has no pooler: its classification head reads the last real token");
}

void Backbone::backward_from_pooled(const float*) {
  throw std::logic_error(name() + " has no pooler: its classification head reads the last real token");
}

void Backbone::lm_logits(Tensor&) const {
  throw std::logic_error(name() + " has no language-model head");
}

void Backbone::backward_from_logits(const float*, const std::vector<const float*>&) {
  throw std::logic_error(name() + " has no language-model head");
}

Backbone::LmLoss Backbone::lm_loss(const int32_t* targets, int ignore_index, bool backward, float grad_scale) {
  Tensor logits;
  lm_logits(logits);
  const int N = int(logits.dim(0)), V = int(logits.dim(1));
  LmLoss r;
  int count = 0;
  r.mean = cross_entropy_forward(logits.data<float>(), targets, N, V, ignore_index, &count);
  r.count = count;
  if (backward) {
    cross_entropy_backward(logits.data<float>(), logits.data<float>(), targets, N, V, ignore_index, grad_scale);
    backward_from_logits(logits.data<float>());
  }
  return r;
}

void Backbone::begin_decoding(int, int) { throw std::logic_error(name() + " has no KV-cache decoding"); }

void Backbone::decode(const int32_t*, int, int, Tensor&) { throw std::logic_error(name() + " has no KV-cache decoding"); }

std::vector<LayerSeams> BertModel::layer_seams() {
  std::vector<LayerSeams> out;
  for (auto& l : layers_) {
    LayerSeams s;
    s.index = l.layer_index;
    s.prefix = "encoder.layer." + std::to_string(l.layer_index);
    s.attn_site = s.prefix + ".attention.output";
    s.ffn_site = s.prefix + ".output";
    s.block_site = s.prefix + ".ffn";
    s.after_attention = &l.after_attention;
    s.after_ffn = &l.after_ffn;
    s.ffn_parallel = &l.ffn_parallel;
    const std::string p = s.prefix + ".";
    s.linears = {{LinearRole::query, p + "attention.self.query", &l.attn.query},
                 {LinearRole::key, p + "attention.self.key", &l.attn.key},
                 {LinearRole::value, p + "attention.self.value", &l.attn.value},
                 {LinearRole::attention_output, p + "attention.output.dense", &l.attn.out},
                 {LinearRole::ffn_in, p + "intermediate.dense", &l.ffn_in},
                 {LinearRole::ffn_out, p + "output.dense", &l.ffn_out}};
    out.push_back(std::move(s));
  }
  return out;
}

std::vector<LayerSeams> Gpt2Model::layer_seams() {
  std::vector<LayerSeams> out;
  for (auto& blk : blocks_) {
    LayerSeams s;
    s.index = blk.layer_index;
    s.prefix = "h." + std::to_string(blk.layer_index);
    s.attn_site = s.prefix + ".attn";
    s.ffn_site = s.prefix + ".mlp";
    s.block_site = s.prefix + ".mlp";
    s.after_attention = &blk.after_attention;
    s.after_ffn = &blk.after_ffn;
    s.ffn_parallel = &blk.ffn_parallel;
    const std::string p = s.prefix + ".";
    s.linears = {{LinearRole::qkv, p + "attn.c_attn", &blk.attn.qkv},
                 {LinearRole::attention_output, p + "attn.c_proj", &blk.attn.out},
                 {LinearRole::ffn_in, p + "mlp.c_fc", &blk.fc},
                 {LinearRole::ffn_out, p + "mlp.c_proj", &blk.proj}};
    out.push_back(std::move(s));
  }
  return out;
}

}  // namespace ladder::core
