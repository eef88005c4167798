#include "apps/train/trainer.h"

#include "apps/train/activation_cache.h"
#include "apps/train/base_weights.h"
#include "apps/train/data_parallel.h"
#include "apps/train/finite_step.h"
#include "apps/train/run_model.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <stdexcept>
#include <thread>

#include "adapters/heads/sequence_classification_head.h"
#include "adapters/method.h"
#include "apps/progress.h"
#include "apps/report.h"
#include "core/backbones/backbone.h"
#include "core/io/checkpoint.h"
#include "core/kernels/dropout.h"
#include "core/kernels/threading.h"
#include "core/optim/adamw.h"
#include "core/optim/grad_clip.h"
#include "core/optim/lr_schedule.h"
#include "data/glue/glue_dataset.h"
#include "data/glue/metrics.h"
#include "data/glue/sampler.h"
#include "data/padded_batch.h"

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

int train(const TrainConfig& cfg, const std::vector<std::string>& argv, DataParallel& dp);

}  // namespace

int run_training(const TrainConfig& cfg, const std::vector<std::string>& argv) {
  // Handlers first: a preemption signal while the model loads must also end in a checkpoint-or-nothing
  // stop with 128 + signal, not in the default action.
  std::signal(SIGTERM, on_stop_signal);
  std::signal(SIGINT, on_stop_signal);
  std::signal(SIGUSR1, on_stop_signal);
  DataParallel dp(cfg.tp);
  return dp.run([&] { return train(cfg, argv, dp); });
}

namespace {

int train(const TrainConfig& cfg, const std::vector<std::string>& argv, DataParallel& dp) {
  RunReport report("train", argv);
  const bool lead = dp.lead();
  core::set_num_threads(threads_per_rank(cfg.threads, dp));
  std::filesystem::create_directories(cfg.out_dir);
  const data::GlueTask task = data::parse_glue_task(cfg.task);
  const data::GlueTaskInfo& info = data::glue_task_info(task);

  // Model, head, methods, data.
  RunModel rm = build_run_model(cfg, dp.tp_group());
  const std::string weights_hash = base_weights_hash(cfg.model_dir);
  // Frozen weights this rank holds (memory-mapped or copied): about 1/tp of the model's with tensor parallelism.
  const size_t frozen_bytes = core::MemoryTracker::instance().current(0, core::MemCategory::frozen_weights);
  auto& model = rm.backbone;
  auto& head = *rm.head;
  auto& methods = rm.methods;
  auto& params = model->params();
  const size_t n_train = params.count(true), n_total = params.count(false);
  auto tok = data::TextEncoder::for_model(cfg.model_dir, model->config().arch);
  const auto t_data = std::chrono::steady_clock::now();
  data::GlueSplit train, dev;
  // cache.use: the LST side network trains from activation stores; the backbone's weights are released
  // (after the side network took its pruned initialisation from them) and never run.
  std::unique_ptr<data::ActivationStoreReader> train_store, dev_store;
  std::vector<int64_t> store_layers;
  std::vector<int64_t> train_lengths;
  if (cfg.cache_use) {
    train_store = std::make_unique<data::ActivationStoreReader>(store_path(cfg, "train"));
    dev_store = std::make_unique<data::ActivationStoreReader>(store_path(cfg, "dev"));
    train_store->check_matches(store_expectation(cfg, rm, "train"));
    dev_store->check_matches(store_expectation(cfg, rm, "dev"));
    for (int t : rm.side->taps()) store_layers.push_back(t);
    train_lengths = train_store->row_lengths();
    params.release_frozen_values();
  } else {
    load_glue_splits(cfg, rm, true, train, dev);
    train_lengths = train.lengths();
  }
  const size_t n_train_rows = train_lengths.size(), n_dev_rows = cfg.cache_use ? dev_store->num_rows() : dev.size();
  const double data_s = seconds_since(t_data);
  // One sampler batch is one step's global batch, the same at every layout; each rank trains on its
  // interleaved slice of it (DataParallel::slice). The epoch's last partial global batch is dropped.
  const int64_t global_batch = int64_t(cfg.batch_size) * cfg.grad_accum * dp.size();
  if (int64_t(n_train_rows) < global_batch)
    throw std::runtime_error("the training set has " + std::to_string(n_train_rows) + " examples, fewer than one global batch of " +
                             std::to_string(global_batch) + " (train.batch_size x train.grad_accum x " + std::to_string(dp.size()) + " ranks)");
  data::BucketSampler sampler(train_lengths, global_batch, cfg.seed, /*drop_last=*/true);
  sampler.set_epoch(0);
  const int64_t per_epoch = std::max<int64_t>(1, sampler.batches_per_epoch());
  const int64_t total_steps = cfg.max_steps > 0 ? cfg.max_steps : per_epoch * cfg.epochs;
  const int64_t warmup = cfg.warmup_steps >= 0 ? cfg.warmup_steps : int64_t(std::ceil(cfg.warmup_ratio * double(total_steps)));

  core::AdamWConfig ac;
  ac.lr = cfg.lr;
  ac.weight_decay = cfg.weight_decay;
  core::AdamW opt(params, ac);
  core::LrSchedule schedule(core::parse_schedule_kind(cfg.schedule), cfg.lr, warmup, total_steps);

  say(lead, "ladder train: %s on %s (%zu train / %zu dev examples, max length %d, read+tokenized in %.1fs)\n",
      cfg.model_dir.c_str(), info.name.c_str(), n_train_rows, n_dev_rows, cfg.max_length, data_s);
  if (cfg.cache_use)
    say(lead, "training from the activation stores %s and %s (the backbone does not run)\n", train_store->path().c_str(),
        dev_store->path().c_str());
  say(lead, "method %s: %zu trainable of %zu parameters (%.3f%%); %lld steps of %d x %d x %d ranks = %lld sequences, lr %g (%s, %lld warmup), %d threads per rank\n",
      cfg.method.c_str(), n_train, n_total, 100.0 * double(n_train) / double(n_total), (long long)total_steps,
      cfg.batch_size, cfg.grad_accum, dp.size(), (long long)global_batch, cfg.lr, cfg.schedule.c_str(), (long long)warmup,
      core::num_threads());
  if (dp.tp() > 1)
    say(lead, "tensor parallelism: the backbone is sharded over %d ranks per replica (%d replicas); frozen weights %s per rank\n",
        dp.tp(), dp.size(), core::format_bytes(frozen_bytes).c_str());

  // Resume.
  const bool higher_better = true;  // every GLUE primary metric
  core::CheckpointDirectory ckdir(cfg.out_dir + "/checkpoints", cfg.keep_last,
                                  higher_better ? core::CheckpointDirectory::Better::higher : core::CheckpointDirectory::Better::lower);
  int64_t step = 0;
  std::map<std::string, std::vector<double>> series;
  std::string last_saved;
  if (cfg.resume) {
    std::vector<std::string> unreadable;
    auto latest = ckdir.latest(&unreadable);
    if (!latest && !unreadable.empty()) {
      // Starting over would overwrite the run's checkpoints: only on request.
      std::string why;
      for (const auto& u : unreadable) why += "\n  " + u;
      if (!cfg.start_over)
        throw std::runtime_error(ckdir.dir() + " holds checkpoints but none is readable, so the run cannot resume:" + why +
                                 "\nrerun with --checkpoint.start_over true to train from step 0 over them, or use another "
                                 "--checkpoint.dir");
      say(lead, "no readable checkpoint in %s; starting over from step 0 (checkpoint.start_over):%s\n", ckdir.dir().c_str(),
          why.c_str());
    }
    if (latest) {
      core::CheckpointData ck = core::read_checkpoint(*latest);
      if (ck.method != cfg.method)
        throw std::runtime_error(*latest + ": checkpoint of method '" + ck.method + "' but the config says '" + cfg.method + "'");
      check_base_weights(*latest, ck.backbone_hash, ck.backbone_id, cfg.model_dir, weights_hash);
      load_trainable_params(rm, ck, *latest);
      auto states = opt.state_tensors();
      if (states.size() != ck.optimizer.size()) throw std::runtime_error(*latest + ": optimizer state does not match this run's parameters");
      for (size_t i = 0; i < states.size(); ++i) {
        if (states[i].first != ck.optimizer[i].first)
          throw std::runtime_error(*latest + ": optimizer state '" + ck.optimizer[i].first + "' where '" + states[i].first + "' was expected");
        // Whole tensors in the file; a tensor-parallel rank takes the part of its parameter's shard.
        const core::ShardSpec& spec = opt.parameters()[i / 2]->shard;
        if (spec.sharded()) states[i].second->copy_from(core::shard_of(ck.optimizer[i].second, spec, core::MemCategory::workspace));
        else states[i].second->copy_from(ck.optimizer[i].second);
      }
      if (ck.step > 0 && ck.samples_seen != ck.step * global_batch)
        throw std::runtime_error(*latest + ": trained with a global batch of " + std::to_string(ck.samples_seen / ck.step) +
                                 " sequences per step, this run has " + std::to_string(global_batch) +
                                 " (train.batch_size x train.grad_accum x ranks); resume with the same global batch");
      step = ck.step;
      opt.set_step_count(step);
      auto& sp = ck.sampler["position"];
      if (sp.size() != 2) throw std::runtime_error(*latest + ": no sampler position");
      sampler.restore({sp[0], sp[1]});
      series = ck.metrics;
      say(lead, "resumed from %s at step %lld\n", latest->c_str(), (long long)step);
      last_saved = *latest;
    }
  }
  // Replicas start from rank 0's trainable values and average their gradients from here on.
  dp.broadcast_trainable(params);
  dp.attach(*model, cfg.bucket_mb);

  // Replicas hold the same parameters and sampler position: the lead rank alone writes the checkpoint, with
  // whole tensors (the tp group of dp rank 0 gathers the shards first), so it resumes at any dp x tp.
  auto save = [&](std::optional<double> metric) -> std::string {
    last_saved = ckdir.dir() + "/" + core::CheckpointDirectory::file_name(step);  // every rank can name it
    if (!dp.gathers_checkpoint()) return "";
    std::vector<std::pair<std::string, core::Tensor>> whole_params, whole_states;
    for (auto* p : params.trainable()) whole_params.emplace_back(p->name, dp.gather(p->value, p->shard));
    {
      auto states = opt.state_tensors();
      for (size_t i = 0; i < states.size(); ++i)
        whole_states.emplace_back(states[i].first, dp.gather(*states[i].second, opt.parameters()[i / 2]->shard));
    }
    if (!lead) return "";
    // The step check keeps NaNs out of the parameters; this scan (cheap beside the write) makes sure.
    if (const std::string bad = first_nonfinite(whole_params); !bad.empty())
      throw std::runtime_error("step " + std::to_string(step) + ": parameter '" + bad +
                               "' holds a NaN or an infinity; no checkpoint is written from it");
    core::CheckpointData ck;
    ck.step = step;
    ck.epoch = sampler.state().epoch;
    ck.samples_seen = step * global_batch;
    ck.config = cfg.effective_ini;
    ck.method = cfg.method;
    ck.backbone_id = cfg.model_dir;
    ck.backbone_hash = weights_hash;
    ck.params = std::move(whole_params);
    ck.optimizer = std::move(whole_states);
    ck.sampler["position"] = {sampler.state().epoch, sampler.state().position};
    ck.metrics = series;
    return ckdir.save(ck, metric);
  };

  data::PaddedBatch batch;
  std::vector<int64_t> ids;
  std::vector<size_t> rows;
  std::vector<int32_t> labels;
  std::vector<float> scores;
  std::vector<int64_t> sample_ids;
  std::vector<double> step_ms, comm_ms, tp_ms;
  int stop_sig = 0;
  const int32_t pad = tok.pad_id();
  std::unique_ptr<data::PrefetchingReader> prefetch;
  int64_t prefetch_epoch = -1;
  // HDF5 is not thread-safe here: other HDF5 work (checkpoints, the dev store) waits for the prefetcher.
  auto hold_hdf5 = [&] { return prefetch ? prefetch->hold_hdf5() : std::unique_lock<std::mutex>(); };
  auto run_eval = [&] {
    // LST saves so little for backward that a larger evaluation batch would set the run's peak memory:
    // it evaluates at most a training batch at a time.
    const int eval_batch = rm.side ? std::min(cfg.eval_batch_size, cfg.batch_size) : cfg.eval_batch_size;
    if (!dev_store) return evaluate(rm, dev, eval_batch, pad);
    auto hold = hold_hdf5();
    return evaluate_from_store(rm, *dev_store, task, eval_batch);
  };
  Progress progress("train", uint64_t(total_steps), "steps", kPlainLineInterval_s, /*redraw=*/!dp.distributed());
  double window_loss = 0, window_tokens = 0, window_s = 0;
  int window_n = 0;
  std::map<std::string, double> last_eval;

  while (step < total_steps) {
    if (stop_sig || (!dp.distributed() && g_stop_signal)) break;
    const auto t0 = std::chrono::steady_clock::now();
    for (auto& m : methods) m->on_step_begin(uint64_t(step));
    params.zero_grad();
    double step_loss = 0;
    long tokens = 0;
    while (!sampler.next(ids)) sampler.set_epoch(sampler.state().epoch + 1);
    if (train_store && (!prefetch || prefetch_epoch != sampler.state().epoch)) {
      // This rank's micro-batches from here to the epoch's end, read ahead on a background thread.
      prefetch.reset();
      const auto gbs = sampler.epoch_batches(sampler.state().epoch);
      std::vector<std::vector<uint64_t>> plan;
      for (size_t g = size_t(sampler.state().position - 1); g < gbs.size(); ++g)
        for (int m = 0; m < cfg.grad_accum; ++m) {
          plan.emplace_back();
          for (size_t p : dp.slice(size_t(m), size_t(cfg.batch_size))) plan.back().push_back(uint64_t(gbs[g][p]));
        }
      // 16-bit stores stay 16-bit until the side network's ladders convert them, a chunk at a time.
      prefetch = std::make_unique<data::PrefetchingReader>(*train_store, std::move(plan), store_layers, 2, /*keep_16bit=*/true);
      prefetch_epoch = sampler.state().epoch;
    }
    for (int micro = 0; micro < cfg.grad_accum; ++micro) {
      rows.clear();
      sample_ids.clear();
      for (size_t p : dp.slice(size_t(micro), size_t(cfg.batch_size))) {
        rows.push_back(size_t(ids[p]));
        sample_ids.push_back(ids[p]);  // dropout masks follow the example, whatever rank trains it
      }
      dp.set_last_micro(micro == cfg.grad_accum - 1);
      core::StepOptions so;
      so.save_for_backward = true;
      so.training = true;
      so.seed = core::derive_seed(cfg.seed, uint64_t(step));
      so.samples.ids = sample_ids.data();
      std::optional<data::StoreBatch> sb;  // its hidden states are the side network's taps until backward is done
      if (train_store) {
        sb = prefetch->next();
        if (!sb || sb->rows.size() != rows.size() || !std::equal(rows.begin(), rows.end(), sb->rows.begin()))
          throw std::logic_error("activation store prefetch is out of step with the sampler");
        model_forward_taps(rm, sb->tokens.view(), so, store_taps(*sb));
        labels = std::move(sb->labels);
        scores = std::move(sb->scores);
        tokens += sb->tokens.real_tokens();
      } else {
        data::pad_batch(batch, train.enc, rows, pad, rm.pad_to);
        labels.clear();
        scores.clear();
        for (size_t i : rows) {
          labels.push_back(train.labels[i]);
          scores.push_back(train.scores[i]);
        }
        model_forward(rm, batch.view(), so);
        tokens += batch.real_tokens();
      }
      const int32_t* lp = labels.empty() ? nullptr : labels.data();
      const float* sp = scores.empty() ? nullptr : scores.data();
      step_loss += head.loss(lp, sp) / double(cfg.grad_accum);
      model_backward(rm, lp, sp, 1.0f / float(cfg.grad_accum));
    }
    dp.average_gradients();
    // Loss and tokens over the global batch, and a stop every rank agrees on (a signal may reach the
    // ranks at different steps): one small all-reduce.
    std::vector<double> red{step_loss, double(tokens), double(g_stop_signal), g_stop_signal ? 1.0 : 0.0};
    dp.sum(red);
    step_loss = red[0] / dp.size();
    tokens = long(red[1]);
    if (red[3] > 0) stop_sig = int(red[2] / red[3] + 0.5);
    comm_ms.push_back(dp.wait_ms_last_step());
    tp_ms.push_back(1e3 * dp.take_tp_seconds());
    // Without clipping, an infinite bound still computes the norm that the finite check needs.
    const float grad_norm = dp.clip_grad_norm(params, cfg.max_grad_norm > 0 ? float(cfg.max_grad_norm) : INFINITY);
    check_step_finite(step + 1, step_loss, grad_norm, params, last_saved);
    const double lr = schedule.lr_at(step);
    opt.step(lr);
    ++step;
    const double s = seconds_since(t0);
    step_ms.push_back(1e3 * s);
    series["loss"].push_back(step_loss);
    series["lr"].push_back(lr);
    window_loss += step_loss;
    window_tokens += double(tokens);
    window_s += s;
    ++window_n;
    if (lead && (progress.is_terminal() || window_n >= cfg.log_every || step == total_steps)) {
      char tail[200];
      std::snprintf(tail, sizeof tail, "epoch %lld loss %.4f lr %.2e %.0f tok/s RSS %s", (long long)sampler.state().epoch,
                    window_loss / window_n, lr, window_tokens / window_s, core::format_bytes(core::current_rss_bytes()).c_str());
      progress.update(uint64_t(step), tail);
      if (window_n >= cfg.log_every) window_loss = window_tokens = window_s = 0, window_n = 0;
    }
    const bool eval_now = (cfg.eval_every > 0 && step % cfg.eval_every == 0) || step == total_steps;
    std::optional<double> metric;
    if (eval_now) {
      // DyLoRA evaluates (and selects its best checkpoint) at r_max, not at the rank the step drew.
      if (auto* dy = adapters::find_dylora(methods)) dy->set_rank(dy->r_max());
      auto r = run_eval();
      last_eval = r.metrics;
      metric = r.metrics.at(info.primary_metric);
      for (auto& [k, v] : r.metrics) series["eval_" + k].push_back(v);
      series["eval_loss"].push_back(r.loss);
      series["eval_step"].push_back(double(step));
      say(lead, "eval at step %lld: %s, loss %.4f\n", (long long)step, format_metrics(r.metrics).c_str(), r.loss);
    }
    if (eval_now || (cfg.save_every > 0 && step % cfg.save_every == 0)) {
      auto hold = hold_hdf5();
      save(metric);
    }
  }
  if (const int sig = dp.distributed() ? stop_sig : int(g_stop_signal)) {
    const std::string path = [&] {
      auto hold = hold_hdf5();
      return save(std::nullopt);
    }();
    say(lead, "stopped by signal %d at step %lld; checkpoint %s; rerun the same command to resume\n", sig,
        (long long)step, path.c_str());
    report.metrics()["stopped_by_signal"] = sig;
    report.metrics()["step"] = step;
    if (lead) report.write(cfg.report);
    // No rank leaves before the lead rank's checkpoint is on disk: a launcher that kills the job when the
    // first rank exits (srun --kill-on-bad-exit) must not cut the write short.
    dp.barrier();
    return 128 + sig;
  }
  if (lead) progress.finish("done");
  if (last_eval.empty()) {  // resumed a finished run: nothing trained now, evaluate what it holds
    auto r = run_eval();
    last_eval = r.metrics;
    say(lead, "the run was already complete at step %lld; eval: %s, loss %.4f\n", (long long)step,
        format_metrics(r.metrics).c_str(), r.loss);
  }

  // DyLoRA: every rank from the one run.
  if (auto* dy = adapters::find_dylora(methods); dy && cfg.eval_all_ranks) {
    say(lead, "DyLoRA: dev %s at every rank\n", info.primary_metric.c_str());
    for (int b = 1; b <= dy->r_max(); ++b) {
      dy->set_rank(b);
      auto r = run_eval();
      say(lead, "  rank %d: %s\n", b, format_metrics(r.metrics).c_str());
      report.metrics()["dylora_rank_" + std::to_string(b)] = r.metrics;
    }
  }

  say(lead, "\n%s", core::memory_table().c_str());
  report.set_config({{"ini", cfg.effective_ini}});
  report.metrics()["task"] = info.name;
  report.metrics()["method"] = cfg.method;
  report.metrics()["trainable_parameters"] = n_train;
  report.metrics()["total_parameters"] = n_total;
  report.metrics()["steps"] = step;
  report.metrics()["final_eval"] = last_eval;
  if (ckdir.best_metric()) report.metrics()["best_" + info.primary_metric] = *ckdir.best_metric();
  report.metrics()["loss_series"] = series["loss"];
  report.timings()["median_step_ms"] = median(step_ms);
  // The epoch's training time: every step, waits for data included; evaluation and checkpoints not.
  double steps_ms = 0;
  for (double x : step_ms) steps_ms += x;
  report.timings()["train_steps_s"] = steps_ms / 1e3;
  report.metrics()["data_parallel_ranks"] = dp.size();
  report.metrics()["tensor_parallel_ranks"] = dp.tp();
  report.metrics()["frozen_weight_bytes_per_rank"] = frozen_bytes;
  report.timings()["median_tp_allreduce_ms"] = tp_ms.empty() ? 0.0 : median(tp_ms);
  report.metrics()["global_batch"] = global_batch;
  report.metrics()["allreduce_bytes_per_step"] = dp.bytes_last_step();
  report.metrics()["allreduce_buckets"] = dp.buckets();
  report.timings()["median_allreduce_wait_ms"] = comm_ms.empty() ? 0.0 : median(comm_ms);
  if (lead) report.write(cfg.report);
  return 0;
}

}  // namespace

}  // namespace ladder::apps
