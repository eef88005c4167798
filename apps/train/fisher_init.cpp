#include "apps/train/fisher_init.h"

#include <chrono>
#include <cstdio>
#include <random>
#include <stdexcept>

#include "core/tensor/memory.h"
#include "data/padded_batch.h"
#include "parallel/launch_env.h"

namespace ladder::apps {

namespace {

// Makes frozen parameters trainable (f32 copies, gradients allocated) for the lifetime of the object, then
// puts back the original value tensors, so that memory-mapped weights are not replaced by owned copies, and
// rebuilds the gradient buffer for the original trainable set. Restores on exceptions too.
class TemporarilyTrainable {
 public:
  TemporarilyTrainable(core::ParameterRegistry& reg, const std::vector<std::string>& names) : reg_(reg) {
    try {
      for (const auto& n : names) {
        core::Parameter& p = reg.at(n);
        if (p.trainable)
          throw std::logic_error("LST Fisher importance expects a frozen backbone, but '" + n + "' is trainable");
        saved_.push_back({&p, p.value});
        reg.set_trainable(n, true);
      }
      reg.allocate_gradients();
    } catch (...) {
      restore();
      throw;
    }
  }
  ~TemporarilyTrainable() { restore(); }
  TemporarilyTrainable(const TemporarilyTrainable&) = delete;
  TemporarilyTrainable& operator=(const TemporarilyTrainable&) = delete;

 private:
  void restore() noexcept {
    if (saved_.empty()) return;
    // Not set_trainable(false): that would copy the f32 value into a new frozen tensor.
    for (auto& [p, value] : saved_) {
      p->trainable = false;
      p->value = value;
      p->grad = core::Tensor();
    }
    saved_.clear();
    reg_.allocate_gradients();  // frees the pass's buffer; zero gradients for the original trainable set
  }
  core::ParameterRegistry& reg_;
  std::vector<std::pair<core::Parameter*, core::Tensor>> saved_;
};

// f += g^2 and g = 0 over n elements: one pass that accumulates and readies the gradient for the next example.
void accumulate_and_clear(float* f, float* g, size_t n) {
#pragma omp parallel for simd schedule(static) if (n >= (1 << 16))
  for (size_t i = 0; i < n; ++i) {
    f[i] += g[i] * g[i];
    g[i] = 0.0f;
  }
}

}  // namespace

adapters::ImportanceMap fisher_importance(core::Backbone& backbone, adapters::SequenceClassificationHead& head,
                                          const data::GlueSplit& examples, const std::vector<std::string>& names) {
  if (examples.size() == 0) throw std::invalid_argument("LST Fisher importance needs at least one example, got none");
  auto& reg = backbone.params();
  TemporarilyTrainable scope(reg, names);
  adapters::ImportanceMap F;
  std::vector<std::pair<core::Parameter*, float*>> sums;  // each parameter with its F
  for (const auto& n : names) {
    core::Parameter* p = &reg.at(n);
    F[n].assign(size_t(p->value.numel()), 0.0f);
    sums.emplace_back(p, F[n].data());
  }
  // The word embeddings' gradient is nonzero only on the rows of the example's tokens: touch only those
  // (the table is half of MiniLM's weights).
  core::Parameter* word = reg.find("embeddings.word_embeddings.weight");
  const int C = backbone.config().hidden;

  core::StepOptions opt;
  opt.save_for_backward = true;
  opt.training = false;  // no dropout: F is a pure function of the examples
  opt.first_token_only = head.reads_first_token_only();
  data::PaddedBatch batch;
  for (size_t i = 0; i < examples.size(); ++i) {
    if (!head.regression() && examples.labels[i] < 0)
      throw std::invalid_argument("LST Fisher importance: example " + std::to_string(i) + " has no label");
    data::pad_batch(batch, examples.enc, {i}, 0);  // one row: nothing is padded
    backbone.forward(batch.view(), opt);
    head.forward(batch.view(), opt);
    head.backward(&examples.labels[i], &examples.scores[i], 1.0f);  // B = 1: the example's own loss
    for (auto [p, f] : sums) {
      if (p == word) {
        for (int32_t id : batch.ids)  // a repeated id finds its row already cleared and adds 0
          accumulate_and_clear(f + size_t(id) * C, p->g() + size_t(id) * C, size_t(C));
      } else {
        accumulate_and_clear(f, p->g(), size_t(p->value.numel()));
      }
    }
    // Other trainable gradients (the head's) accumulate unread; the scope's exit zeroes them.
  }
  return F;
}

adapters::ImportanceMap lst_fisher_importance(const TrainConfig& cfg, const RunModel& m) {
  const int n_want = cfg.method_config.integer("lst_fisher_samples");
  if (n_want <= 0)
    throw std::invalid_argument("method.lst_fisher_samples must be positive, got " + std::to_string(n_want));
  const auto t0 = std::chrono::steady_clock::now();
  const std::vector<std::string> names = adapters::pruning_importance_names(*m.backbone);

  // Draw: a seeded partial Fisher-Yates shuffle of the rows the run trains on (gen() % k: the same draw
  // on every standard library, unlike std::uniform_int_distribution).
  const std::string path = cfg.data_dir + "/train.tsv";
  std::vector<data::GlueExample> rows = data::read_glue_tsv(m.task, path);
  if (cfg.max_train_examples > 0 && rows.size() > size_t(cfg.max_train_examples)) rows.resize(size_t(cfg.max_train_examples));
  if (rows.empty())
    throw std::runtime_error("method.lst_init = fisher draws method.lst_fisher_samples = " + std::to_string(n_want) +
                             " training examples, but " + path + " has no rows");
  const size_t n = std::min(rows.size(), size_t(n_want));
  std::vector<size_t> order(rows.size());
  for (size_t i = 0; i < order.size(); ++i) order[i] = i;
  std::mt19937_64 gen(cfg.seed ^ 0xf15e4f15e4ull);
  for (size_t i = 0; i < n; ++i) std::swap(order[i], order[i + size_t(gen() % (order.size() - i))]);
  std::vector<data::GlueExample> drawn;
  drawn.reserve(n);
  for (size_t i = 0; i < n; ++i) drawn.push_back(rows[order[i]]);
  const data::GlueSplit examples = tokenize_for_run(cfg, m, m.task, drawn, 0);

  // A scratch backbone (the weights map the same file) and a head seeded like the run's: everything the
  // pass allocates, the backbone's saved activations included, goes away with them.
  auto& mem = core::MemoryTracker::instance();
  mem.reset_peaks();  // so that the pass's own peak can be read off
  const size_t before = mem.current_total(0);
  adapters::ImportanceMap F;
  size_t pass_peak = 0;
  {
    auto scratch = core::load_backbone(cfg.model_dir);
    adapters::SequenceClassificationHead head(*scratch, m.head->num_labels(), cfg.seed);
    F = fisher_importance(*scratch, head, examples, names);
    pass_peak = mem.peak_total(0);
  }
  mem.reset_peaks();
  const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  if (parallel::detect_launch_env().rank == 0)
    std::printf("LST Fisher importance: %zu examples in %.1f s (drawn from %zu training rows; peak +%s, not counted in the run's memory table)\n",
                n, s, rows.size(), core::format_bytes(pass_peak - before).c_str());
  return F;
}

}  // namespace ladder::apps
