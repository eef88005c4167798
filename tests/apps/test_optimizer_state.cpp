// The trainer's optimizer state on resume and save (apps/train/optimizer_state.h): a checkpoint of another
// optimizer kind is refused naming the file and both kinds, the first mismatched state is named, a sharded
// parameter's state takes its rank's part of the whole, and gathering hands each state its parameter's
// ShardSpec.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "apps/train/optimizer_state.h"
#include "core/io/checkpoint.h"
#include "core/modules/parameter.h"
#include "core/optim/optimizer.h"
#include "tests/support/error_of.h"

namespace {

namespace core = ladder::core;
using core::DType;
using core::MemCategory;
using core::Tensor;
using ladder::apps::gather_optimizer_state;
using ladder::apps::restore_optimizer_state;
using ladder::test::error_of;

Tensor iota(const core::Shape& shape, float start) {
  std::vector<float> v(size_t(core::shape_numel(shape)));
  for (size_t i = 0; i < v.size(); ++i) v[i] = start + float(i);
  return Tensor::from_floats(v, shape, MemCategory::workspace);
}

// "w" [4, 3] split by rows over 2 ranks, this rank holding rows 2..3; "b" [3] replicated.
struct ShardedRun {
  core::ParameterRegistry reg;
  std::unique_ptr<core::Optimizer> opt;
  ShardedRun() {
    core::Parameter& w = reg.add("w", Tensor::zeros({2, 3}, DType::f32, MemCategory::workspace));
    w.shard.dim = 0;
    w.shard.index = 1;
    w.shard.parts = 2;
    w.shard.full = {4, 3};
    reg.add("b", Tensor::zeros({3}, DType::f32, MemCategory::workspace));
    reg.set_all_trainable(true);
    reg.allocate_gradients();
    opt = core::make_optimizer("adamw", reg, core::OptimizerConfig{});
  }
};

// The whole state as a checkpoint of ShardedRun would hold it.
core::CheckpointData whole_checkpoint() {
  core::CheckpointData ck;
  ck.optimizer = {{"w/exp_avg", iota({4, 3}, 0)}, {"w/exp_avg_sq", iota({4, 3}, 100)},
                  {"b/exp_avg", iota({3}, 200)}, {"b/exp_avg_sq", iota({3}, 300)}};
  return ck;
}

TEST(OptimizerState, RefusesAnotherOptimizerKindNamingFileAndBothKinds) {
  ShardedRun run;
  core::CheckpointData ck = whole_checkpoint();
  ck.optimizer_kind = "adamw8bit";
  const std::string msg = error_of([&] { restore_optimizer_state(*run.opt, ck, "/runs/a/step-00000010.h5"); });
  for (const char* part : {"/runs/a/step-00000010.h5", "'adamw8bit'", "'adamw'", "train.optimizer", "new run directory"})
    EXPECT_NE(msg.find(part), std::string::npos) << part << " missing from: " << msg;
}

TEST(OptimizerState, RestoresWholeAndShardedStateAndNothingElse) {
  ShardedRun run;
  run.opt->set_step_count(3);
  restore_optimizer_state(*run.opt, whole_checkpoint(), "ck.h5");
  const auto st = run.opt->state();
  ASSERT_EQ(st.size(), 4u);
  // Rows 2..3 of the whole [4, 3]: elements 6..11.
  EXPECT_EQ(st[0].tensor->to_floats(), (std::vector<float>{6, 7, 8, 9, 10, 11}));
  EXPECT_EQ(st[1].tensor->to_floats(), (std::vector<float>{106, 107, 108, 109, 110, 111}));
  EXPECT_EQ(st[2].tensor->to_floats(), (std::vector<float>{200, 201, 202}));
  EXPECT_EQ(st[3].tensor->to_floats(), (std::vector<float>{300, 301, 302}));
  EXPECT_EQ(run.opt->step_count(), 3);
}

TEST(OptimizerState, NamesTheFirstMismatchAndLeavesTheStateAlone) {
  ShardedRun run;
  auto untouched = [&] {
    for (const auto& s : run.opt->state())
      for (float v : s.tensor->to_floats()) ASSERT_EQ(v, 0.0f) << s.name;
  };
  core::CheckpointData ck = whole_checkpoint();
  ck.optimizer[2].first = "c/exp_avg";
  std::string msg = error_of([&] { restore_optimizer_state(*run.opt, ck, "ck.h5"); });
  EXPECT_NE(msg.find("ck.h5: optimizer state 'c/exp_avg' where 'b/exp_avg' was expected"), std::string::npos) << msg;

  ck = whole_checkpoint();
  ck.optimizer.pop_back();
  msg = error_of([&] { restore_optimizer_state(*run.opt, ck, "ck.h5"); });
  for (const char* part : {"ck.h5", "3 optimizer state tensors", "4", "'b/exp_avg_sq'", "missing from the checkpoint"})
    EXPECT_NE(msg.find(part), std::string::npos) << part << " missing from: " << msg;

  ck = whole_checkpoint();
  ck.optimizer.emplace_back("z/exp_avg", iota({1}, 0));
  msg = error_of([&] { restore_optimizer_state(*run.opt, ck, "ck.h5"); });
  EXPECT_NE(msg.find("'z/exp_avg' (not in this run)"), std::string::npos) << msg;

  // The sharded parameter's state is compared with the whole shape, not the local one; the last state's
  // bad shape is found before the first one is copied.
  ck = whole_checkpoint();
  ck.optimizer[0].second = iota({2, 3}, 0);
  msg = error_of([&] { restore_optimizer_state(*run.opt, ck, "ck.h5"); });
  for (const char* part : {"ck.h5", "'w/exp_avg'", "[2, 3]", "[4, 3]"})
    EXPECT_NE(msg.find(part), std::string::npos) << part << " missing from: " << msg;
  ck = whole_checkpoint();
  ck.optimizer[3].second = iota({4}, 0);
  msg = error_of([&] { restore_optimizer_state(*run.opt, ck, "ck.h5"); });
  EXPECT_NE(msg.find("'b/exp_avg_sq'"), std::string::npos) << msg;

  ck = whole_checkpoint();
  ck.optimizer[1].second = ck.optimizer[1].second.to(DType::bf16, MemCategory::workspace);
  msg = error_of([&] { restore_optimizer_state(*run.opt, ck, "ck.h5"); });
  for (const char* part : {"ck.h5", "'w/exp_avg_sq'", "bf16", "f32"})
    EXPECT_NE(msg.find(part), std::string::npos) << part << " missing from: " << msg;
  untouched();
}

TEST(OptimizerState, GatherHandsEachStateItsParametersShardSpec) {
  ShardedRun run;
  restore_optimizer_state(*run.opt, whole_checkpoint(), "ck.h5");
  std::vector<std::string> seen;
  // A stand-in for DataParallel::gather on one rank: the whole tensor with this rank's rows in place.
  auto gather = [&](const Tensor& local, const core::ShardSpec& spec) {
    seen.push_back(spec.describe());
    if (!spec.sharded()) return local.clone(MemCategory::workspace);
    Tensor whole = Tensor::zeros(spec.full, DType::f32, MemCategory::workspace);
    core::place_shard(whole.data<float>(), local.data<float>(), spec, spec.index);
    return whole;
  };
  const auto out = gather_optimizer_state(*run.opt, gather);
  ASSERT_EQ(out.size(), 4u);
  EXPECT_EQ(out[0].first, "w/exp_avg");
  EXPECT_EQ(out[3].first, "b/exp_avg_sq");
  EXPECT_EQ(out[0].second.shape(), (core::Shape{4, 3}));
  EXPECT_EQ(out[0].second.to_floats(), (std::vector<float>{0, 0, 0, 0, 0, 0, 6, 7, 8, 9, 10, 11}));
  EXPECT_EQ(out[2].second.to_floats(), (std::vector<float>{200, 201, 202}));
  ASSERT_EQ(seen.size(), 4u);
  EXPECT_EQ(seen[0], run.reg.at("w").shard.describe());
  EXPECT_EQ(seen[1], run.reg.at("w").shard.describe());
  EXPECT_EQ(seen[2], run.reg.at("b").shard.describe());
}

}  // namespace
