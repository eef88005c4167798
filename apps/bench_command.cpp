// `ladder bench`: times the backbone forward (inference) and a full training step (forward + backward
// over every weight, classification head on the pooled output for BERT, LM loss for GPT-2) and puts
// them beside two denominators measured in the same run: the best GFLOP/s this machine's BLAS reaches
// on the model's own GEMM shapes (and a square one), and the CPU's theoretical f32 peak.
#include <chrono>
#include <cstdio>
#include <random>
#include <stdexcept>
#include <tuple>

#include "adapters/method_registry.h"
#include "apps/commands.h"
#include "apps/cpu_peak.h"
#include "apps/gemm_ceiling.h"
#include "apps/options.h"
#include "apps/report.h"
#include "core/backbones/backbone.h"
#include "core/kernels/dropout.h"
#include "core/kernels/gemm.h"
#include "core/kernels/losses.h"
#include "core/kernels/threading.h"
#include "core/modules/linear.h"

namespace ladder::apps {

namespace {

double ms_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
}

struct Inputs {
  std::vector<int32_t> ids, types, labels;
  std::vector<float> mask;
  core::TokenBatch batch;
};

Inputs random_inputs(int B, int T, int vocab, unsigned seed) {
  Inputs in;
  std::mt19937 g(seed);
  for (int i = 0; i < B * T; ++i) {
    in.ids.push_back(int32_t(g() % uint32_t(vocab)));
    in.types.push_back(0);
    in.mask.push_back(1.0f);
  }
  for (int b = 0; b < B; ++b) in.labels.push_back(int32_t(g() % 2));
  in.batch = {B, T, in.ids.data(), in.types.data(), in.mask.data()};
  return in;
}

// The training step's loss head: BERT = Linear(d, 2) on the pooled output + cross-entropy; GPT-2 = tied
// LM head + next-token cross-entropy.
struct TrainStep {
  core::Backbone* model;
  core::ParameterRegistry head_params;
  core::Linear head;
  core::Tensor logits, dlogits, dpooled;
  std::vector<int32_t> targets;

  explicit TrainStep(core::Backbone* m) : model(m) {
    const int C = m->config().hidden;
    if (!m->has_pooler() && !m->has_lm_head())
      throw std::runtime_error("bench's training step needs a pooler (encoders) or a language-model head (decoders); " +
                               m->name() + " has neither");
    if (m->has_pooler()) {
      auto w = core::Tensor::from_floats(std::vector<float>(size_t(2 * C), 0.01f), {2, C}, core::MemCategory::trainable_weights);
      auto b = core::Tensor::from_floats({0.0f, 0.0f}, {2}, core::MemCategory::trainable_weights);
      head = {&head_params.add("classifier.weight", w), &head_params.add("classifier.bias", b), C, 2, core::WeightLayout::out_in};
      head_params.set_all_trainable(true);
      head_params.allocate_gradients();
    }
  }

  float run(const Inputs& in, uint64_t step) {
    const core::TokenBatch& b = in.batch;
    model->params().zero_grad();
    head_params.zero_grad();
    core::StepOptions opt;
    opt.save_for_backward = true;
    opt.training = true;
    opt.seed = core::derive_seed(42, step);
    model->forward(b, opt);
    if (model->has_pooler()) {
      core::Tensor::ensure(logits, {b.B, 2}, core::DType::f32, core::MemCategory::activations);
      core::Tensor::ensure(dlogits, {b.B, 2}, core::DType::f32, core::MemCategory::workspace);
      core::Tensor::ensure(dpooled, {b.B, model->config().hidden}, core::DType::f32, core::MemCategory::workspace);
      const core::Tensor pooled = model->pooled();
      head.forward(logits.data<float>(), pooled.data<float>(), b.B);
      float loss = core::cross_entropy_forward(logits.data<float>(), in.labels.data(), b.B, 2, -100);
      core::cross_entropy_backward(dlogits.data<float>(), logits.data<float>(), in.labels.data(), b.B, 2, -100, 1.0f);
      head.backward(dpooled.data<float>(), dlogits.data<float>(), pooled.data<float>(), b.B);
      model->backward_from_pooled(dpooled.data<float>());
      return loss;
    }
    const int N = b.rows();
    targets.resize(size_t(N));
    core::causal_lm_targets(targets.data(), b.input_ids, b.attention_mask, b.B, b.T, -100);
    return float(model->lm_loss(targets.data(), -100, /*backward=*/true, 1.0f).mean);
  }
};

nlohmann::json phase_json(double ms, double tokens, double flops, double ceiling, double peak) {
  const double gflops = flops / (ms * 1e-3) / 1e9;
  return {{"ms", ms}, {"tokens_per_s", tokens / (ms * 1e-3)}, {"gflops", gflops},
          {"fraction_of_blas_ceiling", gflops / ceiling}, {"fraction_of_peak", gflops / peak}};
}

}  // namespace

int bench_command(const std::vector<std::string>& args) {
  std::string model_dir, report_path, method;
  bool with_head = false;
  int threads = 0, fwd_batch = 0, train_batch = 0, seq = 0, warmup = 0, iters = 0, sgemm_n = 0, ceiling_rounds = 0;
  double ceiling_s = 0;
  po::options_description desc("ladder bench");
  desc.add_options()("model", po::value<std::string>(&model_dir)->required(), "Hugging Face model directory")(
      "forward-batch", po::value<int>(&fwd_batch)->default_value(32), "sequences per forward pass")(
      "train-batch", po::value<int>(&train_batch)->default_value(16), "sequences per training step")(
      "seq-len", po::value<int>(&seq)->default_value(128), "tokens per sequence")(
      "warmup", po::value<int>(&warmup)->default_value(2), "untimed iterations first")(
      "iters", po::value<int>(&iters)->default_value(10), "timed iterations (the median is reported)")(
      "sgemm-size", po::value<int>(&sgemm_n)->default_value(2048), "n of the square n x n x n sgemm among the ceiling's shapes (0 = none)")(
      "ceiling-seconds", po::value<double>(&ceiling_s)->default_value(0.2), "BLAS ceiling: seconds each GEMM shape runs per round (at least 3 runs)")(
      "ceiling-rounds", po::value<int>(&ceiling_rounds)->default_value(2), "BLAS ceiling: passes over all shapes (the fastest run of each counts)")(
      "method", po::value<std::string>(&method)->default_value("full"), "what the training step trains: full (every backbone weight) or a method spec with its defaults (e.g. lora)")(
      "lm-head", po::bool_switch(&with_head), "decoders: the forward phase computes the LM head's logits too (as a transformers forward does)");
  add_common_options(desc, threads, report_path);
  po::variables_map vm;
  if (!parse_options("bench", args, desc, vm)) return 0;
  if (fwd_batch <= 0 || train_batch <= 0 || seq <= 0 || iters <= 0 || warmup < 0)
    throw std::runtime_error("batch sizes, --seq-len and --iters must be positive");
  if (sgemm_n < 0 || !(ceiling_s >= 0) || ceiling_rounds <= 0)
    throw std::runtime_error("--sgemm-size and --ceiling-seconds must be >= 0, --ceiling-rounds positive");
  RunReport report("bench", args);
  report.set_config(effective_options(vm));
  core::set_num_threads(threads);
  const char* coretype = std::getenv("OPENBLAS_CORETYPE");
  std::printf("ladder bench: %d threads, BLAS %s, OPENBLAS_CORETYPE=%s\n", core::num_threads(), core::blas_config(),
              coretype ? coretype : "(unset)");

  auto model = core::load_backbone(model_dir);
  const auto& cfg = model->config();
  if (seq > cfg.max_positions) throw std::runtime_error("--seq-len exceeds the model's " + std::to_string(cfg.max_positions) + " positions");

  // A step cannot run its GEMMs faster than BLAS runs the same GEMMs alone: the ceiling is the best of
  // the model's own shapes at the benchmarked B*T, so that no fraction below can honestly exceed 100%.
  const GemmCeiling ceiling = measure_gemm_ceiling(
      transformer_gemm_shapes(cfg.hidden, cfg.intermediate, cfg.arch == core::Architecture::gpt2,
                              {fwd_batch * seq, train_batch * seq}, sgemm_n),
      ceiling_s, 3, ceiling_rounds);
  const GemmTiming& top = ceiling.shapes[ceiling.best];
  const double blas = ceiling.gflops();
  const CpuPeak peak = theoretical_peak(core::num_threads());
  const std::string rows = fwd_batch == train_batch ? std::to_string(fwd_batch * seq)
                                                    : std::to_string(fwd_batch * seq) + " and " + std::to_string(train_batch * seq);
  std::printf("BLAS ceiling: %.1f GFLOP/s, the fastest of %zu sgemm shapes (the model's linear layers at %s rows:\n"
              "  forward, input and weight gradients%s), %d rounds of >= %.2f s each; fastest: %s (%s)\n",
              blas, ceiling.shapes.size(), rows.c_str(),
              sgemm_n > 0 ? (", and " + std::to_string(sgemm_n) + "^3").c_str() : "", ceiling_rounds, ceiling_s,
              top.shape.text().c_str(), top.shape.role.c_str());
  for (const auto& t : ceiling.shapes)
    std::printf("    %-20s %7.1f GFLOP/s  %s\n", t.shape.text().c_str(), t.gflops, t.shape.role.c_str());
  std::printf("theoretical peak: %.1f GFLOP/s = %s\n", peak.gflops(), peak.derivation.c_str());
  std::printf("BLAS ceiling / peak: %.0f%%\n", 100 * blas / peak.gflops());

  // Forward (inference: nothing saved, no dropout).
  Inputs fin = random_inputs(fwd_batch, seq, cfg.vocab_size, 1);
  if (with_head && !model->has_lm_head()) throw std::runtime_error("--lm-head: " + model->name() + " has no language-model head");
  core::Tensor fwd_logits;
  std::vector<double> fwd_ms;
  for (int i = 0; i < warmup + iters; ++i) {
    auto t0 = std::chrono::steady_clock::now();
    model->forward(fin.batch, core::StepOptions{});
    if (with_head) model->lm_logits(fwd_logits);
    if (i >= warmup) fwd_ms.push_back(ms_since(t0));
  }
  const double fwd_flops = model->forward_flops(fwd_batch, seq) +
                           (with_head ? 2.0 * fwd_batch * seq * double(cfg.hidden) * cfg.vocab_size : 0.0);
  const double f_ms = median(fwd_ms);
  auto fwd = phase_json(f_ms, double(fwd_batch) * seq, fwd_flops, blas, peak.gflops());

  fwd_logits = core::Tensor();
  // Training step: every backbone weight trainable, or the method's parameters.
  std::vector<std::unique_ptr<adapters::Method>> methods;
  if (method == "full") model->params().set_all_trainable(true);
  else methods = adapters::apply_methods(*model, method, adapters::MethodConfig{});
  model->params().allocate_gradients();
  TrainStep step(model.get());
  Inputs tin = random_inputs(train_batch, seq, cfg.vocab_size, 2);
  std::vector<double> train_ms;
  size_t allocs_before = 0;
  float loss = 0;
  for (int i = 0; i < warmup + iters; ++i) {
    if (i == warmup) allocs_before = core::MemoryTracker::instance().allocations();
    auto t0 = std::chrono::steady_clock::now();
    loss = step.run(tin, uint64_t(i));
    if (i >= warmup) train_ms.push_back(ms_since(t0));
  }
  const size_t step_allocs = core::MemoryTracker::instance().allocations() - allocs_before;
  const double train_flops = 3.0 * model->forward_flops(train_batch, seq);
  const double t_ms = median(train_ms);
  auto train = phase_json(t_ms, double(train_batch) * seq, train_flops, blas, peak.gflops());
  train["allocations_in_timed_steps"] = step_allocs;
  train["last_loss"] = loss;

  std::printf("\n%-34s %10s %12s %10s %9s %9s\n", "phase", "median ms", "tokens/s", "GFLOP/s", "of BLAS", "of peak");
  for (const auto& [name, ms, j] : {std::tuple{"forward B=" + std::to_string(fwd_batch) + " T=" + std::to_string(seq), f_ms, &fwd},
                                    std::tuple{"train step B=" + std::to_string(train_batch) + " T=" + std::to_string(seq), t_ms, &train}}) {
    std::printf("%-34s %10.1f %12.0f %10.1f %8.0f%% %8.0f%%\n", name.c_str(), ms, (*j)["tokens_per_s"].get<double>(),
                (*j)["gflops"].get<double>(), 100 * (*j)["fraction_of_blas_ceiling"].get<double>(),
                100 * (*j)["fraction_of_peak"].get<double>());
    if ((*j)["fraction_of_blas_ceiling"].get<double>() > 1.0)
      std::printf("warning: %s is faster than the BLAS ceiling: the ceiling missed a faster GEMM (or the machine was busy "
                  "while it was timed); raise --ceiling-rounds\n", name.c_str());
  }
  std::printf("(FLOPs: matmuls only, forward = 2*N*sum(linear weights) + 4*B*T^2*d per layer; training step = 3x forward)\n");
  std::printf("allocations during the %d timed training steps: %zu\n\n%s", iters, step_allocs, core::memory_table().c_str());

  nlohmann::json shapes = nlohmann::json::array();
  for (const auto& t : ceiling.shapes)
    shapes.push_back({{"shape", t.shape.text()}, {"role", t.shape.role}, {"gflops", t.gflops}, {"runs", t.runs}});
  report.metrics()["blas_ceiling"] = {{"gflops", blas}, {"shape", top.shape.text()}, {"role", top.shape.role}, {"shapes", shapes}};
  report.metrics()["theoretical_peak"] = {{"gflops", peak.gflops()}, {"cores", peak.cores}, {"ghz", peak.ghz},
                                          {"flops_per_cycle", peak.flops_per_cycle}, {"isa", peak.isa},
                                          {"derivation", peak.derivation}};
  report.metrics()["forward"] = fwd;
  report.metrics()["train_step"] = train;
  report.metrics()["model"] = model_dir;
  report.timings()["median_step_ms"] = t_ms;
  report.timings()["tokens_per_s"] = train["tokens_per_s"];
  report.write(report_path);
  return 0;
}

}  // namespace ladder::apps
