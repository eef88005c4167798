#include "core/backbones/weight_loader.h"

#include <stdexcept>

namespace ladder::core {

WeightLoader::WeightLoader(const SafetensorsCheckpoint& ckpt, ParameterRegistry& reg, std::vector<std::string> prefixes,
                           WeightValues values)
    : ckpt_(ckpt), reg_(reg), prefixes_(std::move(prefixes)) {
  prefixes_.insert(prefixes_.begin(), "");
  // The checkpoint's files stay mapped (address space only: nothing is touched or accounted) for read_stored.
  if (values == WeightValues::deferred) deferred_ = std::make_shared<const SafetensorsCheckpoint>(ckpt);
}

namespace {
Tensor as_float_weight(Tensor t, const SafetensorsCheckpoint& ckpt, const std::string& stored) {
  if (t.dtype() == DType::f32) return t;
  if (t.dtype() != DType::bf16 && t.dtype() != DType::f16)
    throw std::runtime_error(ckpt.file_of(stored) + ": tensor '" + stored + "' has dtype " + dtype_name(t.dtype()) +
                             " but a float weight is needed");
  return t.to(DType::f32, MemCategory::frozen_weights);
}
}  // namespace

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
  if (deferred_) {
    // The same checks a mapped load makes (shape, float dtype), without touching the data.
    const SafetensorsEntry& e = ckpt_.entry(stored);
    if (e.shape != spec.full)
      throw std::runtime_error(ckpt_.file_of(stored) + ": tensor '" + stored + "' has shape " + shape_str(e.shape) +
                               " but the config needs " + shape_str(spec.full));
    if (!e.loadable || (e.dtype != DType::f32 && e.dtype != DType::bf16 && e.dtype != DType::f16))
      throw std::runtime_error(ckpt_.file_of(stored) + ": tensor '" + stored + "' has dtype " + e.st_dtype +
                               " but a float weight is needed");
    Parameter& p = reg_.add(name, Tensor());
    p.shard = spec;
    p.read_stored = [ck = deferred_, stored, full = spec.full] {
      return as_float_weight(ck->load(stored, full, MemCategory::frozen_weights), *ck, stored);
    };
    return &p;
  }
  Tensor t = as_float_weight(ckpt_.load_shard(stored, spec, MemCategory::frozen_weights), ckpt_, stored);
  Parameter& p = reg_.add(name, std::move(t));
  p.shard = spec;
  return &p;
}

}  // namespace ladder::core
