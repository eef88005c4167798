#pragma once
// Registers checkpoint tensors as parameters: looks each name up (trying the task-model prefixes Hugging
// Face uses, e.g. "bert." or "transformer."), checks its shape, keeps f32 data memory-mapped and converts
// bf16/f16 to f32 once. Errors name the file and the tensor.
#include <memory>
#include <string>
#include <vector>

#include "core/io/safetensors.h"
#include "core/modules/parameter.h"

namespace ladder::core {

// mapped: every frozen parameter borrows the mapping (or a converted copy). deferred: parameters are
// registered, shape- and dtype-checked, without values (Parameter::read_stored reads one when asked): a
// model that will not run, whose weights only seed something else, then holds none of them.
enum class WeightValues { mapped, deferred };

class WeightLoader {
 public:
  WeightLoader(const SafetensorsCheckpoint& ckpt, ParameterRegistry& reg, std::vector<std::string> prefixes,
               WeightValues values = WeightValues::mapped);
  // Registers `name` (shape-checked) as a frozen parameter and returns it.
  Parameter* load(const std::string& name, const Shape& shape);
  // Registers this rank's part of `name` (spec.full is the stored shape); the parameter remembers the spec.
  // A replicated spec is load(name, spec.full).
  Parameter* load_shard(const std::string& name, const ShardSpec& spec);
  bool has(const std::string& name) const;

 private:
  std::string resolve(const std::string& name) const;
  const SafetensorsCheckpoint& ckpt_;
  ParameterRegistry& reg_;
  std::vector<std::string> prefixes_;
  std::shared_ptr<const SafetensorsCheckpoint> deferred_;  // set with WeightValues::deferred
};

}  // namespace ladder::core
