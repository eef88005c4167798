#include "core/backbones/weight_loader.h"

#include <stdexcept>

namespace ladder::core {

WeightLoader::WeightLoader(const SafetensorsCheckpoint& ckpt, ParameterRegistry& reg, std::vector<std::string> prefixes)
    : ckpt_(ckpt), reg_(reg), prefixes_(std::move(prefixes)) {
  prefixes_.insert(prefixes_.begin(), "");
}

std::string WeightLoader::resolve(const std::string& name) const {
  for (auto& p : prefixes_)
    if (ckpt_.has(p + name)) return p + name;
  return "";
}

bool WeightLoader::has(const std::string& name) const { return !resolve(name).empty(); }

Parameter* WeightLoader::load(const std::string& name, const Shape& shape) {
  ShardSpec whole;
  whole.full = shape;
  return load_shard(name, whole);
}

Parameter* WeightLoader::load_shard(const std::string& name, const ShardSpec& spec) {
  std::string stored = resolve(name);
  if (stored.empty()) {
    // Let the checkpoint produce the canonical "missing tensor" message naming the file.
    (void)ckpt_.entry(name);
    throw std::runtime_error(ckpt_.dir() + ": missing tensor '" + name + "'");
  }
  Tensor t = ckpt_.load_shard(stored, spec, MemCategory::frozen_weights);
  if (t.dtype() != DType::f32) {
    if (t.dtype() != DType::bf16 && t.dtype() != DType::f16)
      throw std::runtime_error(ckpt_.file_of(stored) + ": tensor '" + stored + "' has dtype " + dtype_name(t.dtype()) +
                               " but a float weight is needed");
    t = t.to(DType::f32, MemCategory::frozen_weights);
  }
  Parameter& p = reg_.add(name, std::move(t));
  p.shard = spec;
  return &p;
}

}  // namespace ladder::core
