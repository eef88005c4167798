// GLUE metrics against values computed with sklearn 1.9.1 / scipy 1.17.1 (accuracy_score, f1_score,
// matthews_corrcoef, pearsonr, spearmanr), degenerate inputs (0, not NaN), and glue_metrics per task.
#include <gtest/gtest.h>

#include <cmath>
#include <vector>

#include "data/glue/metrics.h"

namespace {

using namespace ladder::data;

const std::vector<int> kPred = {1, 0, 1, 1, 0, 1, 0, 0, 1, 1};
const std::vector<int> kRef = {1, 0, 0, 1, 0, 1, 1, 0, 1, 0};

TEST(Metrics, BinaryAgainstSklearn) {
  EXPECT_DOUBLE_EQ(accuracy(kPred, kRef), 0.7);
  EXPECT_NEAR(binary_f1(kPred, kRef), 0.7272727272727273, 1e-12);
  EXPECT_NEAR(matthews_corrcoef(kPred, kRef), 0.408248290463863, 1e-12);
}

TEST(Metrics, MulticlassMccAgainstSklearn) {
  const std::vector<int> p = {0, 1, 2, 2, 1, 0, 0, 2, 1, 1, 2, 0}, r = {0, 1, 2, 1, 1, 0, 2, 2, 0, 1, 2, 1};
  EXPECT_NEAR(matthews_corrcoef(p, r), 0.5052911526399114, 1e-12);
  EXPECT_NEAR(accuracy(p, r), 2.0 / 3.0, 1e-12);
}

TEST(Metrics, CorrelationsAgainstScipy) {
  const std::vector<float> x = {0.5f, 2.0f, 3.5f, 1.0f, 4.0f, 4.0f, 2.0f, 5.0f};
  const std::vector<float> y = {0.8f, 1.5f, 3.0f, 1.2f, 4.5f, 3.8f, 2.5f, 4.9f};
  EXPECT_NEAR(pearson(x, y), 0.9668200260916754, 1e-6);  // y is not exact in float
  EXPECT_NEAR(spearman(x, y), 0.9880235200593538, 1e-12);
  // Ties on both sides: average ranks.
  const std::vector<float> a = {1, 2, 2, 3, 3, 3, 4}, b = {2, 1, 4, 3, 3, 5, 4};
  EXPECT_NEAR(spearman(a, b), 0.5621342513004456, 1e-12);
  EXPECT_NEAR(pearson(a, b), 0.562244093835259, 1e-12);
  EXPECT_NEAR(pearson(x, x), 1.0, 1e-12);
  std::vector<float> neg(x.size());
  for (size_t i = 0; i < x.size(); ++i) neg[i] = -x[i];
  EXPECT_NEAR(spearman(x, neg), -1.0, 1e-12);
}

TEST(Metrics, DegenerateInputsGiveZeroNotNan) {
  const std::vector<int> ones(kRef.size(), 1), zeros(kRef.size(), 0);
  EXPECT_EQ(matthews_corrcoef(ones, kRef), 0.0);
  EXPECT_EQ(matthews_corrcoef(kPred, zeros), 0.0);
  EXPECT_EQ(matthews_corrcoef(zeros, zeros), 0.0);
  EXPECT_EQ(binary_f1(zeros, zeros), 0.0);
  EXPECT_EQ(binary_f1(zeros, kRef), 0.0);
  const std::vector<float> c(5, 2.5f), v = {1, 2, 3, 4, 5};
  EXPECT_EQ(pearson(c, v), 0.0);
  EXPECT_EQ(spearman(v, c), 0.0);
  EXPECT_DOUBLE_EQ(matthews_corrcoef(kRef, kRef), 1.0);
  EXPECT_THROW(accuracy({1, 0}, {1}), std::invalid_argument);
  EXPECT_THROW(accuracy({}, {}), std::invalid_argument);
  EXPECT_THROW(matthews_corrcoef({-1, 0}, {0, 1}), std::invalid_argument);
}

TEST(Metrics, GlueMetricsPerTask) {
  auto cola = glue_metrics(GlueTask::cola, kPred, kRef);
  ASSERT_EQ(cola.size(), 1u);
  EXPECT_NEAR(cola.at("mcc"), 0.408248290463863, 1e-12);
  for (GlueTask t : {GlueTask::sst2, GlueTask::mnli, GlueTask::qnli, GlueTask::rte, GlueTask::wnli}) {
    auto m = glue_metrics(t, kPred, kRef);
    ASSERT_EQ(m.size(), 1u);
    EXPECT_DOUBLE_EQ(m.at("accuracy"), 0.7);
  }
  for (GlueTask t : {GlueTask::mrpc, GlueTask::qqp}) {
    auto m = glue_metrics(t, kPred, kRef);
    ASSERT_EQ(m.size(), 2u);
    EXPECT_DOUBLE_EQ(m.at("accuracy"), 0.7);
    EXPECT_NEAR(m.at("f1"), 0.7272727272727273, 1e-12);
  }
  auto stsb = glue_metrics(GlueTask::stsb, std::vector<float>{1, 2, 3, 4}, std::vector<float>{1, 3, 2, 4});
  ASSERT_EQ(stsb.size(), 2u);
  EXPECT_NEAR(stsb.at("spearman"), 0.8, 1e-12);
  EXPECT_NEAR(stsb.at("pearson"), 0.8, 1e-12);
  // The primary metric of every task is one of the keys glue_metrics reports.
  for (GlueTask t : all_glue_tasks()) {
    const auto& info = glue_task_info(t);
    auto m = info.regression ? glue_metrics(t, std::vector<float>{1, 2}, std::vector<float>{1, 2}) : glue_metrics(t, kPred, kRef);
    EXPECT_TRUE(m.count(info.primary_metric)) << info.name;
  }
  EXPECT_THROW(glue_metrics(GlueTask::stsb, kPred, kRef), std::invalid_argument);
  EXPECT_THROW(glue_metrics(GlueTask::sst2, std::vector<float>{1}, std::vector<float>{1}), std::invalid_argument);
}

}  // namespace
