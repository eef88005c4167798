#include "apps/train/data_parallel.h"

#include <algorithm>
#include <stdexcept>

#include "parallel/gradient_buckets.h"
#include "parallel/launch_env.h"
#include "parallel/mpi_communicator.h"
#include "parallel/mpi_runtime.h"
#include "parallel/process_grid.h"
#include "parallel/tensor_parallel_group.h"
#include "core/modules/tensor_parallel_regions.h"
#include "core/optim/grad_clip.h"

namespace ladder::apps {

DataParallel::DataParallel(int tp) {
  const parallel::LaunchEnv env = parallel::detect_launch_env();
  local_size_ = std::max(1, env.local_size);
  if (env.world_size <= 1) {
    if (tp > 1) throw std::runtime_error("parallel.tp = " + std::to_string(tp) + " needs at least that many processes (start with mpirun -np or srun)");
    return;
  }
  distributed_ = true;
  mpi_ = std::make_unique<parallel::MpiRuntime>();
  world_ = parallel::MpiCommunicator::world();
  try {
    grid_ = std::make_unique<parallel::ProcessGrid>(*world_, tp);
  } catch (const std::invalid_argument& e) {
    throw std::runtime_error(std::string("parallel.tp: ") + e.what());
  }
  rank_ = grid_->dp_rank();
  size_ = grid_->dp();
  world_rank_ = grid_->world_rank();
  tp_ = grid_->tp();
  tp_rank_ = grid_->tp_rank();
  if (tp_ > 1) tp_group_ = std::make_unique<parallel::CommTensorParallelGroup>(grid_->tp_comm());
}

core::TensorParallelGroup* DataParallel::tp_group() const { return tp_group_.get(); }

core::Tensor DataParallel::gather(const core::Tensor& local, const core::ShardSpec& spec) const {
  if (!spec.sharded()) return local;
  return core::gather_from_region(local, spec, tp_group_.get(), core::MemCategory::workspace);
}

float DataParallel::clip_grad_norm(core::ParameterRegistry& params, float max_norm) const {
  return core::clip_grad_norm(params, max_norm, tp_group_.get());
}

double DataParallel::take_tp_seconds() {
  if (!tp_group_) return 0.0;
  const double s = tp_group_->seconds();
  tp_group_->reset_counters();
  return s;
}

DataParallel::~DataParallel() = default;

int DataParallel::run(const std::function<int()>& body) { return distributed_ ? parallel::run_or_abort(body) : body(); }

std::vector<size_t> DataParallel::slice(size_t m, size_t micro) const {
  std::vector<size_t> pos(micro);
  const size_t base = m * size_t(size_) * micro;
  for (size_t k = 0; k < micro; ++k) pos[k] = base + size_t(rank_) + k * size_t(size_);
  return pos;
}

void DataParallel::attach(core::Backbone& backbone, double bucket_mb) {
  if (!distributed_) return;
  partial_.clear();
  for (core::Parameter* p : backbone.params().trainable())
    if (p->tp_partial_grad && tp_ > 1) partial_.push_back(p);
  if (size_ == 1) return;  // tensor parallelism only: no replica to average with
  // Spans in the order backward finishes them: layers top-down, then everything that belongs to no layer
  // (head, pooler, embeddings, rules shared by all layers), which is final only when backward returns.
  const int L = backbone.config().layers;
  std::vector<core::Parameter*> tr = backbone.params().trainable();
  std::reverse(tr.begin(), tr.end());  // registration order reversed: contiguous buckets stay in place
  std::stable_sort(tr.begin(), tr.end(), [&](core::Parameter* a, core::Parameter* b) {
    const int la = backbone.layer_of(a->name), lb = backbone.layer_of(b->name);
    return (la < 0 ? -1 : la) > (lb < 0 ? -1 : lb);
  });
  std::vector<parallel::GradSpan> spans;
  spans_of_layer_.assign(size_t(L), {});
  for (core::Parameter* p : tr) {
    const int l = backbone.layer_of(p->name);
    if (l >= 0 && l < L) spans_of_layer_[size_t(l)].push_back(spans.size());
    spans.push_back({p->name, p->g(), size_t(p->grad.numel())});
  }
  buckets_ = std::make_unique<parallel::GradientBuckets>(grid_->dp_comm(), std::move(spans),
                                                          size_t(bucket_mb * double(1 << 20)));
  backbone.set_layer_backward_hook([this](int layer) {
    if (!last_micro_ || layer < 0 || size_t(layer) >= spans_of_layer_.size()) return;
    for (size_t s : spans_of_layer_[size_t(layer)]) buckets_->mark_ready(s);
  });
}

void DataParallel::average_gradients() {
  if (buckets_) buckets_->finish();
  // Sums commute with the dp average, so the tp sum may follow it (and never races a bucket in flight).
  for (core::Parameter* p : partial_) core::copy_to_region_backward(tp_group_.get(), p->g(), size_t(p->grad.numel()));
}

void DataParallel::broadcast_trainable(core::ParameterRegistry& params) {
  if (!distributed_) return;
  for (core::Parameter* p : params.trainable()) grid_->dp_comm().broadcast(p->w(), size_t(p->value.numel()), 0);
}

void DataParallel::barrier() {
  if (distributed_) world_->barrier();
}

void DataParallel::sum(std::vector<double>& v) {
  if (distributed_ && !v.empty()) grid_->dp_comm().all_reduce(v.data(), v.size(), parallel::ReduceOp::sum);
}

size_t DataParallel::bytes_last_step() const { return buckets_ ? buckets_->last_step().bytes_reduced : 0; }
double DataParallel::wait_ms_last_step() const { return buckets_ ? buckets_->last_step().finish_ms : 0.0; }
size_t DataParallel::buckets() const { return buckets_ ? buckets_->buckets().size() : 0; }

}  // namespace ladder::apps
