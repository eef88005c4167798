// `ladder bench`'s denominators: the BLAS ceiling is the fastest of the model's own GEMM shapes (three per
// linear weight shape: forward, input gradient, weight gradient, at each benchmarked row count) plus a square
// one; the theoretical peak is cores x clock x f32 FLOPs per cycle from the ISA, and no measured GEMM
// exceeds it; the real bench reports both and its phases as fractions of each.
#include <gtest/gtest.h>
#include <sys/wait.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <set>
#include <string>

#include "apps/cpu_peak.h"
#include "apps/gemm_ceiling.h"
#include "core/kernels/threading.h"
#include "tests/support/test_paths.h"
#include "tests/support/tiny_models.h"

namespace {

using namespace ladder;

TEST(BenchCeiling, ShapesAreTheModelsLinearProductsAndASquare) {
  const auto shapes = apps::transformer_gemm_shapes(384, 1536, false, {4096, 2048, 2048}, 2048);
  // 3 weight shapes x 3 products x 2 distinct row counts + the square; no duplicates.
  ASSERT_EQ(shapes.size(), 19u);
  std::set<std::string> texts;
  for (const auto& s : shapes) texts.insert(s.text());
  EXPECT_EQ(texts.size(), shapes.size());
  EXPECT_TRUE(texts.count("4096x1536x384 NT"));   // forward 384 -> 1536: Y = X W^T
  EXPECT_TRUE(texts.count("4096x384x1536 NN"));   // its input gradient: dX = dY W
  EXPECT_TRUE(texts.count("1536x384x4096 TN"));   // its weight gradient: dW = dY^T X, K = rows
  EXPECT_TRUE(texts.count("2048x2048x2048 NN"));
  EXPECT_EQ(shapes.back().role, "square");
  // GPT-2's fused QKV adds d -> 3d; no square when n = 0.
  const auto gpt = apps::transformer_gemm_shapes(768, 3072, true, {1024}, 0);
  EXPECT_EQ(gpt.size(), 12u);
  bool qkv = false;
  for (const auto& s : gpt) qkv = qkv || s.text() == "1024x2304x768 NT";
  EXPECT_TRUE(qkv);
}

TEST(BenchCeiling, CeilingIsTheFastestShapeAndEveryShapeRanItsRuns) {
  const auto shapes = apps::transformer_gemm_shapes(32, 64, false, {64}, 96);
  const apps::GemmCeiling c = apps::measure_gemm_ceiling(shapes, 0.0, 3, 2);
  ASSERT_EQ(c.shapes.size(), shapes.size());
  double best = 0;
  for (const auto& t : c.shapes) {
    EXPECT_GT(t.gflops, 0) << t.shape.text();
    EXPECT_EQ(t.runs, 6) << t.shape.text();  // 3 runs in each of 2 rounds (no minimum time)
    best = std::max(best, t.gflops);
  }
  EXPECT_EQ(c.gflops(), best);
  EXPECT_EQ(c.shapes[c.best].gflops, best);
}

TEST(BenchCeiling, FlopsPerCycleFollowTheIsaAndTheMicroarchitecture) {
  std::string isa, why;
  EXPECT_EQ(apps::f32_flops_per_cycle(false, true, true, "AuthenticAMD", 0x19, 0x01, isa, why), 32);  // Zen 3
  EXPECT_EQ(isa, "AVX2+FMA");
  EXPECT_EQ(apps::f32_flops_per_cycle(true, true, true, "AuthenticAMD", 0x19, 0x11, isa, why), 32);  // Zen 4: 256-bit pipes
  EXPECT_EQ(isa, "AVX-512F");
  EXPECT_NE(why.find("Zen 4"), std::string::npos) << why;
  EXPECT_EQ(apps::f32_flops_per_cycle(true, true, true, "AuthenticAMD", 0x1A, 0x02, isa, why), 64);  // Zen 5
  EXPECT_EQ(apps::f32_flops_per_cycle(true, true, true, "GenuineIntel", 6, 0x55, isa, why), 64);     // Skylake-SP
  EXPECT_EQ(apps::f32_flops_per_cycle(false, true, true, "AuthenticAMD", 0x17, 0x01, isa, why), 16);  // Zen 1
  EXPECT_EQ(apps::f32_flops_per_cycle(false, true, true, "AuthenticAMD", 0x17, 0x31, isa, why), 32);  // Zen 2
  EXPECT_EQ(apps::f32_flops_per_cycle(false, false, true, "GenuineIntel", 6, 0x2A, isa, why), 16);    // Sandy Bridge
  EXPECT_EQ(apps::f32_flops_per_cycle(false, false, false, "GenuineIntel", 6, 0x0F, isa, why), 8);
  EXPECT_EQ(isa, "SSE2");
}

TEST(BenchCeiling, PeakIsDerivedFromThisMachineAndNoGemmExceedsIt) {
  const apps::CpuPeak p = apps::theoretical_peak(core::num_threads());
  EXPECT_GE(p.cores, 1);
  EXPECT_GT(p.ghz, 0.5);
  EXPECT_GE(p.flops_per_cycle, 8);
  EXPECT_DOUBLE_EQ(p.gflops(), p.cores * p.ghz * p.flops_per_cycle);
  EXPECT_NE(p.derivation.find(p.isa), std::string::npos) << p.derivation;
  EXPECT_NE(p.derivation.find("dependent-add chain"), std::string::npos) << p.derivation;
  const double measured = apps::measure_gemm_ceiling(apps::transformer_gemm_shapes(384, 1536, false, {512}, 512), 0.05, 3, 1).gflops();
  EXPECT_LT(measured, p.gflops()) << "a GEMM at " << measured << " GFLOP/s beats the derived peak: " << p.derivation;
}

// Runs `ladder bench` on `model` with tiny shapes into a fresh folder `name`; returns its report.
nlohmann::json run_tiny_bench(const std::string& model, const std::string& name, int sgemm_size) {
  const std::string dir = testing::TempDir() + name;
  std::filesystem::create_directories(dir);
  const std::string report = dir + "/bench.json";
  const std::string cmd = std::string(LADDER_BINARY) + " bench --model '" + model +
                          "' --forward-batch 2 --train-batch 2 --seq-len 16 --warmup 0 --iters 1 --sgemm-size " +
                          std::to_string(sgemm_size) + " --ceiling-seconds 0.01 --ceiling-rounds 1 --threads 1 --report '" +
                          report + "' > '" + dir + "/log.txt' 2>&1";
  const int rc = std::system(cmd.c_str());
  EXPECT_TRUE(WIFEXITED(rc) && WEXITSTATUS(rc) == 0) << cmd;
  std::ifstream in(report);
  return nlohmann::json::parse(in);
}

// The real command on the real model (tiny shapes): both denominators in the report, every phase a fraction
// of each, the ceiling the fastest shape listed.
TEST(BenchCeiling, BenchReportsTheCeilingThePeakAndTheFractions) {
  const nlohmann::json r = run_tiny_bench(test::minilm_dir(), "ladder_bench_ceiling", 256);
  const auto& m = r.at("metrics");
  const double ceiling = m.at("blas_ceiling").at("gflops").get<double>();
  const double peak = m.at("theoretical_peak").at("gflops").get<double>();
  EXPECT_GT(ceiling, 0);
  EXPECT_LT(ceiling, peak);
  double fastest = 0;
  for (const auto& s : m.at("blas_ceiling").at("shapes")) fastest = std::max(fastest, s.at("gflops").get<double>());
  EXPECT_EQ(ceiling, fastest);
  EXPECT_EQ(m.at("blas_ceiling").at("shapes").size(), 10u);  // 3 x 3 at 32 rows (both phases) + 256^3
  for (const char* phase : {"forward", "train_step"}) {
    const auto& p = m.at(phase);
    EXPECT_NEAR(p.at("fraction_of_blas_ceiling").get<double>(), p.at("gflops").get<double>() / ceiling, 1e-9) << phase;
    EXPECT_NEAR(p.at("fraction_of_peak").get<double>(), p.at("gflops").get<double>() / peak, 1e-9) << phase;
  }
  EXPECT_FALSE(m.at("theoretical_peak").at("derivation").get<std::string>().empty());
}

// The training step goes through the Backbone interface: a decoder (no pooler) trains through its LM head.
TEST(BenchCeiling, DecoderTrainingStepRunsThroughItsLmHead) {
  const std::string model = test::write_tiny_gpt2(test::temp_dir("bench_tiny_gpt2"), 5);
  const nlohmann::json r = run_tiny_bench(model, "ladder_bench_gpt2", 64);
  EXPECT_GT(r.at("metrics").at("train_step").at("gflops").get<double>(), 0);
}

}  // namespace
