#include "core/modules/tensor_parallel.h"

#include <algorithm>
#include <stdexcept>

namespace ladder::core {

std::pair<int64_t, int64_t> split_range(int64_t extent, int i, int parts) {
  return {extent * i / parts, extent * (i + 1) / parts};
}

std::pair<int64_t, int64_t> ShardSpec::range_of(int part) const {
  if (!sharded()) return {0, full.empty() ? 0 : full.at(size_t(std::max(dim, 0)))};
  const int64_t extent = full.at(size_t(dim));
  if (extent % blocks) throw std::logic_error("shard: dimension " + std::to_string(extent) + " is not " + std::to_string(blocks) + " equal blocks");
  return split_range(extent / blocks, part, parts);
}

Shape ShardSpec::local_shape_of(int part) const {
  if (!sharded()) return full;
  Shape s = full;
  auto [b, e] = range_of(part);
  s[size_t(dim)] = (e - b) * blocks;
  return s;
}

std::string ShardSpec::describe() const {
  if (!sharded()) return "replicated " + shape_str(full);
  return "dim " + std::to_string(dim) + " part " + std::to_string(index + 1) + "/" + std::to_string(parts) + " of " +
         shape_str(full) + (blocks > 1 ? " in " + std::to_string(blocks) + " blocks" : "");
}

namespace {
// Visits the contiguous runs a part occupies: fn(full_offset, local_offset, count) in elements.
template <class F>
void for_each_run(const ShardSpec& s, int part, F fn) {
  if (!s.sharded()) {
    fn(size_t(0), size_t(0), size_t(shape_numel(s.full)));
    return;
  }
  int64_t outer = 1, inner = 1;
  for (int i = 0; i < s.dim; ++i) outer *= s.full[size_t(i)];
  for (size_t i = size_t(s.dim) + 1; i < s.full.size(); ++i) inner *= s.full[i];
  const int64_t extent = s.full[size_t(s.dim)], block = extent / s.blocks;
  auto [b, e] = s.range_of(part);
  const int64_t chunk = e - b, local_extent = chunk * s.blocks;
  for (int64_t o = 0; o < outer; ++o)
    for (int k = 0; k < s.blocks; ++k)
      fn(size_t((o * extent + k * block + b) * inner), size_t((o * local_extent + k * chunk) * inner), size_t(chunk * inner));
}
}  // namespace

void extract_shard(float* local, const float* full, const ShardSpec& spec, int part) {
  for_each_run(spec, part, [&](size_t f, size_t l, size_t n) { std::copy(full + f, full + f + n, local + l); });
}

void place_shard(float* full, const float* local, const ShardSpec& spec, int part) {
  for_each_run(spec, part, [&](size_t f, size_t l, size_t n) { std::copy(local + l, local + l + n, full + f); });
}

Tensor shard_of(const Tensor& full, const ShardSpec& spec, MemCategory cat) {
  if (full.shape() != spec.full)
    throw std::invalid_argument("a tensor of shape " + shape_str(full.shape()) + " where " + spec.describe() + " was expected");
  const Tensor f32 = full.dtype() == DType::f32 ? full : full.to(DType::f32, MemCategory::workspace);
  if (!spec.sharded()) return f32.clone(cat);
  Tensor local = Tensor::empty(spec.local_shape(), DType::f32, cat);
  extract_shard(local.data<float>(), f32.data<float>(), spec, spec.index);
  return local;
}

Tensor gather_whole(const Tensor& local, const ShardSpec& spec, TensorParallelGroup* tp, MemCategory cat) {
  const Tensor f32 = local.dtype() == DType::f32 ? local : local.to(DType::f32, MemCategory::workspace);
  if (!spec.sharded() || !tp || tp->size() <= 1) return f32.clone(cat);
  if (spec.parts != tp->size() || spec.index != tp->rank())
    throw std::invalid_argument("gather_whole: a " + spec.describe() + " shard on rank " + std::to_string(tp->rank()) +
                                " of a group of " + std::to_string(tp->size()));
  Tensor whole = Tensor::zeros(spec.full, DType::f32, cat);
  place_shard(whole.data<float>(), f32.data<float>(), spec, spec.index);
  tp->all_reduce_sum(whole.data<float>(), size_t(whole.numel()));
  return whole;
}

}  // namespace ladder::core
