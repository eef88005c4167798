// LST runs its frozen backbone a few sequences at a time (RunModel::lst_chunk_rows) so that the backbone's
// workspace does not grow with the batch. The chunked forward must give the same logits and the same side
// gradients as one forward over the whole batch.
#include <gtest/gtest.h>

#include <cmath>
#include <random>

#include "apps/train/run_model.h"
#include "apps/train/train_config.h"
#include "tests/support/tiny_models.h"

using namespace ladder;

TEST(LstChunkedBackbone, EqualsOneForwardOverTheBatch) {
  apps::TrainConfig cfg;
  cfg.model_dir = test::write_tiny_bert(test::temp_dir("lst_chunked_model"), 29);
  cfg.method = "lst";
  cfg.task = "sst2";
  cfg.max_length = 16;
  const int B = 11, T = 7;  // 77 rows: chunks of 2 sequences (16 rows) leave a last chunk of 1
  std::vector<int32_t> ids(size_t(B) * T), types(size_t(B) * T, 0), labels(static_cast<size_t>(B));
  std::vector<float> mask(size_t(B) * T, 1.0f);
  std::vector<int64_t> samples(static_cast<size_t>(B));
  std::mt19937 g(5);
  for (auto& v : ids) v = int32_t(g() % 50);
  for (int b = 0; b < B; ++b) {
    for (int t = T - b % 3; t < T; ++t) mask[size_t(b) * T + t] = 0.0f;  // some right padding
    labels[size_t(b)] = b % 2;
    samples[size_t(b)] = 100 + 3 * b;
  }
  const core::TokenBatch batch{B, T, ids.data(), types.data(), mask.data()};
  core::StepOptions opt;
  opt.training = true;
  opt.save_for_backward = true;
  opt.seed = 77;
  opt.samples.ids = samples.data();

  auto run = [&](int chunk_rows, std::vector<float>& logits, std::vector<float>& grads) {
    apps::RunModel m = apps::build_run_model(cfg);
    m.lst_chunk_rows = chunk_rows;
    m.backbone->params().zero_grad();
    logits = apps::model_forward(m, batch, opt).to_floats();
    m.head->loss(labels.data(), nullptr);
    apps::model_backward(m, labels.data(), nullptr, 1.0f);
    grads = m.backbone->params().gradient_buffer().to_floats();
  };
  std::vector<float> l_whole, g_whole, l_chunk, g_chunk;
  run(1 << 20, l_whole, g_whole);
  run(16, l_chunk, g_chunk);
  ASSERT_EQ(l_whole.size(), l_chunk.size());
  for (size_t i = 0; i < l_whole.size(); ++i) EXPECT_NEAR(l_whole[i], l_chunk[i], 1e-6) << "logit " << i;
  ASSERT_EQ(g_whole.size(), g_chunk.size());
  double scale = 0, err = 0;
  for (size_t i = 0; i < g_whole.size(); ++i) {
    scale = std::max(scale, double(std::fabs(g_whole[i])));
    err = std::max(err, double(std::fabs(g_whole[i] - g_chunk[i])));
  }
  EXPECT_GT(scale, 0.0);
  EXPECT_LE(err, 1e-5 * scale);
}
