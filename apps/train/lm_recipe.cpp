#include "apps/train/lm_recipe.h"

#include <algorithm>
#include <cmath>
#include <fstream>
#include <sstream>
#include <stdexcept>

#include "adapters/method.h"
#include "core/kernels/losses.h"
#include "data/text_encoder.h"
#include "data/tokenizer/text_tokenizer.h"

namespace ladder::apps {

namespace {

constexpr int32_t kIgnore = -100;

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error(path + ": cannot open text file");
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::string unescape(const std::string& s) {
  std::string out;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '\\' && i + 1 < s.size() && (s[i + 1] == 'n' || s[i + 1] == 't' || s[i + 1] == '\\')) {
      out += s[i + 1] == 'n' ? '\n' : s[i + 1] == 't' ? '\t' : '\\';
      ++i;
    } else {
      out += s[i];
    }
  }
  return out;
}

// Examples as ids with their targets: `first_target` is the first position whose next token is a target
// (0 for plain text; the response's first token's predecessor for pairs).
struct LmExamples {
  std::vector<std::vector<int32_t>> ids;
  std::vector<int> first_target;
  std::vector<int64_t> lengths;
  long targets = 0;
};

LmExamples text_blocks(const std::string& path, const data::TextEncoder& tok, int block, int max_rows) {
  const std::string text = read_file(path);
  const std::vector<int32_t> all = tok.encode(text, nullptr, 0).input_ids;
  if (all.size() < 2) throw std::runtime_error(path + ": fewer than two tokens of text");
  LmExamples e;
  // Non-overlapping blocks; the last, shorter one too (it is padded in its batch).
  for (size_t s = 0; s + 1 < all.size(); s += size_t(block)) {
    if (max_rows > 0 && int(e.ids.size()) >= max_rows) break;
    const size_t n = std::min(size_t(block), all.size() - s);
    if (n < 2) break;
    e.ids.emplace_back(all.begin() + long(s), all.begin() + long(s + n));
    e.first_target.push_back(0);
    e.lengths.push_back(int64_t(n));
    e.targets += long(n) - 1;
  }
  return e;
}

LmExamples pair_rows(const std::string& path, const data::TextEncoder& tok, int32_t eos, int block, int max_rows) {
  std::ifstream in(path);
  if (!in) throw std::runtime_error(path + ": cannot open prompt/response file");
  LmExamples e;
  std::string line;
  int lineno = 0;
  while (std::getline(in, line)) {
    ++lineno;
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (line.empty()) continue;
    if (max_rows > 0 && int(e.ids.size()) >= max_rows) break;
    const size_t tab = line.find('\t');
    if (tab == std::string::npos)
      throw std::runtime_error(path + ":" + std::to_string(lineno) + ": expected prompt<TAB>response");
    // The pair is tokenized as one text (as it will be seen) and the prompt alone gives the boundary.
    const std::string prompt_text = unescape(line.substr(0, tab));
    const int prompt = int(tok.encode(prompt_text, nullptr, 0).input_ids.size());
    std::vector<int32_t> ids = tok.encode(prompt_text + unescape(line.substr(tab + 1)), nullptr, 0).input_ids;
    if (eos >= 0) ids.push_back(eos);
    if (int(ids.size()) > block) ids.resize(size_t(block));
    if (prompt < 1 || int(ids.size()) <= prompt)
      throw std::runtime_error(path + ":" + std::to_string(lineno) + ": no response tokens within task.max_length " +
                               std::to_string(block));
    e.first_target.push_back(prompt - 1);
    e.lengths.push_back(int64_t(ids.size()));
    e.targets += long(ids.size()) - prompt;
    e.ids.push_back(std::move(ids));
  }
  if (e.ids.empty()) throw std::runtime_error(path + ": no prompt/response pairs");
  return e;
}

class LmRecipe : public Recipe {
 public:
  LmRecipe(const TrainConfig& cfg, RunModel& m) : Recipe(m), cfg_(cfg) {
    const auto tok = data::TextEncoder::for_model(cfg.model_dir, m.backbone->config().arch);
    pad_ = tok.pad_id();
    n_prompt_ = adapters::total_prompt_tokens(m.methods);
    const int block = cfg.max_length - n_prompt_;
    if (block < 4) throw std::runtime_error("task.max_length leaves no room for text after the prompt tokens");
    const int32_t eos = m.backbone->config().eos_token_id;
    if (cfg.text_format == "pairs") {
      train_ = pair_rows(cfg.train_text, tok, eos, block, cfg.max_train_examples);
      dev_ = pair_rows(cfg.eval_text, tok, eos, block, cfg.max_eval_examples);
    } else {
      train_ = text_blocks(cfg.train_text, tok, block, cfg.max_train_examples);
      dev_ = text_blocks(cfg.eval_text, tok, block, cfg.max_eval_examples);
    }
    for (auto& l : train_.lengths) l += n_prompt_;
  }

  std::string describe() const override {
    return "causal LM (" + cfg_.text_format + "): " + std::to_string(train_.ids.size()) + " training examples, " +
           std::to_string(train_.targets) + " target tokens, from " + cfg_.train_text + "; perplexity on " +
           std::to_string(dev_.targets) + " tokens of " + cfg_.eval_text;
  }
  std::string task_name() const override { return "lm"; }
  std::string primary_metric() const override { return "perplexity"; }
  bool higher_is_better() const override { return false; }
  const std::vector<int64_t>& train_lengths() const override { return train_.lengths; }
  size_t dev_rows() const override { return dev_.ids.size(); }

  MicroStep micro_step(const std::vector<size_t>& rows, const core::StepOptions& opt, float grad_scale) override {
    const core::TokenBatch b = build(train_, rows);
    model_.backbone->forward(b, opt);
    const core::Backbone::LmLoss l = model_.backbone->lm_loss(targets_.data(), kIgnore, /*backward=*/true, grad_scale);
    MicroStep r;
    r.loss = l.mean;
    r.tokens = real_tokens_;
    return r;
  }

 protected:
  EvalResult evaluate_dev() override {
    double sum = 0;
    long count = 0;
    core::StepOptions opt;
    const size_t bs = size_t(std::max(1, cfg_.eval_batch_size));
    for (size_t s = 0; s < dev_.ids.size(); s += bs) {
      std::vector<size_t> rows;
      for (size_t i = s; i < std::min(dev_.ids.size(), s + bs); ++i) rows.push_back(i);
      const core::TokenBatch b = build(dev_, rows);
      model_.backbone->forward(b, opt);
      const core::Backbone::LmLoss l = model_.backbone->lm_loss(targets_.data(), kIgnore, /*backward=*/false, 1.0f);
      sum += l.mean * double(l.count);
      count += l.count;
    }
    EvalResult r;
    r.loss = count ? sum / double(count) : 0.0;
    r.metrics["perplexity"] = std::exp(r.loss);
    r.metrics["tokens"] = double(count);
    return r;
  }

 private:
  // The rows right-padded to the longest, soft-prompt tokens first, and their next-token targets.
  core::TokenBatch build(const LmExamples& ex, const std::vector<size_t>& rows) {
    int T = 0;
    for (size_t i : rows) T = std::max(T, int(ex.ids[i].size()) + n_prompt_);
    const int B = int(rows.size());
    ids_.assign(size_t(B) * T, pad_);
    mask_.assign(size_t(B) * T, 0.0f);
    targets_.assign(size_t(B) * T, kIgnore);
    real_tokens_ = 0;
    const int V = model_.backbone->config().vocab_size;
    for (int r = 0; r < B; ++r) {
      const auto& src = ex.ids[rows[size_t(r)]];
      int32_t* row = ids_.data() + size_t(r) * T;
      for (int p = 0; p < n_prompt_; ++p) row[p] = V + p;  // prompt tuning's soft tokens: ids past the vocabulary
      std::copy(src.begin(), src.end(), row + n_prompt_);
      const int n = n_prompt_ + int(src.size());
      std::fill(mask_.begin() + long(size_t(r) * T), mask_.begin() + long(size_t(r) * T + n), 1.0f);
      for (int t = n_prompt_ + ex.first_target[rows[size_t(r)]]; t + 1 < n; ++t) targets_[size_t(r) * T + t] = row[t + 1];
      real_tokens_ += n;
    }
    return core::TokenBatch{B, T, ids_.data(), nullptr, mask_.data()};
  }

  const TrainConfig& cfg_;
  LmExamples train_, dev_;
  int32_t pad_ = 0;
  int n_prompt_ = 0;
  std::vector<int32_t> ids_, targets_;
  std::vector<float> mask_;
  long real_tokens_ = 0;
};

}  // namespace

std::unique_ptr<Recipe> make_lm_recipe(const TrainConfig& cfg, RunModel& m) { return std::make_unique<LmRecipe>(cfg, m); }

}  // namespace ladder::apps
