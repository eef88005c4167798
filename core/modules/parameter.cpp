#include "core/modules/parameter.h"

#include <stdexcept>

namespace ladder::core {

float* Parameter::writable_f32() {
  if (!value.storage()->owned() || value.dtype() != DType::f32)
    value = value.to(DType::f32, trainable ? MemCategory::trainable_weights : MemCategory::frozen_weights);
  return w();
}

Parameter& ParameterRegistry::add(const std::string& name, Tensor value) {
  if (by_name_.count(name)) throw std::invalid_argument("parameter '" + name + "' registered twice");
  auto p = std::make_unique<Parameter>();
  p->name = name;
  p->value = std::move(value);
  by_name_[name] = p.get();
  params_.push_back(std::move(p));
  return *params_.back();
}

Parameter* ParameterRegistry::find(const std::string& name) {
  auto it = by_name_.find(name);
  return it == by_name_.end() ? nullptr : it->second;
}

Parameter& ParameterRegistry::at(const std::string& name) {
  if (auto* p = find(name)) return *p;
  throw std::out_of_range("no parameter named '" + name + "'");
}

std::vector<Parameter*> ParameterRegistry::trainable() const {
  std::vector<Parameter*> out;
  for (auto& p : params_)
    if (p->trainable) out.push_back(p.get());
  return out;
}

void ParameterRegistry::set_trainable(const std::string& name, bool on) {
  Parameter& p = at(name);
  if (p.trainable == on) return;
  p.trainable = on;
  // A trainable value must be writable f32 memory of its own, never a read-only file mapping.
  p.value = p.value.to(on ? DType::f32 : p.value.dtype(), on ? MemCategory::trainable_weights : MemCategory::frozen_weights);
  if (!on) p.grad = Tensor();
}

void ParameterRegistry::set_all_trainable(bool on) {
  for (auto& p : params_) set_trainable(p->name, on);
}

void ParameterRegistry::allocate_gradients() {
  int64_t total = 0;
  for (auto& p : params_)
    if (p->trainable) total += p->value.numel();
  for (auto& p : params_) p->grad = Tensor();
  grad_buffer_ = Tensor::zeros({total}, DType::f32, MemCategory::gradients);
  int64_t off = 0;
  for (auto& p : params_) {
    if (!p->trainable) continue;
    p->grad = grad_buffer_.slice(off, p->value.numel()).view(p->value.shape());
    off += p->value.numel();
  }
}

void ParameterRegistry::zero_grad() {
  if (grad_buffer_.defined()) grad_buffer_.zero_();
}

size_t ParameterRegistry::count(bool trainable_only) const {
  size_t n = 0;
  for (auto& p : params_)
    if (!trainable_only || p->trainable) n += size_t(p->shard.sharded() || p->read_stored ? shape_numel(p->shard.full) : p->value.numel());
  return n;
}

void ParameterRegistry::release_frozen_values() {
  for (auto& p : params_)
    if (!p->trainable) {
      p->value = Tensor();
      p->read_stored = nullptr;
    }
}

size_t ParameterRegistry::store_frozen_as(DType dtype, const std::function<bool(const Parameter&)>& pick) {
  if (dtype != DType::f32 && dtype != DType::bf16 && dtype != DType::f16)
    throw std::invalid_argument(std::string("frozen weights can be held as f32, bf16 or f16, not ") + dtype_name(dtype));
  size_t n = 0;
  for (auto& p : params_) {
    if (p->trainable || !p->value.defined() || p->value.dtype() == dtype || !pick(*p)) continue;
    p->value = p->value.to(dtype, MemCategory::frozen_weights);
    ++n;
  }
  return n;
}

}  // namespace ladder::core
