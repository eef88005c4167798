// core/optim against PyTorch: AdamW + HF schedule + clip_grad_norm_ step by step on the committed fixture
// (tests/golden/make_optim_fixtures.py), HF schedule values at boundary steps (hard-coded from transformers
// 5.23.0), gradient clipping against a double reference, the weight-decay rule, resume from saved state,
// the thread-partitioned update, "no allocation after the first step", and the Optimizer interface (state
// named per parameter with slot and dtype, make_optimizer).
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <functional>
#include <memory>
#include <random>
#include <stdexcept>
#include <string>
#include <vector>

#include "core/io/safetensors.h"
#include "core/kernels/threading.h"
#include "core/modules/parameter.h"
#include "core/optim/adamw.h"
#include "core/optim/grad_clip.h"
#include "core/optim/lr_schedule.h"
#include "core/optim/optimizer.h"
#include "core/tensor/memory.h"
#include "tests/support/test_paths.h"

using namespace ladder::core;

namespace {

const std::vector<std::string> kNames = {"encoder.dense.weight", "encoder.dense.bias", "encoder.LayerNorm.weight"};
constexpr int kSteps = 5;

void expect_error(const std::function<void()>& f, const std::vector<std::string>& parts) {
  try {
    f();
  } catch (const std::exception& e) {
    const std::string msg = e.what();
    for (const auto& p : parts) EXPECT_NE(msg.find(p), std::string::npos) << "message lacks '" << p << "': " << msg;
    return;
  }
  ADD_FAILURE() << "expected an error mentioning '" << (parts.empty() ? "" : parts[0]) << "'";
}

// Element-wise |got - want| <= rel * |want| + abs_floor; reports the worst element.
void expect_close(const std::vector<float>& got, const std::vector<float>& want, double rel, double abs_floor,
                  const std::string& what) {
  ASSERT_EQ(got.size(), want.size()) << what;
  double worst = 0;
  size_t at = 0;
  bool ok = true;
  for (size_t i = 0; i < got.size(); i++) {
    const double d = std::fabs(double(got[i]) - want[i]);
    if (d > rel * std::fabs(double(want[i])) + abs_floor) ok = false;
    if (d > worst) worst = d, at = i;
  }
  EXPECT_TRUE(ok) << what << ": max |diff| " << worst << " at " << at << " (got " << got[at] << ", want "
                  << want[at] << ")";
}

struct Fixture {
  std::shared_ptr<SafetensorsFile> file = SafetensorsFile::open(ladder::test::golden_dir() + "/optim_adamw.safetensors");
  Tensor t(const std::string& name) const { return file->tensor(name, MemCategory::workspace); }
  std::vector<float> f(const std::string& name) const { return t(name).to_floats(); }
};

// The three fixture parameters (trainable, from `<scenario>/init`) plus a frozen one that must not move.
void build_registry(ParameterRegistry& reg, const Fixture& fx, const std::string& scenario) {
  reg.add("encoder.embeddings.word_embeddings.weight",
          Tensor::from_floats(std::vector<float>(10, 0.5f), {5, 2}, MemCategory::frozen_weights));
  for (const auto& n : kNames) {
    reg.add(n, fx.t(scenario + "/init/" + n).clone(MemCategory::workspace));
    reg.set_trainable(n, true);
  }
  reg.allocate_gradients();
}

void set_grads(ParameterRegistry& reg, const Fixture& fx, const std::string& key) {
  for (const auto& n : kNames) reg.at(n).grad.copy_from(fx.t(key + "/" + n));
}

}  // namespace

// ---------------------------------------------------------------------------------------------------------
// AdamW vs torch.optim.AdamW

TEST(AdamW, MatchesTorchWithLinearWarmupAndClipping) {
  Fixture fx;
  ParameterRegistry reg;
  build_registry(reg, fx, "main");
  AdamWConfig cfg;
  cfg.lr = 1e-2;
  cfg.weight_decay = 0.1;
  AdamW opt(reg, cfg);
  ASSERT_EQ(opt.parameters().size(), 3u);
  EXPECT_TRUE(opt.decays(0));
  EXPECT_FALSE(opt.decays(1));  // .bias
  EXPECT_FALSE(opt.decays(2));  // LayerNorm.weight
  LrSchedule sched(ScheduleKind::linear, cfg.lr, 2, 5);
  const auto norms = fx.f("main/norm");
  const auto lrs = fx.f("main/lr");
  for (int k = 0; k < kSteps; k++) {
    const std::string ks = std::to_string(k);
    set_grads(reg, fx, "main/grad." + ks);
    const float norm = clip_grad_norm(reg, 1.0f);
    EXPECT_NEAR(norm, norms[k], 1e-6 * norms[k]) << "step " << k;
    for (const auto& n : kNames)
      expect_close(reg.at(n).grad.to_floats(), fx.f("main/clipped." + ks + "/" + n), 1e-6, 1e-9,
                   "clipped grad " + n + " step " + ks);
    const double lr = sched.lr_at(k);
    EXPECT_FLOAT_EQ(float(lr), lrs[k]);
    opt.step(lr);
    EXPECT_EQ(opt.step_count(), k + 1);
    for (const auto& n : kNames)
      expect_close(reg.at(n).value.to_floats(), fx.f("main/param." + ks + "/" + n), 1e-6, 0,
                   n + " after step " + ks);
  }
  for (const auto& [name, t] : opt.state_tensors()) {
    const auto slash = name.rfind('/');
    const std::string key = "main/" + name.substr(slash + 1) + "/" + name.substr(0, slash);
    expect_close(t->to_floats(), fx.f(key), 1e-6, 1e-12, name);
  }
  for (float v : reg.at("encoder.embeddings.word_embeddings.weight").value.to_floats()) EXPECT_EQ(v, 0.5f);
}

TEST(AdamW, MatchesTorchWithSmallBeta1AndCosine) {
  // beta1 = 0.3: torch's lerp takes its other form (weight 0.7 >= 0.5).
  Fixture fx;
  ParameterRegistry reg;
  build_registry(reg, fx, "alt");
  AdamWConfig cfg;
  cfg.lr = 3e-2;
  cfg.beta1 = 0.3;
  cfg.beta2 = 0.95;
  cfg.eps = 1e-6;
  cfg.weight_decay = 0.05;
  AdamW opt(reg, cfg);
  LrSchedule sched(ScheduleKind::cosine, cfg.lr, 1, 5);
  const auto lrs = fx.f("alt/lr");
  for (int k = 0; k < kSteps; k++) {
    const std::string ks = std::to_string(k);
    set_grads(reg, fx, "alt/grad." + ks);
    EXPECT_FLOAT_EQ(float(sched.lr_at(k)), lrs[k]);
    opt.step(sched.lr_at(k));
    for (const auto& n : kNames)
      expect_close(reg.at(n).value.to_floats(), fx.f("alt/param." + ks + "/" + n), 1e-6, 0, n + " after step " + ks);
  }
  for (const auto& [name, t] : opt.state_tensors()) {
    const auto slash = name.rfind('/');
    expect_close(t->to_floats(), fx.f("alt/" + name.substr(slash + 1) + "/" + name.substr(0, slash)), 1e-6, 1e-12,
                 name);
  }
}

TEST(AdamW, ResumesFromSavedStateAndStepCount) {
  // Three steps, hand state + step count to a fresh optimizer, two more steps: the fixture's final values.
  Fixture fx;
  ParameterRegistry reg;
  build_registry(reg, fx, "main");
  AdamWConfig cfg;
  cfg.lr = 1e-2;
  cfg.weight_decay = 0.1;
  LrSchedule sched(ScheduleKind::linear, cfg.lr, 2, 5);
  auto first = std::make_unique<AdamW>(reg, cfg);
  for (int k = 0; k < 3; k++) {
    set_grads(reg, fx, "main/grad." + std::to_string(k));
    clip_grad_norm(reg, 1.0f);
    first->step(sched.lr_at(k));
  }
  std::vector<std::pair<std::string, std::vector<float>>> saved;
  for (const auto& [name, t] : first->state_tensors()) saved.emplace_back(name, t->to_floats());
  const int64_t saved_step = first->step_count();
  first.reset();

  AdamW second(reg, cfg);
  auto state = second.state_tensors();
  ASSERT_EQ(state.size(), saved.size());
  for (size_t i = 0; i < state.size(); i++) {
    ASSERT_EQ(state[i].first, saved[i].first);
    state[i].second->copy_from(Tensor::from_floats(saved[i].second, state[i].second->shape(), MemCategory::workspace));
  }
  second.set_step_count(saved_step);
  for (int k = 3; k < kSteps; k++) {
    set_grads(reg, fx, "main/grad." + std::to_string(k));
    clip_grad_norm(reg, 1.0f);
    second.step(sched.lr_at(k));
  }
  for (const auto& n : kNames)
    expect_close(reg.at(n).value.to_floats(), fx.f("main/param.4/" + n), 1e-6, 0, n + " after resume");
}

// a.weight [3, 4] and a.bias [4] trainable with a frozen [7] between them; gradients allocated.
static void add_weight_frozen_bias(ParameterRegistry& reg) {
  reg.add("a.weight", Tensor::zeros({3, 4}, DType::f32, MemCategory::workspace));
  reg.add("frozen.weight", Tensor::zeros({7}, DType::f32, MemCategory::workspace));
  reg.add("a.bias", Tensor::zeros({4}, DType::f32, MemCategory::workspace));
  reg.set_trainable("a.weight", true);
  reg.set_trainable("a.bias", true);
  reg.allocate_gradients();
}

TEST(AdamW, StateIsNamedContiguousAndAccounted) {
  ParameterRegistry reg;
  add_weight_frozen_bias(reg);
  const size_t before = MemoryTracker::instance().current(0, MemCategory::optimizer_state);
  {
    AdamW opt(reg, AdamWConfig{});
    EXPECT_EQ(MemoryTracker::instance().current(0, MemCategory::optimizer_state) - before, 2 * 16 * sizeof(float));
    auto st = opt.state_tensors();
    ASSERT_EQ(st.size(), 4u);
    EXPECT_EQ(st[0].first, "a.weight/exp_avg");
    EXPECT_EQ(st[1].first, "a.weight/exp_avg_sq");
    EXPECT_EQ(st[2].first, "a.bias/exp_avg");
    EXPECT_EQ(st[3].first, "a.bias/exp_avg_sq");
    EXPECT_EQ(st[0].second->shape(), (Shape{3, 4}));
    EXPECT_EQ(st[2].second->shape(), (Shape{4}));
    for (auto& [n, t] : st) EXPECT_EQ(t->category(), MemCategory::optimizer_state) << n;
    // Laid out like the gradient buffer: a.bias's exp_avg follows a.weight's.
    EXPECT_EQ(st[2].second->data<float>(), st[0].second->data<float>() + 12);
    EXPECT_EQ(opt.exp_avg_buffer().numel(), 16);
  }
  EXPECT_EQ(MemoryTracker::instance().current(0, MemCategory::optimizer_state), before);
}

TEST(AdamW, NoAllocationAfterFirstStep) {
  ParameterRegistry reg;
  std::mt19937 rng(7);
  std::normal_distribution<float> nd;
  for (int i = 0; i < 4; i++) {
    std::vector<float> v(static_cast<size_t>(9000 + 1000 * i));
    for (auto& x : v) x = nd(rng);
    const std::string name = "layer." + std::to_string(i) + ".weight";
    reg.add(name, Tensor::from_floats(v, {int64_t(v.size())}, MemCategory::workspace));
    reg.set_trainable(name, true);
  }
  reg.allocate_gradients();
  float* g = reg.gradient_buffer().data<float>();
  for (int64_t i = 0; i < reg.gradient_buffer().numel(); i++) g[i] = nd(rng);
  AdamW opt(reg, AdamWConfig{});
  LrSchedule sched(ScheduleKind::cosine, 1e-3, 2, 10);
  clip_grad_norm(reg, 1.0f);
  opt.step(sched.lr_at(0));
  const size_t allocs = MemoryTracker::instance().allocations();
  for (int k = 1; k < 6; k++) {
    clip_grad_norm(reg, 1.0f);
    global_grad_norm(reg);
    opt.step(sched.lr_at(k));
  }
  EXPECT_EQ(MemoryTracker::instance().allocations(), allocs);
}

TEST(AdamW, ThreadPartitionedUpdateEqualsSingleThread) {
  // Sizes straddle the per-thread ranges (and one is empty-ish), total above the parallel threshold.
  const std::vector<int64_t> sizes = {20001, 7, 1, 30000, 333};
  auto run = [&](int threads) {
    set_num_threads(threads);
    ParameterRegistry reg;
    std::mt19937 rng(11);
    std::normal_distribution<float> nd;
    for (size_t i = 0; i < sizes.size(); i++) {
      std::vector<float> v(static_cast<size_t>(sizes[i]));
      for (auto& x : v) x = nd(rng);
      std::string name = std::string("p").append(std::to_string(i));
      name += i == 1 ? ".bias" : ".weight";
      reg.add(name, Tensor::from_floats(v, {sizes[i]}, MemCategory::workspace));
      reg.set_trainable(name, true);
    }
    reg.allocate_gradients();
    AdamW opt(reg, AdamWConfig{});
    for (int k = 0; k < 3; k++) {
      float* g = reg.gradient_buffer().data<float>();
      for (int64_t i = 0; i < reg.gradient_buffer().numel(); i++) g[i] = nd(rng);
      opt.step(1e-2);
    }
    std::vector<float> out;
    for (Parameter* p : reg.trainable())
      for (float v : p->value.to_floats()) out.push_back(v);
    for (float v : opt.exp_avg_sq_buffer().to_floats()) out.push_back(v);
    return out;
  };
  const int saved = num_threads();
  const auto one = run(1), two = run(2), three = run(3);
  set_num_threads(saved);
  ASSERT_EQ(one.size(), two.size());
  size_t mismatches2 = 0, mismatches3 = 0;
  for (size_t i = 0; i < one.size(); i++) mismatches2 += one[i] != two[i], mismatches3 += one[i] != three[i];
  EXPECT_EQ(mismatches2, 0u);
  EXPECT_EQ(mismatches3, 0u);
}

TEST(AdamW, WeightDecayRuleFollowsHuggingFace) {
  for (const char* n : {"bert.encoder.layer.0.attention.self.query.bias", "bert.embeddings.LayerNorm.weight",
                        "bert.encoder.layer.0.output.LayerNorm.bias", "transformer.h.0.ln_1.weight",
                        "transformer.ln_f.weight", "model.layers.0.input_layernorm.weight",
                        "model.decoder.final_layer_norm.weight", "model.norm.weight"})
    EXPECT_FALSE(default_applies_weight_decay(n)) << n;
  for (const char* n : {"bert.encoder.layer.0.attention.self.query.weight", "transformer.wte.weight",
                        "transformer.h.0.attn.c_attn.weight", "side.adapter.down.weight"})
    EXPECT_TRUE(default_applies_weight_decay(n)) << n;
}

TEST(AdamW, CustomDecayPredicate) {
  ParameterRegistry reg;
  reg.add("x.bias", Tensor::from_floats({1.0f, 2.0f}, {2}, MemCategory::workspace));
  reg.add("x.weight", Tensor::from_floats({1.0f, 2.0f}, {2}, MemCategory::workspace));
  reg.set_all_trainable(true);
  reg.allocate_gradients();  // zero gradients: only weight decay moves a parameter (Adam's m = 0)
  AdamWConfig cfg;
  cfg.weight_decay = 0.5;
  cfg.applies_weight_decay = [](const std::string& n) { return n == "x.bias"; };
  AdamW opt(reg, cfg);
  opt.step(0.1);
  const auto b = reg.at("x.bias").value.to_floats(), w = reg.at("x.weight").value.to_floats();
  EXPECT_FLOAT_EQ(b[1], 2.0f * float(1.0 - 0.1 * 0.5));
  EXPECT_EQ(w[1], 2.0f);
}

TEST(AdamW, ErrorsNameTheProblem) {
  ParameterRegistry reg;
  reg.add("enc.w", Tensor::zeros({2}, DType::f32, MemCategory::workspace));
  reg.set_trainable("enc.w", true);
  AdamW opt(reg, AdamWConfig{});
  expect_error([&] { opt.step(1e-3); }, {"'enc.w'", "allocate_gradients"});
  AdamWConfig bad;
  bad.beta2 = 1.0;
  expect_error([&] { AdamW(reg, bad); }, {"beta parameter at index 1"});
  bad = AdamWConfig{};
  bad.lr = -1;
  expect_error([&] { AdamW(reg, bad); }, {"learning rate"});
  expect_error([&] { opt.set_step_count(-1); }, {"step count"});
}

// ---------------------------------------------------------------------------------------------------------
// The Optimizer interface and make_optimizer

TEST(Optimizer, AdamWStateIsNamedPerParameterWithSlotAndDtype) {
  ParameterRegistry reg;
  add_weight_frozen_bias(reg);
  std::unique_ptr<Optimizer> opt = make_optimizer("adamw", reg, OptimizerConfig{});
  ASSERT_NE(dynamic_cast<AdamW*>(opt.get()), nullptr);
  EXPECT_EQ(opt->kind(), "adamw");
  ASSERT_EQ(opt->parameters().size(), 2u);
  const Parameter* w = &reg.at("a.weight");
  const Parameter* b = &reg.at("a.bias");
  EXPECT_EQ(opt->parameters()[0], w);
  EXPECT_EQ(opt->parameters()[1], b);
  const auto st = opt->state();
  ASSERT_EQ(st.size(), 4u);
  const std::vector<std::string> names = {"a.weight/exp_avg", "a.weight/exp_avg_sq", "a.bias/exp_avg", "a.bias/exp_avg_sq"};
  const std::vector<std::string> slots = {"exp_avg", "exp_avg_sq", "exp_avg", "exp_avg_sq"};
  const std::vector<const Parameter*> owners = {w, w, b, b};
  const auto pairs = static_cast<AdamW&>(*opt).state_tensors();
  for (size_t i = 0; i < st.size(); i++) {
    EXPECT_EQ(st[i].name, names[i]);
    EXPECT_EQ(st[i].slot, slots[i]);
    EXPECT_EQ(st[i].param, owners[i]) << names[i];
    EXPECT_EQ(st[i].name, st[i].param->name + "/" + st[i].slot);
    EXPECT_EQ(st[i].dtype, DType::f32);
    ASSERT_NE(st[i].tensor, nullptr);
    EXPECT_EQ(st[i].tensor->dtype(), st[i].dtype);
    EXPECT_EQ(st[i].tensor->shape(), st[i].param->value.shape()) << names[i];
    EXPECT_EQ(st[i].tensor->category(), MemCategory::optimizer_state);
    EXPECT_EQ(pairs[i].first, st[i].name);
    EXPECT_EQ(pairs[i].second, st[i].tensor);  // the same live views
  }
  opt->set_step_count(7);
  EXPECT_EQ(opt->step_count(), 7);
  expect_error([&] { opt->set_step_count(-1); }, {"adamw", "step count"});
}

TEST(Optimizer, MakeOptimizerAdamWMatchesDirectAdamWBitForBit) {
  // The factory passes every hyperparameter through: same trajectory as AdamW built by hand.
  Fixture fx;
  OptimizerConfig cfg;
  cfg.lr = 3e-2;
  cfg.beta1 = 0.3;
  cfg.beta2 = 0.95;
  cfg.eps = 1e-6;
  cfg.weight_decay = 0.05;
  cfg.applies_weight_decay = [](const std::string& n) { return n != "encoder.dense.weight"; };
  auto run = [&](bool factory) {
    ParameterRegistry reg;
    build_registry(reg, fx, "alt");
    std::unique_ptr<Optimizer> opt =
        factory ? make_optimizer("adamw", reg, cfg) : std::make_unique<AdamW>(reg, AdamWConfig{cfg});
    for (int k = 0; k < kSteps; k++) {
      set_grads(reg, fx, "alt/grad." + std::to_string(k));
      opt->step(cfg.lr * (k + 1) / kSteps);
    }
    std::vector<float> out;
    for (Parameter* p : reg.trainable())
      for (float v : p->value.to_floats()) out.push_back(v);
    for (const auto& s : opt->state())
      for (float v : s.tensor->to_floats()) out.push_back(v);
    return out;
  };
  const auto a = run(true), b = run(false);
  ASSERT_EQ(a.size(), b.size());
  EXPECT_EQ(std::memcmp(a.data(), b.data(), a.size() * sizeof(float)), 0);
}

TEST(Optimizer, UnknownKindListsTheValidOnes) {
  ParameterRegistry reg;
  expect_error([&] { make_optimizer("adamw8bit", reg, OptimizerConfig{}); }, {"'adamw8bit'", "valid: adamw"});
  expect_error([&] { make_optimizer("", reg, OptimizerConfig{}); }, {"unknown optimizer ''", "adamw"});
  EXPECT_EQ(optimizer_kinds(), (std::vector<std::string>{"adamw"}));
  // Bad hyperparameters still get torch's wording through the factory.
  OptimizerConfig bad;
  bad.beta1 = -0.1;
  expect_error([&] { make_optimizer("adamw", reg, bad); }, {"beta parameter at index 0"});
}

// ---------------------------------------------------------------------------------------------------------
// Schedules: values from transformers 5.23.0 (base lr 3e-4, read from optimizer.param_groups[0]["lr"] before
// update k, i.e. base_lr * lr_lambda(k)).

TEST(LrSchedule, MatchesHuggingFaceAtBoundaries) {
  struct Case {
    ScheduleKind kind;
    int64_t warmup, total;
    std::vector<std::pair<int64_t, double>> values;
  };
  const std::vector<Case> cases = {
      {ScheduleKind::constant, 10, 100,
       {{0, 0.0}, {1, 2.9999999999999997e-05}, {5, 0.00015}, {9, 0.00027}, {10, 0.0003}, {11, 0.0003},
        {100, 0.0003}, {150, 0.0003}}},
      {ScheduleKind::linear, 10, 100,
       {{0, 0.0}, {1, 2.9999999999999997e-05}, {5, 0.00015}, {9, 0.00027}, {10, 0.0003},
        {11, 0.00029666666666666665}, {37, 0.00020999999999999998}, {50, 0.00016666666666666666},
        {99, 3.3333333333333333e-06}, {100, 0.0}, {101, 0.0}, {150, 0.0}}},
      {ScheduleKind::cosine, 10, 100,
       {{0, 0.0}, {1, 2.9999999999999997e-05}, {5, 0.00015}, {9, 0.00027}, {10, 0.0003},
        {11, 0.00029990862405286433}, {37, 0.00023816778784387094}, {50, 0.00017604722665003956},
        {99, 9.137594713563568e-08}, {100, 0.0}, {101, 9.137594713563568e-08}, {150, 0.0001760472266500395}}},
      {ScheduleKind::linear, 0, 7,
       {{0, 0.0003}, {1, 0.0002571428571428571}, {3, 0.0001714285714285714}, {6, 4.285714285714285e-05},
        {7, 0.0}, {8, 0.0}}},
      {ScheduleKind::cosine, 0, 7,
       {{0, 0.0003}, {1, 0.0002851453301853628}, {3, 0.00018337814009344714}, {6, 1.4854669814637143e-05},
        {7, 0.0}, {8, 1.4854669814637127e-05}}},
      {ScheduleKind::cosine, 4, 4, {{0, 0.0}, {3, 0.000225}, {4, 0.0003}, {5, 0.0}, {6, 0.0003}}},
      {ScheduleKind::linear, 4, 4, {{0, 0.0}, {3, 0.000225}, {4, 0.0}, {5, 0.0}}},
  };
  for (const auto& c : cases) {
    LrSchedule s(c.kind, 3e-4, c.warmup, c.total);
    for (const auto& [step, want] : c.values)
      EXPECT_DOUBLE_EQ(s.lr_at(step), want)
          << schedule_kind_name(c.kind) << " warmup " << c.warmup << " total " << c.total << " step " << step;
  }
}

TEST(LrSchedule, ParsesNamesAndRejectsUnknown) {
  EXPECT_EQ(parse_schedule_kind("constant"), ScheduleKind::constant);
  EXPECT_EQ(parse_schedule_kind("linear"), ScheduleKind::linear);
  EXPECT_EQ(parse_schedule_kind("cosine"), ScheduleKind::cosine);
  expect_error([] { parse_schedule_kind("cosine_with_restarts"); },
               {"'cosine_with_restarts'", "constant", "linear", "cosine"});
  expect_error([] { LrSchedule(ScheduleKind::linear, 1e-3, -1, 10); }, {"warmup_steps"});
}

// ---------------------------------------------------------------------------------------------------------
// Gradient clipping

TEST(GradClip, NormAndScalingMatchReference) {
  ParameterRegistry reg;
  reg.add("frozen", Tensor::from_floats({100.0f}, {1}, MemCategory::workspace));
  reg.add("a", Tensor::zeros({3}, DType::f32, MemCategory::workspace));
  reg.add("b", Tensor::zeros({2, 2}, DType::f32, MemCategory::workspace));
  reg.set_trainable("a", true);
  reg.set_trainable("b", true);
  EXPECT_EQ(global_grad_norm(reg), 0.0f);  // no gradients yet
  EXPECT_EQ(clip_grad_norm(reg, 1.0f), 0.0f);
  reg.allocate_gradients();
  const std::vector<float> ga = {3.0f, -4.0f, 1.0f}, gb = {0.5f, 2.0f, -1.5f, 0.25f};
  reg.at("a").grad.copy_from(Tensor::from_floats(ga, {3}, MemCategory::workspace));
  reg.at("b").grad.copy_from(Tensor::from_floats(gb, {2, 2}, MemCategory::workspace));
  double ss = 0;
  for (float v : ga) ss += double(v) * v;
  for (float v : gb) ss += double(v) * v;
  const double ref = std::sqrt(ss);
  EXPECT_NEAR(global_grad_norm(reg), ref, 1e-6 * ref);

  // Below the threshold: untouched.
  EXPECT_NEAR(clip_grad_norm(reg, 100.0f), ref, 1e-6 * ref);
  EXPECT_EQ(reg.at("a").grad.to_floats(), ga);

  // Above: scaled by max_norm / (norm + 1e-6) in f32, as torch.
  EXPECT_NEAR(clip_grad_norm(reg, 2.0f), ref, 1e-6 * ref);
  const float coef = 2.0f / (float(ref) + 1e-6f);
  const auto a = reg.at("a").grad.to_floats(), b = reg.at("b").grad.to_floats();
  for (size_t i = 0; i < ga.size(); i++) EXPECT_FLOAT_EQ(a[i], ga[i] * coef);
  for (size_t i = 0; i < gb.size(); i++) EXPECT_FLOAT_EQ(b[i], gb[i] * coef);
  EXPECT_NEAR(global_grad_norm(reg), 2.0, 1e-6);

  expect_error([&] { clip_grad_norm(reg, 0.0f); }, {"max_norm"});
}

TEST(GradClip, NonFiniteNormLeavesGradientsAlone) {
  ParameterRegistry reg;
  reg.add("a", Tensor::zeros({2}, DType::f32, MemCategory::workspace));
  reg.set_trainable("a", true);
  reg.allocate_gradients();
  reg.at("a").grad.data<float>()[0] = INFINITY;
  reg.at("a").grad.data<float>()[1] = 1.0f;
  EXPECT_TRUE(std::isinf(clip_grad_norm(reg, 1.0f)));
  EXPECT_EQ(reg.at("a").grad.to_floats()[1], 1.0f);
}
