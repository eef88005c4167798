#include "adapters/lst/side_init.h"

#include <algorithm>
#include <cmath>
#include <numeric>
#include <stdexcept>

#include "core/modules/tensor_parallel_regions.h"

namespace ladder::adapters {

namespace {

struct Weight {
  std::vector<float> value, importance;
  int rows = 0, cols = 0;  // [rows, cols]; 1-D tensors have cols = 1
};

// The whole f32 value of a backbone weight: read from the checkpoint when the backbone holds none
// (WeightValues::deferred); gathered over the group when it holds a tensor-parallel part (a collective, and
// every rank builds the side network alike); else the value itself.
core::Tensor whole_value(core::Backbone& bb, const std::string& name) {
  core::Parameter& p = bb.params().at(name);
  if (!p.value.defined() && p.read_stored) return p.read_stored();
  if (p.shard.sharded() && bb.tensor_parallel())
    return core::gather_from_region(p.value, p.shard, bb.tensor_parallel(), core::MemCategory::workspace);
  return p.value;
}

Weight load(core::Backbone& bb, const std::string& name, const ImportanceMap& imp) {
  Weight w;
  const core::Tensor whole = whole_value(bb, name);
  w.value = whole.to_floats();
  w.rows = int(whole.shape()[0]);
  w.cols = whole.shape().size() > 1 ? int(whole.shape()[1]) : 1;
  auto it = imp.find(name);
  if (it != imp.end()) {
    if (it->second.size() != w.value.size()) throw std::invalid_argument("importance of " + name + " has the wrong size");
    w.importance = it->second;
  } else {
    w.importance.resize(w.value.size());
    for (size_t i = 0; i < w.value.size(); ++i) w.importance[i] = std::fabs(w.value[i]);
  }
  return w;
}

// The k highest-scoring indices, in ascending index order (ties: lower index first).
std::vector<int> top_k(const std::vector<double>& score, int k) {
  std::vector<int> idx(score.size());
  std::iota(idx.begin(), idx.end(), 0);
  std::stable_sort(idx.begin(), idx.end(), [&](int a, int b) { return score[size_t(a)] > score[size_t(b)]; });
  idx.resize(size_t(k));
  std::sort(idx.begin(), idx.end());
  return idx;
}

// Rows of a group ([out, in] weights sharing their output rows) scored by the L1 norm, over the kept input
// columns, of the element-wise product of the members' importances.
std::vector<int> keep_rows(const std::vector<const Weight*>& group, const std::vector<int>& cols, int k) {
  const int rows = group.front()->rows, in = group.front()->cols;
  std::vector<double> score(size_t(rows), 0.0);
  for (int r = 0; r < rows; ++r)
    for (int c : cols) {
      double prod = 1.0;
      for (const Weight* w : group) prod *= w->importance[size_t(r) * in + size_t(c)];
      score[size_t(r)] += std::fabs(prod);
    }
  return top_k(score, k);
}

std::vector<float> gather2(const Weight& w, const std::vector<int>& rows, const std::vector<int>& cols) {
  std::vector<float> out;
  out.reserve(rows.size() * cols.size());
  for (int r : rows)
    for (int c : cols) out.push_back(w.value[size_t(r) * w.cols + size_t(c)]);
  return out;
}

std::vector<float> gather1(const Weight& w, const std::vector<int>& idx) {
  std::vector<float> out;
  for (int i : idx) out.push_back(w.value[size_t(i)]);
  return out;
}

void check_reduction(const core::Backbone& bb, int reduction) {
  const auto& c = bb.config();
  if (reduction < 1 || c.hidden % reduction || c.intermediate % reduction || (c.hidden / reduction) % c.heads)
    throw std::invalid_argument("LST reduction " + std::to_string(reduction) + " must divide hidden " + std::to_string(c.hidden) +
                                " and intermediate " + std::to_string(c.intermediate) + ", and hidden/r must be a multiple of the " +
                                std::to_string(c.heads) + " heads");
}

}  // namespace

std::vector<std::string> pruning_importance_names(const core::Backbone& backbone) {
  if (backbone.config().arch != core::Architecture::bert)
    throw std::invalid_argument("LST pruned initialisation is implemented for BERT backbones; use lst_init = random");
  std::vector<std::string> names{"embeddings.word_embeddings.weight"};
  for (int i = 0; i < backbone.config().layers; ++i)
    for (const char* n : {"attention.self.query.weight", "attention.self.key.weight", "attention.self.value.weight",
                          "attention.output.dense.weight", "intermediate.dense.weight", "output.dense.weight"})
      names.push_back("encoder.layer." + std::to_string(i) + "." + n);
  return names;
}

std::vector<int> kept_embedding_channels(core::Backbone& backbone, int reduction, const ImportanceMap& importance) {
  check_reduction(backbone, reduction);
  // Scored in place (the vocabulary is the largest weight: no f32 copies of it, nor of its importance).
  const std::string name = "embeddings.word_embeddings.weight";
  const core::Tensor e = whole_value(backbone, name);
  const int64_t rows = e.shape()[0], cols = e.shape()[1];
  auto it = importance.find(name);
  if (it != importance.end() && it->second.size() != size_t(rows * cols))
    throw std::invalid_argument("importance of " + name + " has the wrong size");
  const float* x = it != importance.end() ? it->second.data() : e.data<float>();
  std::vector<double> score(size_t(cols), 0.0);
  for (int64_t v = 0; v < rows; ++v)
    for (int64_t c = 0; c < cols; ++c) score[size_t(c)] += std::fabs(x[size_t(v * cols + c)]);
  return top_k(score, int(cols) / reduction);
}

std::vector<std::map<std::string, std::vector<float>>> pruned_side_layers(core::Backbone& backbone, int reduction,
                                                                          const ImportanceMap& importance) {
  if (backbone.config().arch != core::Architecture::bert)
    throw std::invalid_argument("LST pruned initialisation is implemented for BERT backbones; use lst_init = random");
  const auto& cfg = backbone.config();
  const int c = cfg.hidden / reduction, f = cfg.intermediate / reduction;
  std::vector<int> cols = kept_embedding_channels(backbone, reduction, importance);
  std::vector<std::map<std::string, std::vector<float>>> layers(size_t(cfg.layers));
  for (int i = 0; i < cfg.layers; ++i) {
    const std::string p = "encoder.layer." + std::to_string(i) + ".";
    auto& out = layers[size_t(i)];
    auto W = [&](const std::string& n) { return load(backbone, p + n, importance); };
    const Weight q = W("attention.self.query.weight"), k = W("attention.self.key.weight"), v = W("attention.self.value.weight");
    const std::vector<int> r_qkv = keep_rows({&q, &k, &v}, cols, c);
    out["attention.self.query.weight"] = gather2(q, r_qkv, cols);
    out["attention.self.key.weight"] = gather2(k, r_qkv, cols);
    out["attention.self.value.weight"] = gather2(v, r_qkv, cols);
    for (const char* n : {"attention.self.query.bias", "attention.self.key.bias", "attention.self.value.bias"})
      out[n] = gather1(W(n), r_qkv);
    const Weight o = W("attention.output.dense.weight");
    const std::vector<int> r_o = keep_rows({&o}, r_qkv, c);
    out["attention.output.dense.weight"] = gather2(o, r_o, r_qkv);
    out["attention.output.dense.bias"] = gather1(W("attention.output.dense.bias"), r_o);
    out["attention.output.LayerNorm.weight"] = gather1(W("attention.output.LayerNorm.weight"), r_o);
    out["attention.output.LayerNorm.bias"] = gather1(W("attention.output.LayerNorm.bias"), r_o);
    const Weight wi = W("intermediate.dense.weight");
    const std::vector<int> r_i = keep_rows({&wi}, r_o, f);
    out["intermediate.dense.weight"] = gather2(wi, r_i, r_o);
    out["intermediate.dense.bias"] = gather1(W("intermediate.dense.bias"), r_i);
    const Weight wo = W("output.dense.weight");
    const std::vector<int> r_wo = keep_rows({&wo}, r_i, c);
    out["output.dense.weight"] = gather2(wo, r_wo, r_i);
    out["output.dense.bias"] = gather1(W("output.dense.bias"), r_wo);
    out["output.LayerNorm.weight"] = gather1(W("output.LayerNorm.weight"), r_wo);
    out["output.LayerNorm.bias"] = gather1(W("output.LayerNorm.bias"), r_wo);
    cols = r_wo;
  }
  return layers;
}

}  // namespace ladder::adapters
