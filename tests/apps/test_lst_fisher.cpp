// LST's Fisher initialisation (method.lst_init = fisher) on a tiny random BERT: the importance equals the
// sum of squared per-example gradients computed independently (every parameter trainable, full-sequence
// forward) and, element-wise, by central differences; the pass leaves the registry as it found it
// (trainable set, gradient buffer, value tensors, tracked memory); a run's side network from Fisher differs
// from magnitude's and is the same for the same seed; option and data errors name the option; `ladder train`
// runs the pass while `ladder eval` of its checkpoint and `ladder cache` skip it.
#include <gtest/gtest.h>

#include "tests/support/error_of.h"

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <functional>
#include <random>

#include "adapters/heads/sequence_classification_head.h"
#include "adapters/lst/side_init.h"
#include "apps/commands.h"
#include "apps/train/fisher_init.h"
#include "apps/train/run_model.h"
#include "apps/train/train_config.h"
#include "core/tensor/memory.h"
#include "data/padded_batch.h"
#include "tests/support/tiny_batch.h"

using namespace ladder;

namespace {

namespace fs = std::filesystem;

using ladder::test::error_of;

// Three examples of different lengths, with segment ids, labels 0/1.
data::GlueSplit three_examples() {
  data::GlueSplit s;
  s.task = data::GlueTask::sst2;
  std::mt19937 g(11);
  for (int len : {5, 8, 4}) {
    data::Encoding e;
    for (int t = 0; t < len; ++t) {
      e.input_ids.push_back(int32_t(g() % 50));
      e.token_type_ids.push_back(t < len / 2 ? 0 : 1);
      e.attention_mask.push_back(1);
    }
    s.enc.push_back(e);
    s.labels.push_back(int32_t(s.enc.size() % 2));
    s.scores.push_back(0.0f);
  }
  s.enc[0].input_ids[2] = s.enc[0].input_ids[3];  // a repeated token: its embedding row gets one gradient
  return s;
}

struct TinyModel {
  std::unique_ptr<core::Backbone> bb;
  std::unique_ptr<adapters::SequenceClassificationHead> head;
  explicit TinyModel(const std::string& dir) : bb(core::load_backbone(dir)) {
    head = std::make_unique<adapters::SequenceClassificationHead>(*bb, 2, 5);
    // A head far from its N(0, 0.02) init, so the backbone's gradients are well above float32 noise.
    test::fill_randn(bb->params().at("classifier.weight"), 17, 1.0f);
  }
};

const std::string& tiny_bert_dir() {
  static const std::string dir = test::write_tiny_bert(test::temp_dir("lst_fisher_model"), 23);
  return dir;
}

TEST(LstFisher, EqualsSquaredPerExampleGradientsComputedIndependently) {
  const data::GlueSplit ex = three_examples();
  TinyModel m(tiny_bert_dir());
  const auto names = adapters::pruning_importance_names(*m.bb);
  ASSERT_EQ(names.size(), 1u + 6u * 2u);
  const adapters::ImportanceMap F = apps::fisher_importance(*m.bb, *m.head, ex, names);

  // Reference: every parameter trainable, the full last layer (no first-token shortcut), one example at a time.
  TinyModel ref(tiny_bert_dir());
  auto& reg = ref.bb->params();
  reg.set_all_trainable(true);
  reg.allocate_gradients();
  adapters::ImportanceMap R;
  for (const auto& n : names) R[n].assign(size_t(reg.at(n).value.numel()), 0.0f);
  data::PaddedBatch b;
  core::StepOptions save;
  save.save_for_backward = true;
  for (size_t i = 0; i < ex.size(); ++i) {
    data::pad_batch(b, ex.enc, {i}, 0);
    reg.zero_grad();
    ref.bb->forward(b.view(), save);
    ref.head->forward(b.view(), save);
    ref.head->backward(&ex.labels[i], &ex.scores[i], 1.0f);
    for (const auto& n : names) {
      const auto g = reg.at(n).grad.to_floats();
      for (size_t k = 0; k < g.size(); ++k) R[n][k] += g[k] * g[k];
    }
  }
  for (const auto& n : names) {
    ASSERT_EQ(F.at(n).size(), R[n].size()) << n;
    const float scale = *std::max_element(R[n].begin(), R[n].end());
    ASSERT_GT(scale, 1e-6f) << n << ": no gradient reached it";
    for (size_t k = 0; k < R[n].size(); ++k)
      ASSERT_NEAR(F.at(n)[k], R[n][k], 1e-4f * scale) << n << "[" << k << "]";
  }

  // Central differences of each example's loss for the largest entries of a few tensors:
  // sum_n ((L_n(w + e) - L_n(w - e)) / 2e)^2.
  auto loss_of = [&](size_t i) {
    data::pad_batch(b, ex.enc, {i}, 0);
    ref.bb->forward(b.view(), core::StepOptions{});
    ref.head->forward(b.view(), core::StepOptions{});
    return double(ref.head->loss(&ex.labels[i], &ex.scores[i]));
  };
  for (const std::string n : {"embeddings.word_embeddings.weight", "encoder.layer.0.attention.self.query.weight",
                              "encoder.layer.1.intermediate.dense.weight", "encoder.layer.1.output.dense.weight"}) {
    const auto& f = F.at(n);
    std::vector<size_t> idx(f.size());
    for (size_t k = 0; k < idx.size(); ++k) idx[k] = k;
    std::partial_sort(idx.begin(), idx.begin() + 3, idx.end(), [&](size_t a, size_t c) { return f[a] > f[c]; });
    float* w = reg.at(n).w();
    for (int j = 0; j < 3; ++j) {
      const size_t k = idx[size_t(j)];
      const float eps = 1e-2f, w0 = w[k];
      double fd = 0;
      for (size_t i = 0; i < ex.size(); ++i) {
        w[k] = w0 + eps;
        const double up = loss_of(i);
        w[k] = w0 - eps;
        const double down = loss_of(i);
        w[k] = w0;
        const double d = (up - down) / (2.0 * double(eps));
        fd += d * d;
      }
      EXPECT_NEAR(f[k], fd, 3e-2 * std::max(double(f[k]), fd) + 1e-6) << n << "[" << k << "]";
    }
  }
}

TEST(LstFisher, LeavesTheRegistryAsItFoundIt) {
  const data::GlueSplit ex = three_examples();
  TinyModel m(tiny_bert_dir());
  auto& reg = m.bb->params();
  reg.allocate_gradients();  // as a run has it: the head's gradients
  struct Snapshot {
    std::string name;
    bool trainable;
    const void* storage;
    const void* data;
    core::DType dtype;
    std::vector<float> value;
  };
  auto snapshot = [&] {
    std::vector<Snapshot> s;
    for (const auto& p : reg.all())
      s.push_back({p->name, p->trainable, p->value.storage().get(), p->value.raw(), p->value.dtype(), p->value.to_floats()});
    return s;
  };
  auto& mem = core::MemoryTracker::instance();
  const auto bytes = [&](core::MemCategory c) { return mem.current(0, c); };
  const auto before = snapshot();
  const size_t grad_numel = size_t(reg.gradient_buffer().numel()), n_trainable = reg.trainable().size();
  const size_t frozen = bytes(core::MemCategory::frozen_weights), trainable = bytes(core::MemCategory::trainable_weights),
               gradients = bytes(core::MemCategory::gradients);

  const auto names = adapters::pruning_importance_names(*m.bb);
  const auto F1 = apps::fisher_importance(*m.bb, *m.head, ex, names);

  const auto after = snapshot();
  ASSERT_EQ(after.size(), before.size());
  for (size_t i = 0; i < before.size(); ++i) {
    SCOPED_TRACE(before[i].name);
    EXPECT_EQ(after[i].trainable, before[i].trainable);
    EXPECT_EQ(after[i].storage, before[i].storage);  // the very tensor it had (a memory map stays one)
    EXPECT_EQ(after[i].data, before[i].data);
    EXPECT_EQ(after[i].dtype, before[i].dtype);
    EXPECT_EQ(after[i].value, before[i].value);
    if (!before[i].trainable) {
      EXPECT_FALSE(reg.at(before[i].name).grad.defined());
    }
  }
  EXPECT_EQ(reg.trainable().size(), n_trainable);
  EXPECT_EQ(size_t(reg.gradient_buffer().numel()), grad_numel);
  for (float g : reg.gradient_buffer().to_floats()) ASSERT_EQ(g, 0.0f);
  EXPECT_EQ(bytes(core::MemCategory::frozen_weights), frozen);
  EXPECT_EQ(bytes(core::MemCategory::trainable_weights), trainable);
  EXPECT_EQ(bytes(core::MemCategory::gradients), gradients);

  // Deterministic: a second pass gives the same bits.
  const auto F2 = apps::fisher_importance(*m.bb, *m.head, ex, names);
  for (const auto& n : names) EXPECT_EQ(F1.at(n), F2.at(n)) << n;
}

TEST(LstFisher, PassErrorsAreClear) {
  TinyModel m(tiny_bert_dir());
  const auto names = adapters::pruning_importance_names(*m.bb);
  data::GlueSplit none;
  EXPECT_NE(error_of([&] { apps::fisher_importance(*m.bb, *m.head, none, names); }).find("at least one example"), std::string::npos);
  EXPECT_NE(error_of([&] { apps::fisher_importance(*m.bb, *m.head, three_examples(), {"no.such.weight"}); }).find("no.such.weight"),
            std::string::npos);
  // A trainable name is refused, and the names made trainable before it are frozen again.
  EXPECT_NE(error_of([&] { apps::fisher_importance(*m.bb, *m.head, three_examples(), {names[1], "classifier.weight"}); })
                .find("'classifier.weight' is trainable"),
            std::string::npos);
  EXPECT_FALSE(m.bb->params().at(names[1]).trainable);
  auto gpt = test::tiny_backbone(true, "lst_fisher_gpt", 3);
  EXPECT_NE(error_of([&] { adapters::pruning_importance_names(*gpt); }).find("BERT"), std::string::npos);
}

// The tiny BERT with a vocab.txt and SST-2-style TSVs, for whole runs.
struct TinyRun {
  std::string root, model, data;
  TinyRun() {
    root = test::temp_dir("lst_fisher_run");
    model = root + "/model";
    data = root + "/sst2";
    fs::create_directories(model);
    fs::create_directories(data);
    test::write_tiny_bert(model, 7);
    const std::vector<std::string> words = {"good", "great", "fine", "happy", "nice", "bad", "awful", "dull", "sad", "poor",
                                            "the", "a", "film", "movie", "is", "was", "very", "plot"};
    {
      std::ofstream v(model + "/vocab.txt");
      for (const char* s : {"[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"}) v << s << "\n";
      for (auto& w : words) v << w << "\n";
    }
    std::ofstream(model + "/tokenizer_config.json") << R"({"do_lower_case": true})" << "\n";
    std::mt19937 g(3);
    auto write = [&](const std::string& path, int n) {
      std::ofstream out(path);
      out << "sentence\tlabel\n";
      for (int i = 0; i < n; ++i) {
        const int label = int(g() % 2);
        out << words[10 + g() % 8] << " " << words[10 + g() % 8] << " " << words[size_t(label ? 0 : 5) + g() % 5] << " \t" << label
            << "\n";
      }
    };
    write(data + "/train.tsv", 48);
    write(data + "/dev.tsv", 16);
  }
  std::vector<std::string> args(const std::string& init, const std::string& seed, std::vector<std::string> extra = {},
                                const std::string& samples = "8") const {
    std::vector<std::string> a = {"--model.dir", model, "--task.name", "sst2", "--task.data_dir", data, "--task.max_length", "12",
                                  "--method.name", "lst", "--method.lst_reduction", "2", "--method.lst_init", init,
                                  "--method.lst_fisher_samples", samples, "--train.seed", seed, "--train.threads", "2",
                                  "--train.batch_size", "8", "--train.max_steps", "3", "--log.every", "1000"};
    a.insert(a.end(), extra.begin(), extra.end());
    return a;
  }
  apps::TrainConfig config(const std::string& init, const std::string& seed) const {
    apps::TrainConfig c;
    EXPECT_TRUE(apps::parse_train_config(args(init, seed), c));
    return c;
  }
};

const TinyRun& tiny_run() {
  static TinyRun r;
  return r;
}

std::map<std::string, std::vector<float>> side_values(const apps::RunModel& m) {
  std::map<std::string, std::vector<float>> out;
  for (const auto& p : m.backbone->params().all())
    if (p->name.rfind("side.layer.", 0) == 0) out[p->name] = p->value.to_floats();
  return out;
}

TEST(LstFisher, RunInitDiffersFromMagnitudeAndIsDeterministic) {
  const TinyRun& r = tiny_run();
  auto& mem = core::MemoryTracker::instance();
  auto build = [&](const std::string& init, const std::string& seed, std::string* out = nullptr) {
    testing::internal::CaptureStdout();
    apps::RunModel m = apps::build_run_model(r.config(init, seed));
    const std::string printed = testing::internal::GetCapturedStdout();
    if (out) *out = printed;
    return m;
  };
  const size_t frozen0 = mem.current(0, core::MemCategory::frozen_weights);
  apps::RunModel magnitude = build("magnitude", "42");
  const size_t frozen_magnitude = mem.current(0, core::MemCategory::frozen_weights) - frozen0;
  std::string printed;
  apps::RunModel fisher = build("fisher", "42", &printed);
  const size_t frozen_fisher = mem.current(0, core::MemCategory::frozen_weights) - frozen0 - frozen_magnitude;
  EXPECT_NE(printed.find("LST Fisher importance: 8 examples in"), std::string::npos) << printed;
  EXPECT_EQ(frozen_fisher, frozen_magnitude);  // the pass left no frozen copies behind

  // Same parameters, trainable as with magnitude, and gradients only for them.
  auto trainable_names = [](const apps::RunModel& m) {
    std::vector<std::string> n;
    for (auto* p : m.backbone->params().trainable()) n.push_back(p->name);
    return n;
  };
  EXPECT_EQ(trainable_names(fisher), trainable_names(magnitude));
  EXPECT_EQ(fisher.backbone->params().gradient_buffer().numel(), magnitude.backbone->params().gradient_buffer().numel());

  const auto vf = side_values(fisher), vm = side_values(magnitude);
  ASSERT_EQ(vf.size(), vm.size());
  size_t differing = 0;
  for (const auto& [n, v] : vf) differing += v != vm.at(n);
  EXPECT_GT(differing, 0u) << "Fisher chose the same rows as magnitude everywhere";
  EXPECT_EQ(side_values(build("fisher", "42")), vf);  // the same seed gives the same initialisation
  EXPECT_NE(side_values(build("fisher", "7")), vf);   // another seed draws other examples
}

TEST(LstFisher, SampleCountErrorsNameTheOption) {
  const TinyRun& r = tiny_run();
  for (const std::string bad : {"0", "-3"}) {
    apps::TrainConfig c;
    const std::string e = error_of([&] { apps::parse_train_config(r.args("fisher", "42", {}, bad), c); });
    EXPECT_NE(e.find("method.lst_fisher_samples: must be positive, got " + bad), std::string::npos) << e;
  }
  apps::TrainConfig c = r.config("fisher", "42");
  // A config built in code is checked as the parser checks it.
  std::string e = error_of([&] { c.method_config.set("lst_fisher_samples", 0); });
  EXPECT_NE(e.find("method.lst_fisher_samples: must be positive"), std::string::npos) << e;

  // A training split without rows: nothing to draw.
  const std::string empty = r.root + "/empty";
  fs::create_directories(empty);
  std::ofstream(empty + "/train.tsv") << "sentence\tlabel\n";
  fs::copy_file(r.data + "/dev.tsv", empty + "/dev.tsv", fs::copy_options::overwrite_existing);
  c = r.config("fisher", "42");
  c.data_dir = empty;
  e = error_of([&] { apps::build_run_model(c); });
  EXPECT_NE(e.find("method.lst_fisher_samples"), std::string::npos) << e;
  EXPECT_NE(e.find("has no rows"), std::string::npos) << e;
}

TEST(LstFisher, TrainRunsAndEvalAndCacheSkipThePass) {
  const TinyRun& r = tiny_run();
  const std::string dir = r.root + "/run";
  testing::internal::CaptureStdout();
  const int rc = apps::train_command(r.args("fisher", "42", {"--checkpoint.dir", dir}));
  const std::string out = testing::internal::GetCapturedStdout();
  ASSERT_EQ(rc, 0) << out;
  EXPECT_NE(out.find("LST Fisher importance: 8 examples"), std::string::npos) << out;
  testing::internal::CaptureStdout();
  const int rc_eval = apps::eval_command({"--checkpoint", dir, "--threads", "2"});
  const std::string eval_out = testing::internal::GetCapturedStdout();
  ASSERT_EQ(rc_eval, 0) << eval_out;
  EXPECT_EQ(eval_out.find("LST Fisher importance"), std::string::npos) << eval_out;
  // `ladder cache` stores backbone activations only: no pass either.
  testing::internal::CaptureStdout();
  const int rc_cache = apps::cache_command(r.args("fisher", "42", {"--cache.dir", r.root + "/cache", "--checkpoint.dir", dir}));
  const std::string cache_out = testing::internal::GetCapturedStdout();
  ASSERT_EQ(rc_cache, 0) << cache_out;
  EXPECT_EQ(cache_out.find("LST Fisher importance"), std::string::npos) << cache_out;
}

}  // namespace
