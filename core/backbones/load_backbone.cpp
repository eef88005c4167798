#include <cmath>
#include <stdexcept>

#include "core/backbones/backbone.h"
#include "core/backbones/bert_model.h"
#include "core/backbones/gguf_model.h"
#include "core/backbones/gpt2_model.h"
#include "core/backbones/llama_model.h"
#include "core/io/safetensors.h"

namespace ladder::core {

std::unique_ptr<Backbone> load_backbone(const std::string& dir, TensorParallelGroup* tp, WeightValues values) {
  if (is_gguf_file(dir)) {
    const GgufFile f = GgufFile::open(dir);
    const TransformerConfig cfg = config_from_gguf(f);
    return std::make_unique<LlamaModel>(cfg, checkpoint_from_gguf(f, cfg), tp, values);
  }
  TransformerConfig cfg = TransformerConfig::from_json_file(dir + "/config.json");
  SafetensorsCheckpoint ckpt = SafetensorsCheckpoint::open_dir(dir);
  switch (cfg.arch) {
    case Architecture::bert: return std::make_unique<BertModel>(cfg, ckpt, tp, values);
    case Architecture::gpt2: return std::make_unique<Gpt2Model>(cfg, ckpt, tp, values);
    case Architecture::llama:
    case Architecture::gemma3: return std::make_unique<LlamaModel>(cfg, ckpt, tp, values);
  }
  throw std::logic_error("unreachable architecture");
}

int Backbone::layer_of(const std::string& name) const {
  const std::string prefix = layer_prefix();
  if (name.compare(0, prefix.size(), prefix) != 0) return -1;
  size_t end = prefix.size();
  while (end < name.size() && name[end] >= '0' && name[end] <= '9') ++end;
  if (end == prefix.size() || end >= name.size() || name[end] != '.') return -1;
  return std::stoi(name.substr(prefix.size(), end - prefix.size()));
}

void mean_pool(float* out, const float* hidden, const float* mask, int B, int T, int C) {
  for (int b = 0; b < B; ++b) {
    float* o = out + size_t(b) * C;
    std::fill(o, o + C, 0.0f);
    double count = 0;
    for (int t = 0; t < T; ++t) {
      const float m = mask ? mask[b * T + t] : 1.0f;
      if (m == 0.0f) continue;
      const float* h = hidden + (size_t(b) * T + t) * C;
      for (int c = 0; c < C; ++c) o[c] += m * h[c];
      count += m;
    }
    // sentence-transformers clamps the token count at 1e-9
    const float inv = float(1.0 / std::max(count, 1e-9));
    for (int c = 0; c < C; ++c) o[c] *= inv;
  }
}

void l2_normalize_rows(float* x, int rows, int C) {
  for (int r = 0; r < rows; ++r) {
    float* v = x + size_t(r) * C;
    double ss = 0;
    for (int c = 0; c < C; ++c) ss += double(v[c]) * v[c];
    // torch.nn.functional.normalize uses max(norm, 1e-12)
    const float inv = float(1.0 / std::max(std::sqrt(ss), 1e-12));
    for (int c = 0; c < C; ++c) v[c] *= inv;
  }
}

}  // namespace ladder::core
