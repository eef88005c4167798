// `ladder bench`: times the backbone forward (inference) and a full training step (forward + backward
// over every weight, classification head on the pooled output for BERT, LM loss for GPT-2) and puts
// them beside the sgemm GFLOP/s this machine reaches in the same run.
#include <chrono>
#include <cstdio>
#include <random>
#include <stdexcept>

#include "apps/commands.h"
#include "apps/options.h"
#include "apps/report.h"
#include "core/backbones/bert_model.h"
#include "core/backbones/gpt2_model.h"
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
    if (auto* bert = dynamic_cast<core::BertModel*>(m)) {
      if (!bert->has_pooler()) throw std::runtime_error("bench's BERT training step needs a pooler");
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
    if (auto* bert = dynamic_cast<core::BertModel*>(model)) {
      core::Tensor::ensure(logits, {b.B, 2}, core::DType::f32, core::MemCategory::activations);
      core::Tensor::ensure(dlogits, {b.B, 2}, core::DType::f32, core::MemCategory::workspace);
      core::Tensor::ensure(dpooled, {b.B, model->config().hidden}, core::DType::f32, core::MemCategory::workspace);
      head.forward(logits.data<float>(), bert->pooled().data<float>(), b.B);
      float loss = core::cross_entropy_forward(logits.data<float>(), in.labels.data(), b.B, 2, -100);
      core::cross_entropy_backward(dlogits.data<float>(), logits.data<float>(), in.labels.data(), b.B, 2, -100, 1.0f);
      head.backward(dpooled.data<float>(), dlogits.data<float>(), bert->pooled().data<float>(), b.B);
      bert->backward(nullptr, dpooled.data<float>(), {});
      return loss;
    }
    auto* gpt = dynamic_cast<core::Gpt2Model*>(model);
    const int N = b.rows(), V = model->config().vocab_size;
    targets.resize(size_t(N));
    core::causal_lm_targets(targets.data(), b.input_ids, b.attention_mask, b.B, b.T, -100);
    gpt->lm_logits(logits);
    core::Tensor::ensure(dlogits, {N, V}, core::DType::f32, core::MemCategory::workspace);
    float loss = core::cross_entropy_forward(logits.data<float>(), targets.data(), N, V, -100);
    core::cross_entropy_backward(dlogits.data<float>(), logits.data<float>(), targets.data(), N, V, -100, 1.0f);
    gpt->backward_from_logits(dlogits.data<float>());
    return loss;
  }
};

nlohmann::json phase_json(double ms, double tokens, double flops, double sgemm) {
  const double gflops = flops / (ms * 1e-3) / 1e9;
  return {{"ms", ms}, {"tokens_per_s", tokens / (ms * 1e-3)}, {"gflops", gflops}, {"fraction_of_sgemm", gflops / sgemm}};
}

}  // namespace

int bench_command(const std::vector<std::string>& args) {
  std::string model_dir, report_path;
  int threads = 0, fwd_batch = 0, train_batch = 0, seq = 0, warmup = 0, iters = 0, sgemm_n = 0;
  po::options_description desc("ladder bench");
  desc.add_options()("model", po::value<std::string>(&model_dir)->required(), "Hugging Face model directory")(
      "forward-batch", po::value<int>(&fwd_batch)->default_value(32), "sequences per forward pass")(
      "train-batch", po::value<int>(&train_batch)->default_value(16), "sequences per training step")(
      "seq-len", po::value<int>(&seq)->default_value(128), "tokens per sequence")(
      "warmup", po::value<int>(&warmup)->default_value(2), "untimed iterations first")(
      "iters", po::value<int>(&iters)->default_value(10), "timed iterations (the median is reported)")(
      "sgemm-size", po::value<int>(&sgemm_n)->default_value(2048), "n of the n x n x n sgemm that sets the ceiling");
  add_common_options(desc, threads, report_path);
  po::variables_map vm;
  if (!parse_options("bench", args, desc, vm)) return 0;
  if (fwd_batch <= 0 || train_batch <= 0 || seq <= 0 || iters <= 0 || warmup < 0)
    throw std::runtime_error("batch sizes, --seq-len and --iters must be positive");
  RunReport report("bench", args);
  report.set_config(effective_options(vm));
  core::set_num_threads(threads);
  const char* coretype = std::getenv("OPENBLAS_CORETYPE");
  std::printf("ladder bench: %d threads, BLAS %s, OPENBLAS_CORETYPE=%s\n", core::num_threads(), core::blas_config(),
              coretype ? coretype : "(unset)");

  const double sgemm = core::measure_sgemm_gflops(sgemm_n, 3);
  std::printf("sgemm %dx%dx%d: %.1f GFLOP/s (the ceiling below)\n", sgemm_n, sgemm_n, sgemm_n, sgemm);

  auto model = core::load_backbone(model_dir);
  const auto& cfg = model->config();
  if (seq > cfg.max_positions) throw std::runtime_error("--seq-len exceeds the model's " + std::to_string(cfg.max_positions) + " positions");

  // Forward (inference: nothing saved, no dropout).
  Inputs fin = random_inputs(fwd_batch, seq, cfg.vocab_size, 1);
  std::vector<double> fwd_ms;
  for (int i = 0; i < warmup + iters; ++i) {
    auto t0 = std::chrono::steady_clock::now();
    model->forward(fin.batch, core::StepOptions{});
    if (i >= warmup) fwd_ms.push_back(ms_since(t0));
  }
  const double fwd_flops = model->forward_flops(fwd_batch, seq);
  const double f_ms = median(fwd_ms);
  auto fwd = phase_json(f_ms, double(fwd_batch) * seq, fwd_flops, sgemm);

  // Training step: every backbone weight trainable.
  model->params().set_all_trainable(true);
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
  auto train = phase_json(t_ms, double(train_batch) * seq, train_flops, sgemm);
  train["allocations_in_timed_steps"] = step_allocs;
  train["last_loss"] = loss;

  std::printf("\n%-34s %10s %12s %10s %9s\n", "phase", "median ms", "tokens/s", "GFLOP/s", "of sgemm");
  std::printf("%-34s %10.1f %12.0f %10.1f %8.0f%%\n", ("forward B=" + std::to_string(fwd_batch) + " T=" + std::to_string(seq)).c_str(),
              f_ms, fwd["tokens_per_s"].get<double>(), fwd["gflops"].get<double>(), 100 * fwd["fraction_of_sgemm"].get<double>());
  std::printf("%-34s %10.1f %12.0f %10.1f %8.0f%%\n",
              ("train step B=" + std::to_string(train_batch) + " T=" + std::to_string(seq)).c_str(), t_ms,
              train["tokens_per_s"].get<double>(), train["gflops"].get<double>(), 100 * train["fraction_of_sgemm"].get<double>());
  std::printf("(FLOPs: matmuls only, forward = 2*N*sum(linear weights) + 4*B*T^2*d per layer; training step = 3x forward)\n");
  std::printf("allocations during the %d timed training steps: %zu\n\n%s", iters, step_allocs, core::memory_table().c_str());

  report.metrics()["sgemm_gflops"] = sgemm;
  report.metrics()["forward"] = fwd;
  report.metrics()["train_step"] = train;
  report.metrics()["model"] = model_dir;
  report.timings()["median_step_ms"] = t_ms;
  report.timings()["tokens_per_s"] = train["tokens_per_s"];
  report.write(report_path);
  return 0;
}

}  // namespace ladder::apps
