#include "apps/train/trainer.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <optional>
#include <stdexcept>
#include <thread>

#include "apps/progress.h"
#include "apps/report.h"
#include "apps/train/base_weights.h"
#include "apps/train/data_parallel.h"
#include "apps/train/finite_step.h"
#include "apps/train/optimizer_state.h"
#include "apps/train/recipe.h"
#include "apps/train/run_model.h"
#include "core/io/checkpoint.h"
#include "core/kernels/dropout.h"
#include "core/kernels/threading.h"
#include "core/optim/lr_schedule.h"
#include "core/optim/optimizer.h"
#include "data/glue/glue_dataset.h"
#include "data/glue/sampler.h"

namespace ladder::apps {

namespace {

volatile std::sig_atomic_t g_stop_signal = 0;
extern "C" void on_stop_signal(int sig) { g_stop_signal = sig; }

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

// printf on the lead rank only (the other ranks' output would repeat it).
template <class... A>
void say(bool lead, const char* fmt, A... a) {
  if (lead) std::printf(fmt, a...);
}

// Threads per rank: the config's, else OMP_NUM_THREADS, else the cores shared by the ranks on this node.
int threads_per_rank(int configured, const DataParallel& dp) {
  if (configured > 0 || std::getenv("OMP_NUM_THREADS") || !dp.distributed()) return configured;
  return std::max(1, int(std::thread::hardware_concurrency()) / dp.local_size());
}

// One run of `ladder train`: the model, the recipe, the optimizer and schedule, and the loop's state.
// Everything a step means is the recipe's; this owns the schedule, resume, checkpoints, the signal stop,
// the evaluation schedule and the report.
class Trainer {
 public:
  Trainer(const TrainConfig& cfg, const std::vector<std::string>& argv, DataParallel& dp);
  int run();

 private:
  void announce(double data_s) const;
  void resume();
  std::string save(std::optional<double> metric);
  std::string save_held(std::optional<double> metric) {
    auto hold = recipe_->hold_io();  // HDF5 is not thread-safe: a recipe reading ahead waits
    return save(metric);
  }
  void train_step();
  void log_progress(double lr, double loss);
  std::optional<double> evaluate_now();
  int stop_on_signal(int sig);
  void evaluate_sub_models();
  void write_report();

  const TrainConfig& cfg_;
  DataParallel& dp_;
  const bool lead_;
  RunReport report_;
  RunModel rm_;
  std::string weights_hash_;
  size_t frozen_bytes_ = 0;
  size_t n_train_ = 0, n_total_ = 0;
  std::unique_ptr<Recipe> recipe_;
  int64_t global_batch_ = 0;
  std::optional<data::BucketSampler> sampler_;
  int64_t total_steps_ = 0, warmup_ = 0;
  std::unique_ptr<core::Optimizer> opt_;
  std::optional<core::LrSchedule> schedule_;
  std::optional<core::CheckpointDirectory> ckdir_;

  int64_t step_ = 0;
  std::map<std::string, std::vector<double>> series_;
  std::string last_saved_;
  int stop_sig_ = 0;
  std::vector<int64_t> ids_;
  std::vector<size_t> rows_;
  std::vector<int64_t> sample_ids_;
  std::vector<double> step_ms_, comm_ms_, tp_ms_;
  std::optional<Progress> progress_;
  double window_loss_ = 0, window_tokens_ = 0, window_s_ = 0;
  int window_n_ = 0;
  double last_step_s_ = 0;
  long last_tokens_ = 0;
  std::map<std::string, double> last_eval_;
};

Trainer::Trainer(const TrainConfig& cfg, const std::vector<std::string>& argv, DataParallel& dp)
    : cfg_(cfg), dp_(dp), lead_(dp.lead()), report_("train", argv) {
  core::set_num_threads(threads_per_rank(cfg.threads, dp));
  std::filesystem::create_directories(cfg.out_dir);
  rm_ = build_run_model(cfg, dp.tp_group());
  weights_hash_ = base_weights_hash(cfg.model_dir);
  // Frozen weights this rank holds (memory-mapped or copied): about 1/tp of the model's with tensor
  // parallelism; measured before a recipe that never runs the backbone releases them.
  frozen_bytes_ = core::MemoryTracker::instance().current(0, core::MemCategory::frozen_weights);
  auto& params = rm_.backbone->params();
  n_train_ = params.count(true);
  n_total_ = params.count(false);

  const auto t_data = std::chrono::steady_clock::now();
  recipe_ = make_recipe(cfg, rm_, dp);
  const double data_s = seconds_since(t_data);
  const std::vector<int64_t>& lengths = recipe_->train_lengths();
  // One sampler batch is one step's global batch, the same at every layout; each rank trains on its
  // interleaved slice of it (DataParallel::slice). The epoch's last partial global batch is dropped.
  global_batch_ = int64_t(cfg.batch_size) * cfg.grad_accum * dp.size();
  if (int64_t(lengths.size()) < global_batch_)
    throw std::runtime_error("the training set has " + std::to_string(lengths.size()) + " examples, fewer than one global batch of " +
                             std::to_string(global_batch_) + " (train.batch_size x train.grad_accum x " + std::to_string(dp.size()) + " ranks)");
  sampler_.emplace(lengths, global_batch_, cfg.seed, /*drop_last=*/true);
  sampler_->set_epoch(0);
  const int64_t per_epoch = std::max<int64_t>(1, sampler_->batches_per_epoch());
  total_steps_ = cfg.max_steps > 0 ? cfg.max_steps : per_epoch * cfg.epochs;
  warmup_ = cfg.warmup_steps >= 0 ? cfg.warmup_steps : int64_t(std::ceil(cfg.warmup_ratio * double(total_steps_)));

  core::OptimizerConfig oc;
  oc.lr = cfg.lr;
  oc.weight_decay = cfg.weight_decay;
  opt_ = core::make_optimizer(cfg.optimizer, params, oc);
  schedule_.emplace(core::parse_schedule_kind(cfg.schedule), cfg.lr, warmup_, total_steps_);
  ckdir_.emplace(cfg.out_dir + "/checkpoints", cfg.keep_last,
                 recipe_->higher_is_better() ? core::CheckpointDirectory::Better::higher : core::CheckpointDirectory::Better::lower);
  announce(data_s);
}

void Trainer::announce(double data_s) const {
  say(lead_, "ladder train: %s on %s (%zu train / %zu dev examples, max length %d, read+tokenized in %.1fs)\n",
      cfg_.model_dir.c_str(), recipe_->task_name().c_str(), recipe_->train_lengths().size(), recipe_->dev_rows(), cfg_.max_length, data_s);
  if (const std::string d = recipe_->describe(); !d.empty()) say(lead_, "%s\n", d.c_str());
  say(lead_, "method %s: %zu trainable of %zu parameters (%.3f%%); %lld steps of %d x %d x %d ranks = %lld sequences, lr %g (%s, %lld warmup), %d threads per rank\n",
      cfg_.method.c_str(), n_train_, n_total_, 100.0 * double(n_train_) / double(n_total_), (long long)total_steps_,
      cfg_.batch_size, cfg_.grad_accum, dp_.size(), (long long)global_batch_, cfg_.lr, cfg_.schedule.c_str(), (long long)warmup_,
      core::num_threads());
  if (dp_.tp() > 1)
    say(lead_, "tensor parallelism: the backbone is sharded over %d ranks per replica (%d replicas); frozen weights %s per rank\n",
        dp_.tp(), dp_.size(), core::format_bytes(frozen_bytes_).c_str());
}

void Trainer::resume() {
  std::vector<std::string> unreadable;
  auto latest = ckdir_->latest(&unreadable);
  if (!latest && !unreadable.empty()) {
    // Starting over would overwrite the run's checkpoints: only on request.
    std::string why;
    for (const auto& u : unreadable) why += "\n  " + u;
    if (!cfg_.start_over)
      throw std::runtime_error(ckdir_->dir() + " holds checkpoints but none is readable, so the run cannot resume:" + why +
                               "\nrerun with --checkpoint.start_over true to train from step 0 over them, or use another "
                               "--checkpoint.dir");
    say(lead_, "no readable checkpoint in %s; starting over from step 0 (checkpoint.start_over):%s\n", ckdir_->dir().c_str(),
        why.c_str());
  }
  if (!latest) return;
  core::CheckpointData ck = core::read_checkpoint(*latest);
  if (ck.method != cfg_.method)
    throw std::runtime_error(*latest + ": checkpoint of method '" + ck.method + "' but the config says '" + cfg_.method + "'");
  check_base_weights(*latest, ck.backbone_hash, ck.backbone_id, cfg_.model_dir, weights_hash_);
  load_trainable_params(rm_, ck, *latest);
  restore_optimizer_state(*opt_, ck, *latest);
  if (ck.step > 0 && ck.samples_seen != ck.step * global_batch_)
    throw std::runtime_error(*latest + ": trained with a global batch of " + std::to_string(ck.samples_seen / ck.step) +
                             " sequences per step, this run has " + std::to_string(global_batch_) +
                             " (train.batch_size x train.grad_accum x ranks); resume with the same global batch");
  step_ = ck.step;
  opt_->set_step_count(step_);
  auto& sp = ck.sampler["position"];
  if (sp.size() != 2) throw std::runtime_error(*latest + ": no sampler position");
  sampler_->restore({sp[0], sp[1]});
  recipe_->restore_extra_state(ck.recipe_state);
  series_ = ck.metrics;
  say(lead_, "resumed from %s at step %lld\n", latest->c_str(), (long long)step_);
  last_saved_ = *latest;
}

// Replicas hold the same parameters and sampler position: the lead rank alone writes the checkpoint, with
// whole tensors (the tp group of dp rank 0 gathers the shards first), so it resumes at any dp x tp.
std::string Trainer::save(std::optional<double> metric) {
  last_saved_ = ckdir_->dir() + "/" + core::CheckpointDirectory::file_name(step_);  // every rank can name it
  if (!dp_.gathers_checkpoint()) return "";
  auto& params = rm_.backbone->params();
  std::vector<std::pair<std::string, core::Tensor>> whole_params, whole_states;
  for (auto* p : params.trainable()) whole_params.emplace_back(p->name, dp_.gather(p->value, p->shard));
  whole_states = gather_optimizer_state(*opt_, [&](const core::Tensor& t, const core::ShardSpec& s) { return dp_.gather(t, s); });
  if (!lead_) return "";
  // The step check keeps NaNs out of the parameters; this scan (cheap beside the write) makes sure.
  if (const std::string bad = first_nonfinite(whole_params); !bad.empty())
    throw std::runtime_error("step " + std::to_string(step_) + ": parameter '" + bad +
                             "' holds a NaN or an infinity; no checkpoint is written from it");
  core::CheckpointData ck;
  ck.step = step_;
  ck.epoch = sampler_->state().epoch;
  ck.samples_seen = step_ * global_batch_;
  ck.config = cfg_.effective_ini;
  ck.method = cfg_.method;
  ck.backbone_id = cfg_.model_dir;
  ck.backbone_hash = weights_hash_;
  ck.params = std::move(whole_params);
  ck.optimizer_kind = opt_->kind();
  ck.optimizer = std::move(whole_states);
  ck.sampler["position"] = {sampler_->state().epoch, sampler_->state().position};
  ck.recipe_state = recipe_->extra_state();
  ck.metrics = series_;
  return ckdir_->save(ck, metric);
}

void Trainer::train_step() {
  const auto t0 = std::chrono::steady_clock::now();
  auto& params = rm_.backbone->params();
  params.zero_grad();
  double step_loss = 0;
  long tokens = 0;
  while (!sampler_->next(ids_)) sampler_->set_epoch(sampler_->state().epoch + 1);
  recipe_->begin_step(step_, *sampler_);
  for (int micro = 0; micro < cfg_.grad_accum; ++micro) {
    rows_.clear();
    sample_ids_.clear();
    for (size_t p : dp_.slice(size_t(micro), size_t(cfg_.batch_size))) {
      rows_.push_back(size_t(ids_[p]));
      sample_ids_.push_back(ids_[p]);  // dropout masks follow the example, whatever rank trains it
    }
    dp_.set_last_micro(micro == cfg_.grad_accum - 1);
    core::StepOptions so;
    so.save_for_backward = true;
    so.training = true;
    so.seed = core::derive_seed(cfg_.seed, uint64_t(step_));
    so.samples.ids = sample_ids_.data();
    const MicroStep r = recipe_->micro_step(rows_, so, 1.0f / float(cfg_.grad_accum));
    step_loss += r.loss / double(cfg_.grad_accum);
    tokens += r.tokens;
  }
  dp_.average_gradients();
  // Loss and tokens over the global batch, and a stop every rank agrees on (a signal may reach the
  // ranks at different steps): one small all-reduce.
  std::vector<double> red{step_loss, double(tokens), double(g_stop_signal), g_stop_signal ? 1.0 : 0.0};
  dp_.sum(red);
  step_loss = red[0] / dp_.size();
  tokens = long(red[1]);
  if (red[3] > 0) stop_sig_ = int(red[2] / red[3] + 0.5);
  comm_ms_.push_back(dp_.wait_ms_last_step());
  tp_ms_.push_back(1e3 * dp_.take_tp_seconds());
  // Without clipping, an infinite bound still computes the norm that the finite check needs.
  const float grad_norm = dp_.clip_grad_norm(params, cfg_.max_grad_norm > 0 ? float(cfg_.max_grad_norm) : INFINITY);
  check_step_finite(step_ + 1, step_loss, grad_norm, params, last_saved_);
  const double lr = schedule_->lr_at(step_);
  opt_->step(lr);
  recipe_->end_step(step_);
  ++step_;
  last_step_s_ = seconds_since(t0);
  last_tokens_ = tokens;
  step_ms_.push_back(1e3 * last_step_s_);
  series_["loss"].push_back(step_loss);
  series_["lr"].push_back(lr);
  log_progress(lr, step_loss);
}

void Trainer::log_progress(double lr, double loss) {
  window_loss_ += loss;
  window_tokens_ += double(last_tokens_);
  window_s_ += last_step_s_;
  ++window_n_;
  if (!lead_ || !(progress_->is_terminal() || window_n_ >= cfg_.log_every || step_ == total_steps_)) return;
  char tail[200];
  std::snprintf(tail, sizeof tail, "epoch %lld loss %.4f lr %.2e %.0f tok/s RSS %s", (long long)sampler_->state().epoch,
                window_loss_ / window_n_, lr, window_tokens_ / window_s_, core::format_bytes(core::current_rss_bytes()).c_str());
  progress_->update(uint64_t(step_), tail);
  if (window_n_ >= cfg_.log_every) window_loss_ = window_tokens_ = window_s_ = 0, window_n_ = 0;
}

// The scheduled evaluation of the whole model; its primary metric picks the best checkpoint.
std::optional<double> Trainer::evaluate_now() {
  const EvalResult r = recipe_->evaluate().front().result;
  last_eval_ = r.metrics;
  for (auto& [k, v] : r.metrics) series_["eval_" + k].push_back(v);
  series_["eval_loss"].push_back(r.loss);
  series_["eval_step"].push_back(double(step_));
  say(lead_, "eval at step %lld: %s, loss %.4f\n", (long long)step_, format_metrics(r.metrics).c_str(), r.loss);
  return r.metrics.at(recipe_->primary_metric());
}

int Trainer::stop_on_signal(int sig) {
  const std::string path = save_held(std::nullopt);
  say(lead_, "stopped by signal %d at step %lld; checkpoint %s; rerun the same command to resume\n", sig, (long long)step_,
      path.c_str());
  report_.metrics()["stopped_by_signal"] = sig;
  report_.metrics()["step"] = step_;
  if (lead_) report_.write(cfg_.report);
  // No rank leaves before the lead rank's checkpoint is on disk: a launcher that kills the job when the
  // first rank exits (srun --kill-on-bad-exit) must not cut the write short.
  dp_.barrier();
  return 128 + sig;
}

// Every sub-model the run trained at once, each evaluated on the dev split.
void Trainer::evaluate_sub_models() {
  const auto [method, unit] = recipe_->sub_model_names();
  if (method.empty() || !cfg_.eval_all_ranks) return;
  say(lead_, "%s: dev %s at every %s\n", method.c_str(), recipe_->primary_metric().c_str(), unit.c_str());
  for (const EvalRow& row : recipe_->evaluate(Recipe::Scope::sub_models)) {
    say(lead_, "  %s %d: %s\n", unit.c_str(), row.sub_model, format_metrics(row.result.metrics).c_str());
    report_.metrics()[method + "_" + unit + "_" + std::to_string(row.sub_model)] = row.result.metrics;
  }
}

int Trainer::run() {
  if (cfg_.resume) resume();
  auto& params = rm_.backbone->params();
  // Replicas start from rank 0's trainable values and average their gradients from here on.
  dp_.broadcast_trainable(params);
  dp_.attach(*rm_.backbone, cfg_.bucket_mb);
  progress_.emplace("train", uint64_t(total_steps_), "steps", kPlainLineInterval_s, /*redraw=*/!dp_.distributed());
  while (step_ < total_steps_) {
    if (stop_sig_ || (!dp_.distributed() && g_stop_signal)) break;
    train_step();
    const bool eval_now = (cfg_.eval_every > 0 && step_ % cfg_.eval_every == 0) || step_ == total_steps_;
    std::optional<double> metric;
    if (eval_now) metric = evaluate_now();
    if (eval_now || (cfg_.save_every > 0 && step_ % cfg_.save_every == 0)) save_held(metric);
  }
  if (const int sig = dp_.distributed() ? stop_sig_ : int(g_stop_signal)) return stop_on_signal(sig);
  if (lead_) progress_->finish("done");
  if (last_eval_.empty()) {  // resumed a finished run: nothing trained now, evaluate what it holds
    const EvalResult r = recipe_->evaluate().front().result;
    last_eval_ = r.metrics;
    say(lead_, "the run was already complete at step %lld; eval: %s, loss %.4f\n", (long long)step_,
        format_metrics(r.metrics).c_str(), r.loss);
  }
  evaluate_sub_models();
  say(lead_, "\n%s", core::memory_table().c_str());
  write_report();
  return 0;
}

void Trainer::write_report() {
  report_.set_config({{"ini", cfg_.effective_ini}});
  auto& m = report_.metrics();
  m["task"] = recipe_->task_name();
  m["method"] = cfg_.method;
  m["trainable_parameters"] = n_train_;
  m["total_parameters"] = n_total_;
  m["steps"] = step_;
  m["final_eval"] = last_eval_;
  if (ckdir_->best_metric()) m["best_" + recipe_->primary_metric()] = *ckdir_->best_metric();
  m["loss_series"] = series_["loss"];
  report_.timings()["median_step_ms"] = median(step_ms_);
  // The epoch's training time: every step, waits for data included; evaluation and checkpoints not.
  double steps_ms = 0;
  for (double x : step_ms_) steps_ms += x;
  report_.timings()["train_steps_s"] = steps_ms / 1e3;
  m["data_parallel_ranks"] = dp_.size();
  m["tensor_parallel_ranks"] = dp_.tp();
  m["frozen_weight_bytes_per_rank"] = frozen_bytes_;
  report_.timings()["median_tp_allreduce_ms"] = tp_ms_.empty() ? 0.0 : median(tp_ms_);
  m["global_batch"] = global_batch_;
  m["allreduce_bytes_per_step"] = dp_.bytes_last_step();
  m["allreduce_buckets"] = dp_.buckets();
  report_.timings()["median_allreduce_wait_ms"] = comm_ms_.empty() ? 0.0 : median(comm_ms_);
  if (lead_) report_.write(cfg_.report);
}

}  // namespace

int run_training(const TrainConfig& cfg, const std::vector<std::string>& argv) {
  // Handlers first: a preemption signal while the model loads must also end in a checkpoint-or-nothing
  // stop with 128 + signal, not in the default action.
  std::signal(SIGTERM, on_stop_signal);
  std::signal(SIGINT, on_stop_signal);
  std::signal(SIGUSR1, on_stop_signal);
  DataParallel dp(cfg.tp);
  return dp.run([&] {
    Trainer t(cfg, argv, dp);
    return t.run();
  });
}

}  // namespace ladder::apps
