// `ladder perplexity`: a decoder's perplexity on a text file, by the protocol scripts/hf_decoder_reference.py
// uses with transformers, so the two agree number for number: the file's bytes as one text, tokenized
// without BOS; full windows of --ctx tokens every --stride tokens (the tail that fills no window is dropped);
// in each window every position after the first predicts the next token (with stride < ctx, only the
// tokens no earlier window scored); ppl = exp(mean NLL).
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <sstream>
#include <stdexcept>

#include "apps/commands.h"
#include "apps/options.h"
#include "apps/report.h"
#include "apps/train/run_checkpoint.h"
#include "apps/train/run_model.h"
#include "core/backbones/backbone.h"
#include "core/kernels/threading.h"
#include "data/text_encoder.h"

namespace ladder::apps {

int perplexity_command(const std::vector<std::string>& args) {
  std::string model_path, text_path, report_path, ckpt_arg;
  int threads = 0, ctx = 0, stride = 0, batch = 0;
  long max_tokens = 0;
  po::options_description desc("ladder perplexity");
  desc.add_options()("model", po::value<std::string>(&model_path)->default_value(""), "decoder: a GGUF file or a Hugging Face directory")(
      "checkpoint", po::value<std::string>(&ckpt_arg)->default_value(""), "instead of --model: a task lm run's checkpoint (file or run folder: its best) with its methods")(
      "text", po::value<std::string>(&text_path)->required(), "text file (e.g. <shared>/data/text/wikitext-2-raw/wiki.test.raw)")(
      "ctx", po::value<int>(&ctx)->default_value(512), "tokens per window")(
      "stride", po::value<int>(&stride)->default_value(0), "tokens between window starts (0: ctx, non-overlapping)")(
      "batch-size", po::value<int>(&batch)->default_value(4), "windows per forward pass")(
      "max-tokens", po::value<long>(&max_tokens)->default_value(0), "use only the first N tokens of the text (0: all)");
  add_common_options(desc, threads, report_path);
  po::variables_map vm;
  if (!parse_options("perplexity", args, desc, vm)) return 0;
  if (stride <= 0) stride = ctx;
  if (ctx < 2 || stride > ctx || batch <= 0) throw std::runtime_error("--ctx must be >= 2, --stride in [1, ctx], --batch-size > 0");
  core::set_num_threads(threads);
  RunReport report("perplexity", args);
  report.set_config(effective_options(vm));

  if (model_path.empty() == ckpt_arg.empty()) throw std::runtime_error("give --model or --checkpoint (one of them)");
  RunModel run;
  std::unique_ptr<core::Backbone> plain;
  if (!ckpt_arg.empty()) {
    const std::string path = resolve_checkpoint(ckpt_arg, "best");
    const core::CheckpointData ck = core::read_checkpoint(path);
    TrainConfig cfg = config_from_checkpoint(ck, path, {});
    if (cfg.task != "lm") throw std::runtime_error(path + ": a " + cfg.task + " run, not a language-model (task lm) one");
    run = build_run_model(cfg);
    load_trainable_params(run, ck, path);
    model_path = cfg.model_dir;
    std::printf("ladder perplexity: %s (step %lld, method %s)\n", path.c_str(), (long long)ck.step, cfg.method.c_str());
  } else {
    plain = core::load_backbone(model_path);
  }
  core::Backbone* model = plain ? plain.get() : run.backbone.get();
  if (!model->has_lm_head()) throw std::runtime_error(model_path + ": " + model->name() + " has no language-model head");
  if (ctx > model->config().max_positions)
    throw std::runtime_error("--ctx " + std::to_string(ctx) + " exceeds the model's context of " + std::to_string(model->config().max_positions));
  std::ifstream in(text_path, std::ios::binary);
  if (!in) throw std::runtime_error(text_path + ": cannot open text file");
  std::stringstream ss;
  ss << in.rdbuf();
  const auto tok = data::TextEncoder::for_model(model_path, model->config().arch);
  const auto t_tok = std::chrono::steady_clock::now();
  std::vector<int32_t> ids = tok.encode_plain(ss.str());
  const double tok_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t_tok).count();
  if (max_tokens > 0 && long(ids.size()) > max_tokens) ids.resize(size_t(max_tokens));
  std::vector<long> starts;
  for (long s = 0; s + ctx <= long(ids.size()); s += stride) starts.push_back(s);
  if (starts.empty()) throw std::runtime_error(text_path + ": " + std::to_string(ids.size()) + " tokens fill no window of " + std::to_string(ctx));
  std::printf("ladder perplexity: %s (%s) on %s: %zu tokens, %zu windows of %d (stride %d), %d threads\n", model_path.c_str(),
              model->name().c_str(), text_path.c_str(), ids.size(), starts.size(), ctx, stride, core::num_threads());

  double nll = 0;
  long counted = 0;
  std::vector<int32_t> batch_ids, targets;
  const auto t0 = std::chrono::steady_clock::now();
  for (size_t w0 = 0; w0 < starts.size(); w0 += size_t(batch)) {
    const int B = int(std::min(starts.size() - w0, size_t(batch)));
    batch_ids.assign(size_t(B) * ctx, 0);
    targets.assign(size_t(B) * ctx, -100);
    for (int b = 0; b < B; ++b) {
      const size_t k = w0 + size_t(b);
      const long s = starts[k];
      std::copy_n(ids.begin() + s, ctx, batch_ids.begin() + long(size_t(b) * ctx));
      const int first = (k == 0 || stride >= ctx) ? 1 : ctx - stride;
      for (int j = first; j < ctx; ++j) targets[size_t(b) * ctx + size_t(j - 1)] = ids[size_t(s + j)];
    }
    core::StepOptions opt;
    model->forward({B, ctx, batch_ids.data(), nullptr, nullptr}, opt);
    const core::Backbone::LmLoss l = model->lm_loss(targets.data(), -100, /*backward=*/false, 1.0f);
    nll += l.mean * double(l.count);
    counted += l.count;
    const double el = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    std::fprintf(stderr, "\rwindow %zu/%zu  ppl %.4f  %.0f tokens/s", w0 + size_t(B), starts.size(), std::exp(nll / double(counted)),
                 double((w0 + size_t(B)) * size_t(ctx)) / el);
  }
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  const double ppl = std::exp(nll / double(counted));
  std::fprintf(stderr, "\n");
  std::printf("perplexity %.4f over %ld predicted tokens (mean NLL %.6f); %.1f s, %.0f tokens/s (tokenizing %.2f s)\n", ppl, counted,
              nll / double(counted), secs, double(starts.size() * size_t(ctx)) / secs, tok_s);
  report.metrics()["perplexity"] = ppl;
  report.metrics()["predicted_tokens"] = counted;
  report.metrics()["text_tokens"] = ids.size();
  report.timings()["forward_s"] = secs;
  report.timings()["tokens_per_s"] = double(starts.size() * size_t(ctx)) / secs;
  report.write(report_path);
  return 0;
}

}  // namespace ladder::apps
