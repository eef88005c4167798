// GPU kernels against double-precision CPU references written here (forward and backward, 1e-5 relative).
// Sizes are deliberately not multiples of 32 or of the rows per block, to exercise the bounds checks.
#include <gtest/gtest.h>

#include <cmath>
#include <vector>

#include "core/cuda/cuda_buffer.h"
#include "core/cuda/cuda_kernels.h"
#include "cuda_test_support.h"

namespace ladder::core {
namespace {

using test::all_close;
using test::random_floats;

using Buf = CudaBuffer<float>;
constexpr MemCategory kWs = MemCategory::workspace;

std::vector<float> download(const Buf& b) {
  LADDER_CUDA_CHECK(cudaDeviceSynchronize());
  return b.to_host();
}

// ---- GELU --------------------------------------------------------------------------------------------
double gelu_ref(double x, GeluKind k) {
  if (k == GeluKind::tanh) return 0.5 * x * (1.0 + std::tanh(std::sqrt(2.0 / M_PI) * (x + 0.044715 * x * x * x)));
  return 0.5 * x * (1.0 + std::erf(x / std::sqrt(2.0)));
}
double gelu_grad_ref(double x, GeluKind k) {
  if (k == GeluKind::tanh) {
    double a = std::sqrt(2.0 / M_PI), t = std::tanh(a * (x + 0.044715 * x * x * x));
    return 0.5 * (1.0 + t) + 0.5 * x * (1.0 - t * t) * a * (1.0 + 3.0 * 0.044715 * x * x);
  }
  return 0.5 * (1.0 + std::erf(x / std::sqrt(2.0))) + x * std::exp(-0.5 * x * x) / std::sqrt(2.0 * M_PI);
}

void check_gelu(GeluKind kind) {
  const size_t n = 10007;
  std::vector<float> x = random_floats(n, 11, -5.0f, 5.0f), dy = random_floats(n, 12);
  Buf dx_(x, kWs), ddy(dy, kWs), dout(n, kWs), ddx(n, kWs);
  cuda_gelu_forward(dout.data(), dx_.data(), n, kind);
  cuda_gelu_backward(ddx.data(), ddy.data(), dx_.data(), n, kind);
  std::vector<double> out(n), dinp(n);
  for (size_t i = 0; i < n; ++i) {
    out[i] = gelu_ref(x[i], kind);
    dinp[i] = dy[i] * gelu_grad_ref(x[i], kind);
  }
  EXPECT_TRUE(all_close(download(dout), out)) << "forward";
  EXPECT_TRUE(all_close(download(ddx), dinp)) << "backward";
  // In place (out aliases inp, dinp aliases dout) gives the same.
  cuda_gelu_backward(ddy.data(), ddy.data(), dx_.data(), n, kind);
  cuda_gelu_forward(dx_.data(), dx_.data(), n, kind);
  EXPECT_TRUE(all_close(download(dx_), out)) << "forward in place";
  EXPECT_TRUE(all_close(download(ddy), dinp)) << "backward in place";
}

TEST(CudaKernels, GeluErfForwardBackward) {
  LADDER_REQUIRE_CUDA();
  check_gelu(GeluKind::erf);
}

TEST(CudaKernels, GeluTanhForwardBackward) {
  LADDER_REQUIRE_CUDA();
  check_gelu(GeluKind::tanh);
}

// ---- bias ----------------------------------------------------------------------------------------------
TEST(CudaKernels, BiasAddAndBackwardAccumulates) {
  LADDER_REQUIRE_CUDA();
  const int N = 203, C = 77;
  std::vector<float> out = random_floats(size_t(N) * C, 21), bias = random_floats(C, 22);
  std::vector<float> dy = random_floats(size_t(N) * C, 23), db0 = random_floats(C, 24);
  Buf dout(out, kWs), dbias(bias, kWs), ddy(dy, kWs), ddb(db0, kWs);
  cuda_add_bias(dout.data(), dbias.data(), N, C);
  cuda_bias_backward(ddb.data(), ddy.data(), N, C);
  std::vector<double> ref(out.size()), dbref(C), dbscale(C);
  for (int n = 0; n < N; ++n)
    for (int c = 0; c < C; ++c) ref[size_t(n) * C + c] = double(out[size_t(n) * C + c]) + bias[c];
  for (int c = 0; c < C; ++c) {
    double s = db0[c], a = std::fabs(db0[c]);
    for (int n = 0; n < N; ++n) {
      s += dy[size_t(n) * C + c];
      a += std::fabs(dy[size_t(n) * C + c]);
    }
    dbref[c] = s;
    dbscale[c] = a;
  }
  EXPECT_TRUE(all_close(download(dout), ref)) << "add_bias";
  EXPECT_TRUE(all_close(download(ddb), dbref, 1e-5, dbscale)) << "bias_backward (accumulated onto db0)";
}

// ---- LayerNorm -----------------------------------------------------------------------------------------
void check_layernorm(int N, int C, bool with_param_grads) {
  const float eps = 1e-5f;
  std::vector<float> x = random_floats(size_t(N) * C, 31, -2.0f, 3.0f), w = random_floats(C, 32, 0.5f, 1.5f);
  std::vector<float> b = random_floats(C, 33), dy = random_floats(size_t(N) * C, 34);
  std::vector<float> dw0 = random_floats(C, 35), db0 = random_floats(C, 36);
  Buf gx(x, kWs), gw(w, kWs), gb(b, kWs), gdy(dy, kWs), gdw(dw0, kWs), gdb(db0, kWs);
  Buf gout(size_t(N) * C, kWs), gmean(N, kWs), grstd(N, kWs), gdx(size_t(N) * C, kWs);
  cuda_layernorm_forward(gout.data(), gmean.data(), grstd.data(), gx.data(), gw.data(), gb.data(), N, C, eps);
  cuda_layernorm_backward(gdx.data(), with_param_grads ? gdw.data() : nullptr,
                          with_param_grads ? gdb.data() : nullptr, gdy.data(), gx.data(), gw.data(), gmean.data(),
                          grstd.data(), N, C);

  std::vector<double> out(size_t(N) * C), mean(N), rstd(N), dx(size_t(N) * C), dxs(size_t(N) * C);
  std::vector<double> dw(dw0.begin(), dw0.end()), db(db0.begin(), db0.end()), dws(C), dbs(C);
  for (int c = 0; c < C; ++c) {
    dws[c] = std::fabs(dw0[c]);
    dbs[c] = std::fabs(db0[c]);
  }
  for (int n = 0; n < N; ++n) {
    const float* xr = &x[size_t(n) * C];
    const float* dyr = &dy[size_t(n) * C];
    double m = 0, v = 0;
    for (int c = 0; c < C; ++c) m += xr[c];
    m /= C;
    for (int c = 0; c < C; ++c) v += (xr[c] - m) * (xr[c] - m);
    double r = 1.0 / std::sqrt(v / C + eps);
    mean[n] = m;
    rstd[n] = r;
    double a = 0, bb = 0, as = 0;
    for (int c = 0; c < C; ++c) {
      double norm = (xr[c] - m) * r;
      out[size_t(n) * C + c] = norm * w[c] + b[c];
      a += dyr[c] * w[c];
      bb += dyr[c] * w[c] * norm;
      as += std::fabs(dyr[c] * w[c]) * (1.0 + std::fabs(norm));
      dw[c] += dyr[c] * norm;
      db[c] += dyr[c];
      dws[c] += std::fabs(dyr[c] * norm);
      dbs[c] += std::fabs(dyr[c]);
    }
    a /= C;
    bb /= C;
    for (int c = 0; c < C; ++c) {
      double norm = (xr[c] - m) * r;
      dx[size_t(n) * C + c] = r * (dyr[c] * w[c] - a - norm * bb);
      // the sums inside dx are over C terms: scale the tolerance by their magnitude
      dxs[size_t(n) * C + c] = r * (std::fabs(dyr[c] * w[c]) + (1.0 + std::fabs(norm)) * as / C);
    }
  }
  EXPECT_TRUE(all_close(download(gout), out)) << "out";
  EXPECT_TRUE(all_close(download(gmean), mean)) << "mean";
  EXPECT_TRUE(all_close(download(grstd), rstd)) << "rstd";
  EXPECT_TRUE(all_close(download(gdx), dx, 1e-5, dxs)) << "dinp";
  if (with_param_grads) {
    EXPECT_TRUE(all_close(download(gdw), dw, 1e-5, dws)) << "dweight (accumulated)";
    EXPECT_TRUE(all_close(download(gdb), db, 1e-5, dbs)) << "dbias (accumulated)";
  } else {  // frozen parameters: the gradient buffers are untouched
    EXPECT_EQ(download(gdw), dw0);
    EXPECT_EQ(download(gdb), db0);
  }
}

TEST(CudaKernels, LayerNormForwardBackward) {
  LADDER_REQUIRE_CUDA();
  check_layernorm(37, 100, true);
  check_layernorm(19, 384, true);
  check_layernorm(5, 7, true);  // C < 32: most lanes idle
}

TEST(CudaKernels, LayerNormFrozenParametersSkipTheirGradients) {
  LADDER_REQUIRE_CUDA();
  check_layernorm(11, 64, false);
}

// ---- masked softmax ------------------------------------------------------------------------------------
struct SoftmaxRef {
  std::vector<double> probs, dscores, dscale;
};

SoftmaxRef softmax_ref(const std::vector<float>& s, const std::vector<float>& dp, const std::vector<float>* mask,
                       bool causal, float scale, int B, int NH, int T) {
  SoftmaxRef r;
  r.probs.assign(s.size(), 0.0);
  r.dscores.assign(s.size(), 0.0);
  r.dscale.assign(s.size(), 1.0);
  for (int b = 0; b < B; ++b)
    for (int h = 0; h < NH; ++h)
      for (int i = 0; i < T; ++i) {
        size_t row = ((size_t(b) * NH + h) * T + i) * T;
        auto kept = [&](int j) { return (!causal || j <= i) && (!mask || (*mask)[size_t(b) * T + j] != 0.0f); };
        double mx = -INFINITY;
        for (int j = 0; j < T; ++j)
          if (kept(j)) mx = std::max(mx, double(scale) * s[row + j]);
        const bool none = mx == -INFINITY;  // no kept key: uniform over all T keys (the CPU kernels, HF)
        double sum = 0;
        for (int j = 0; j < T; ++j)
          if (kept(j)) sum += std::exp(double(scale) * s[row + j] - mx);
        double dot = 0, adot = 0;
        for (int j = 0; j < T; ++j) {
          r.probs[row + j] = none ? 1.0 / T : kept(j) ? std::exp(double(scale) * s[row + j] - mx) / sum : 0.0;
          dot += r.probs[row + j] * dp[row + j];
          adot += r.probs[row + j] * std::fabs(dp[row + j]);
        }
        for (int j = 0; j < T; ++j) {
          r.dscores[row + j] = scale * r.probs[row + j] * (dp[row + j] - dot);
          r.dscale[row + j] = scale * r.probs[row + j] * (std::fabs(dp[row + j]) + adot);
        }
      }
  return r;
}

void check_softmax(int B, int NH, int T, bool causal, bool use_mask) {
  const float scale = 0.35f;
  const size_t n = size_t(B) * NH * T * T;
  std::vector<float> s = random_floats(n, 41, -6.0f, 6.0f), dp = random_floats(n, 42);
  std::vector<float> mask(size_t(B) * T, 1.0f);
  for (int j = T - 5; j < T; ++j) mask[size_t(B - 1) * T + j] = 0.0f;  // padding at the end of the last sequence
  mask[size_t(B - 1) * T + 0] = 0.0f;  // with causal, query 0 of the last sequence keeps no key at all
  const std::vector<float>* m = use_mask ? &mask : nullptr;
  SoftmaxRef ref = softmax_ref(s, dp, m, causal, scale, B, NH, T);

  Buf gs(s, kWs), gdp(dp, kWs), gp(n, kWs), gds(n, kWs), gmask(mask, kWs);
  const float* km = use_mask ? gmask.data() : nullptr;
  cuda_masked_softmax_forward(gp.data(), gs.data(), km, causal, scale, B, NH, T);
  cuda_masked_softmax_backward(gds.data(), gdp.data(), gp.data(), scale, B, NH, T);
  EXPECT_TRUE(all_close(download(gp), ref.probs)) << "probs";
  EXPECT_TRUE(all_close(download(gds), ref.dscores, 1e-5, ref.dscale)) << "dscores";
  // In place: probs over scores, dscores over dprobs.
  cuda_masked_softmax_forward(gs.data(), gs.data(), km, causal, scale, B, NH, T);
  cuda_masked_softmax_backward(gdp.data(), gdp.data(), gs.data(), scale, B, NH, T);
  EXPECT_TRUE(all_close(download(gs), ref.probs)) << "probs in place";
  EXPECT_TRUE(all_close(download(gdp), ref.dscores, 1e-5, ref.dscale)) << "dscores in place";
}

TEST(CudaKernels, MaskedSoftmaxPaddingMask) {
  LADDER_REQUIRE_CUDA();
  check_softmax(2, 3, 45, false, true);
}

TEST(CudaKernels, MaskedSoftmaxCausalWithPadding) {
  LADDER_REQUIRE_CUDA();
  check_softmax(3, 2, 70, true, true);
}

TEST(CudaKernels, MaskedSoftmaxUnmasked) {
  LADDER_REQUIRE_CUDA();
  check_softmax(1, 4, 9, false, false);
  check_softmax(1, 2, 33, true, false);
}

}  // namespace
}  // namespace ladder::core
