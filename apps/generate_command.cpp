// `ladder generate`: text from a decoder (a GGUF file: its weights and its tokenizer), greedy or top-p
// sampling, through the backbone's KV cache, so a user can see the model is right and how fast it runs.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <numeric>
#include <random>
#include <stdexcept>

#include "apps/commands.h"
#include "apps/options.h"
#include "apps/report.h"
#include "core/backbones/backbone.h"
#include "core/backbones/gguf_model.h"
#include "core/kernels/threading.h"
#include "data/tokenizer/chat_format.h"
#include "data/tokenizer/gguf_tokenizer.h"

namespace ladder::apps {

namespace {

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

// The next token from one row of logits: the argmax with temperature 0, else a draw from the smallest set
// of most likely tokens whose probability reaches top_p (nucleus sampling) at that temperature.
int32_t pick_token(const float* logits, int V, float temperature, float top_p, std::mt19937_64& rng) {
  if (temperature <= 0.0f) return int32_t(std::max_element(logits, logits + V) - logits);
  const float m = *std::max_element(logits, logits + V);
  std::vector<std::pair<float, int32_t>> p(static_cast<size_t>(V));
  double sum = 0;
  for (int i = 0; i < V; ++i) {
    const float e = std::exp((logits[i] - m) / temperature);
    p[size_t(i)] = {e, i};
    sum += e;
  }
  std::sort(p.begin(), p.end(), [](auto& a, auto& b) { return a.first > b.first; });
  double keep = 0;
  size_t n = 0;
  while (n < p.size() && (n == 0 || keep < top_p * sum)) keep += p[n++].first;
  std::uniform_real_distribution<double> u(0.0, keep);
  double r = u(rng);
  for (size_t i = 0; i < n; ++i) {
    r -= p[i].first;
    if (r <= 0) return p[i].second;
  }
  return p[n - 1].second;
}

}  // namespace

int generate_command(const std::vector<std::string>& args) {
  std::string model_path, prompt, report_path;
  int threads = 0, max_new = 0;
  float temperature = 0, top_p = 1;
  uint64_t seed = 0;
  bool chat = false, quiet = false, ignore_eos = false;
  po::options_description desc("ladder generate");
  desc.add_options()("model", po::value<std::string>(&model_path)->required(), "GGUF model file (Llama family: SmolLM2, Gemma 3)")(
      "prompt", po::value<std::string>(&prompt)->required(), "the text to continue (with --chat: the user's message)")(
      "chat", po::bool_switch(&chat), "wrap the prompt in the model's chat template as one user turn, and stop at the end of the reply")(
      "max-new-tokens", po::value<int>(&max_new)->default_value(64), "tokens to generate at most")(
      "temperature", po::value<float>(&temperature)->default_value(0.0f), "0: greedy; > 0: sample at this temperature")(
      "top-p", po::value<float>(&top_p)->default_value(1.0f), "sampling: keep the most likely tokens up to this probability mass")(
      "seed", po::value<uint64_t>(&seed)->default_value(0), "sampling seed")(
      "quiet", po::bool_switch(&quiet), "print only the generated text")(
      "ignore-eos", po::bool_switch(&ignore_eos), "generate --max-new-tokens tokens even past end-of-text (for timing)");
  add_common_options(desc, threads, report_path);
  po::variables_map vm;
  if (!parse_options("generate", args, desc, vm)) return 0;
  if (max_new <= 0) throw std::runtime_error("--max-new-tokens must be positive");
  if (top_p <= 0 || top_p > 1) throw std::runtime_error("--top-p must be in (0, 1]");
  if (temperature < 0) throw std::runtime_error("--temperature must be >= 0");
  if (!core::is_gguf_file(model_path))
    throw std::runtime_error(model_path + ": not a GGUF file (generate reads the weights and the tokenizer from one)");
  core::set_num_threads(threads);
  RunReport report("generate", args);
  report.set_config(effective_options(vm));

  const auto t_load = std::chrono::steady_clock::now();
  const core::GgufFile gguf = core::GgufFile::open(model_path);
  auto tok = data::make_gguf_tokenizer(gguf);
  auto model = core::load_backbone(model_path);
  const double load_s = seconds_since(t_load);
  if (!model->has_kv_cache()) throw std::runtime_error(model_path + ": " + model->name() + " cannot decode with a KV cache");

  std::vector<int32_t> ids;
  std::vector<int32_t> stops;
  if (tok->eos_id() >= 0) stops.push_back(tok->eos_id());
  if (chat) {
    const data::ChatFormat fmt = data::chat_format_of(gguf);
    const std::string text = data::render_chat(fmt, {{"user", prompt}}, /*add_generation_prompt=*/true);
    ids = tok->encode(text);  // the template writes its own BOS where the model wants one
    for (const char* end : {"<|im_end|>", "<end_of_turn>"})
      if (int32_t id = tok->token_id(end); id >= 0) stops.push_back(id);
  } else {
    if (tok->add_bos() && tok->bos_id() >= 0) ids.push_back(tok->bos_id());
    const auto body = tok->encode(prompt);
    ids.insert(ids.end(), body.begin(), body.end());
  }
  if (ids.empty()) throw std::runtime_error("--prompt encodes to no tokens");
  if (ignore_eos) stops.clear();
  const int V = model->config().vocab_size;
  const int capacity = std::min(int(ids.size()) + max_new, model->config().max_positions);
  if (int(ids.size()) >= capacity)
    throw std::runtime_error("the prompt's " + std::to_string(ids.size()) + " tokens fill the model's context of " +
                             std::to_string(model->config().max_positions));
  if (!quiet)
    std::fprintf(stderr, "ladder generate: %s (%s, %d layers, d=%d), loaded in %.1f s; prompt %zu tokens, %s, %d threads\n",
                 model_path.c_str(), model->name().c_str(), model->config().layers, model->config().hidden, load_s,
                 ids.size(), temperature > 0 ? "top-p sampling" : "greedy", core::num_threads());

  std::mt19937_64 rng(seed);
  model->begin_decoding(1, capacity);
  core::Tensor logits;
  const auto t0 = std::chrono::steady_clock::now();
  model->decode(ids.data(), 1, int(ids.size()), logits);
  const double prefill_s = seconds_since(t0);
  std::vector<int32_t> out;
  std::string printed;
  const auto t1 = std::chrono::steady_clock::now();
  while (int(out.size()) < max_new && int(ids.size() + out.size()) < capacity + 1) {
    const int32_t next = pick_token(logits.data<float>(), V, temperature, top_p, rng);
    if (std::find(stops.begin(), stops.end(), next) != stops.end()) break;
    out.push_back(next);
    // Print what the tokens so far decode to beyond what is already printed (a multi-byte character
    // may span tokens: hold back until it is complete).
    const std::string text = tok->decode(out);
    if (text.size() > printed.size() && text.compare(0, printed.size(), printed) == 0 &&
        text.find("\xEF\xBF\xBD", printed.size()) == std::string::npos) {
      std::fputs(text.c_str() + printed.size(), stdout);
      std::fflush(stdout);
      printed = text;
    }
    if (int(ids.size() + out.size()) >= capacity) break;
    model->decode(&out.back(), 1, 1, logits);
  }
  const double decode_s = seconds_since(t1);
  const std::string text = tok->decode(out);
  if (text.size() > printed.size()) std::fputs(text.c_str() + std::min(printed.size(), text.size()), stdout);
  std::fputs("\n", stdout);
  const double tps = out.size() > 1 ? double(out.size() - 1) / decode_s : 0.0;
  if (!quiet)
    std::fprintf(stderr, "ladder generate: %zu new tokens; prefill %.1f tokens/s (%.3f s), decode %.1f tokens/s\n",
                 out.size(), double(ids.size()) / prefill_s, prefill_s, tps);
  report.metrics()["prompt_tokens"] = ids.size();
  report.metrics()["new_tokens"] = out.size();
  report.metrics()["text"] = text;
  report.timings()["load_s"] = load_s;
  report.timings()["prefill_tokens_per_s"] = double(ids.size()) / prefill_s;
  report.timings()["decode_tokens_per_s"] = tps;
  report.write(report_path);
  return 0;
}

}  // namespace ladder::apps
