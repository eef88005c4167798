#include "adapters/lst/side_network.h"

#include <algorithm>
#include <cmath>
#include <random>
#include <stdexcept>

#include "core/modules/activation_slot.h"

namespace ladder::adapters {

using core::DType;
using core::MemCategory;
using core::Tensor;

LstSideNetwork::LstSideNetwork(core::Backbone& backbone, const LstOptions& opt, const ImportanceMap& importance)
    : backbone_(backbone), opt_(opt) {
  const auto& cfg = backbone.config();
  C_ = cfg.hidden;
  L_ = cfg.layers;
  const int r = opt.reduction;
  if (r < 1 || C_ % r || cfg.intermediate % r || (C_ / r) % cfg.heads)
    throw std::invalid_argument("method.lst_reduction = " + std::to_string(r) + " must divide hidden " + std::to_string(C_) +
                                " and intermediate " + std::to_string(cfg.intermediate) + " with hidden/r a multiple of the " +
                                std::to_string(cfg.heads) + " heads");
  if (!(opt.gate_T > 0)) throw std::invalid_argument("method.lst_gate_T must be positive");
  c_ = C_ / r;
  const int f = cfg.intermediate / r;
  if (opt.layers.empty()) {
    for (int i = 0; i < L_; ++i) kept_.push_back(i);
  } else {
    kept_ = opt.layers;
    std::sort(kept_.begin(), kept_.end());
    kept_.erase(std::unique(kept_.begin(), kept_.end()), kept_.end());
    for (int i : kept_)
      if (i < 0 || i >= L_)
        throw std::invalid_argument("method.lst_layers: layer " + std::to_string(i) + " is not in 0.." + std::to_string(L_ - 1));
  }
  const bool random_init = opt.init == "random";
  if (!random_init && opt.init != "magnitude" && opt.init != "fisher")
    throw std::invalid_argument("method.lst_init '" + opt.init + "': expected magnitude, fisher or random");
  if (opt.init == "fisher" && importance.empty())
    throw std::invalid_argument("method.lst_init = fisher needs Fisher importances (none were computed)");
  const auto pruned = random_init ? std::vector<std::map<std::string, std::vector<float>>>{}
                                  : pruned_side_layers(backbone, r, importance);

  auto& reg = backbone.params();
  std::mt19937_64 gen(opt.seed ^ 0x1a55de7e5ull);
  auto add = [&](const std::string& name, std::vector<float> v, core::Shape shape) {
    core::Parameter& p = reg.add(name, Tensor::from_floats(v, shape, MemCategory::trainable_weights));
    p.trainable = true;
    return &p;
  };
  // nn.Linear's default: kaiming_uniform(a = sqrt(5)) = U(+-1/sqrt(in)) for the weight, the same bound for the bias.
  auto torch_linear = [&](const std::string& name, int in, int out) {
    std::uniform_real_distribution<float> u(-1.0f / std::sqrt(float(in)), 1.0f / std::sqrt(float(in)));
    std::vector<float> w(static_cast<size_t>(out) * in), b(static_cast<size_t>(out));
    for (auto& x : w) x = u(gen);
    for (auto& x : b) x = u(gen);
    return core::Linear{add(name + ".weight", w, {out, in}), add(name + ".bias", b, {out}), in, out, core::WeightLayout::out_in};
  };
  std::normal_distribution<float> normal(0.0f, 0.02f);  // BERT's initializer_range, for the random init
  first_down_ = torch_linear("side.first_downsample", C_, c_);
  for (int i : kept_) {
    downs_.push_back(torch_linear("side.downsamples." + std::to_string(i), C_, c_));
    const std::string p = "side.layer." + std::to_string(i) + ".";
    auto value = [&](const std::string& n, int64_t count, float random_fill) {
      if (!pruned.empty()) return pruned[size_t(i)].at(n);
      std::vector<float> v(static_cast<size_t>(count));
      for (auto& x : v) x = std::isnan(random_fill) ? normal(gen) : random_fill;
      return v;
    };
    const float kNormal = std::nanf("");
    auto linear = [&](const std::string& n, int in, int out) {
      return core::Linear{add(p + n + ".weight", value(n + ".weight", int64_t(out) * in, kNormal), {out, in}),
                          add(p + n + ".bias", value(n + ".bias", out, 0.0f), {out}), in, out, core::WeightLayout::out_in};
    };
    auto layer_norm = [&](const std::string& n) {
      return core::LayerNorm{add(p + n + ".weight", value(n + ".weight", c_, 1.0f), {c_}),
                             add(p + n + ".bias", value(n + ".bias", c_, 0.0f), {c_}), c_, cfg.layer_norm_eps};
    };
    core::BertLayer l;
    l.attn.query = linear("attention.self.query", c_, c_);
    l.attn.key = linear("attention.self.key", c_, c_);
    l.attn.value = linear("attention.self.value", c_, c_);
    l.attn.out = linear("attention.output.dense", c_, c_);
    l.attn.C = c_;
    l.attn.NH = cfg.heads;
    l.attn.causal = cfg.arch == core::Architecture::gpt2;
    l.attn.dropout_p = cfg.attn_dropout;
    l.attn.key_positions = cfg.max_positions;
    // Twelve heads of width 4 (heads unchanged at d/r): the softmax would outweigh everything else a side
    // block keeps, and recomputing it costs little at this width (see set_recompute).
    l.attn.recompute_probs = recompute_;
    l.ln1 = layer_norm("attention.output.LayerNorm");
    l.ffn_in = linear("intermediate.dense", c_, f);
    l.ffn_out = linear("output.dense", f, c_);
    l.ln2 = layer_norm("output.LayerNorm");
    l.gelu = cfg.gelu;
    l.hidden_dropout = cfg.hidden_dropout;
    l.layer_index = 1000 + i;  // dropout streams apart from the backbone's
    l.max_positions = cfg.max_positions;
    blocks_.push_back(l);
  }
  up_ = torch_linear("side.final_upsample", c_, C_);
  set_recompute(opt.recompute == "auto" ? LstRecompute::blocks : parse_lst_recompute(opt.recompute));
  alpha_ = add("side.gate_alpha", std::vector<float>(size_t(L_), 0.0f), {L_});
}

std::vector<int> LstSideNetwork::taps() const {
  std::vector<int> t{0};
  for (int i : kept_) t.push_back(i + 1);
  return t;
}

LstRecompute parse_lst_recompute(const std::string& s) {
  if (s == "blocks") return LstRecompute::blocks;
  if (s == "softmax") return LstRecompute::softmax;
  if (s == "none") return LstRecompute::none;
  throw std::invalid_argument("method.lst_recompute '" + s + "': expected blocks, softmax, none or auto");
}

void LstSideNetwork::set_recompute(LstRecompute mode) {
  recompute_ = mode == LstRecompute::blocks;
  for (auto& blk : blocks_) blk.attn.recompute_probs = mode != LstRecompute::none;
}

float LstSideNetwork::gate(int layer) const { return 1.0f / (1.0f + std::exp(-alpha_->w()[layer] / opt_.gate_T)); }

namespace {
// Rows of a 16-bit tap converted at a time: big enough for an efficient GEMM, small enough for the cache.
constexpr int kTapChunkRows = 256;
}  // namespace

void LstSideNetwork::ladder_pass(core::Linear& down, const TapRows& tap, int N, float* lad, const float* dl) {
  if (tap.dtype == DType::f32) {
    const auto* x = static_cast<const float*>(tap.data);
    if (lad) down.forward(lad, x, N);
    else down.backward(nullptr, dl, x, N);
    return;
  }
  Tensor::ensure(tap_chunk_, {kTapChunkRows, C_}, DType::f32, MemCategory::workspace);
  float* x = tap_chunk_.data<float>();
  const size_t elem = core::dtype_bytes(tap.dtype, 1);
  for (int r0 = 0; r0 < N; r0 += kTapChunkRows) {
    const int nr = std::min(kTapChunkRows, N - r0);
    core::convert_to_f32(tap.dtype, static_cast<const char*>(tap.data) + size_t(r0) * C_ * elem, x, size_t(nr) * C_);
    if (lad) down.forward(lad + size_t(r0) * c_, x, nr);
    else down.backward(nullptr, dl + size_t(r0) * c_, x, nr);  // dW, db accumulate over the chunks
  }
}

const Tensor& LstSideNetwork::forward(const std::vector<TapRows>& taps, const core::TokenBatch& b,
                                      const core::StepOptions& opt, const std::vector<int>& feature_rows) {
  if (taps.size() != kept_.size() + 1)
    throw std::invalid_argument("LST side network: " + std::to_string(kept_.size() + 1) + " taps expected, got " + std::to_string(taps.size()));
  if (!feature_rows.empty() && feature_rows.size() != size_t(b.B))
    throw std::invalid_argument("LST side network: one feature row per sequence expected");
  taps_ = taps;
  batch_ = b;
  sopt_ = opt;
  feature_rows_ = feature_rows;
  first_token_ = feature_rows.empty();
  const int N = b.rows(), B = b.B, K = int(kept_.size());
  const size_t Nc = size_t(N) * c_;
  const bool save = opt.save_for_backward;
  const MemCategory cat = save ? MemCategory::activations : MemCategory::workspace;
  prev_.resize(size_t(K));
  mixed_.resize(size_t(K));
  ladder_.resize(size_t(K));
  bufs_.resize(size_t(K));

  Tensor::ensure(s0_, {N, c_}, DType::f32, cat);
  ladder_pass(first_down_, taps[0], N, s0_.data<float>(), nullptr);
  const float* s = s0_.data<float>();
  for (int k = 0; k < K; ++k) {
    const bool last = k == K - 1;
    Tensor::ensure(ladder_[size_t(k)], {N, c_}, DType::f32, cat);
    Tensor::ensure(mixed_[size_t(k)], {N, c_}, DType::f32, cat);
    float* lad = ladder_[size_t(k)].data<float>();
    float* mix = mixed_[size_t(k)].data<float>();
    ladder_pass(downs_[size_t(k)], taps[size_t(k) + 1], N, lad, nullptr);
    const float g = gate(kept_[size_t(k)]);
#pragma omp parallel for simd schedule(static) if (Nc >= (1 << 15))
    for (size_t e = 0; e < Nc; ++e) mix[e] = g * s[e] + (1.0f - g) * lad[e];
    // prev_[k] holds this block's output, which is the next block's input before mixing.
    const bool first_only = last && first_token_;
    Tensor::ensure(prev_[size_t(k)], {first_only ? B : N, c_}, DType::f32, cat);
    // With recompute, a block keeps nothing here: backward runs it again from mixed_[k].
    const bool keep = save && !recompute_;
    blocks_[size_t(k)].forward(prev_[size_t(k)].data<float>(), mix, keep ? bufs_[size_t(k)] : scratch_, scratch_, keep, b, opt,
                               first_only);
    s = prev_[size_t(k)].data<float>();
  }
  const float* rows = s;
  if (!first_token_) {
    Tensor::ensure(last_rows_, {B, c_}, DType::f32, cat);
    float* lr = last_rows_.data<float>();
    for (int r = 0; r < B; ++r)
      std::copy(s + (size_t(r) * b.T + size_t(feature_rows[size_t(r)])) * c_,
                s + (size_t(r) * b.T + size_t(feature_rows[size_t(r)]) + 1) * c_, lr + size_t(r) * c_);
    rows = lr;
  }
  Tensor::ensure(features_, {B, C_}, DType::f32, cat);
  up_.forward(features_.data<float>(), rows, B);
  return features_;
}

void LstSideNetwork::backward(const float* d_features) {
  if (!sopt_.save_for_backward) throw std::logic_error("LstSideNetwork::backward needs a forward with save_for_backward");
  const core::TokenBatch& b = batch_;
  const int N = b.rows(), B = b.B, K = int(kept_.size());
  const size_t Nc = size_t(N) * c_;
  const auto& cfg = backbone_.config();
  Tensor::ensure(d_rows_, {B, c_}, DType::f32, MemCategory::workspace);
  Tensor::ensure(d_a_, {N, c_}, DType::f32, MemCategory::workspace);
  Tensor::ensure(d_b_, {N, c_}, DType::f32, MemCategory::workspace);
  Tensor::ensure(d_tmp_, {N, c_}, DType::f32, MemCategory::workspace);
  ws_.ensure(b, c_, cfg.intermediate / opt_.reduction, cfg.heads);

  const float* rows = first_token_ ? prev_[size_t(K) - 1].data<float>() : last_rows_.data<float>();
  up_.backward(d_rows_.data<float>(), d_features, rows, B);
  const float* d_out = d_rows_.data<float>();
  if (!first_token_) {  // the features came from one row per sequence: scatter into a zeroed [N, c]
    float* d = d_a_.data<float>();
    std::fill(d, d + Nc, 0.0f);
    for (int r = 0; r < B; ++r)
      std::copy(d_out + size_t(r) * c_, d_out + size_t(r + 1) * c_, d + (size_t(r) * b.T + size_t(feature_rows_[size_t(r)])) * c_);
    d_out = d;
  }
  float* alpha_grad = alpha_->g();
  for (int k = K - 1; k >= 0; --k) {
    float* dx = d_b_.data<float>();
    const bool first_only = k == K - 1 && first_token_;
    core::BertLayer::Buffers& buf = recompute_ ? rec_ : bufs_[size_t(k)];
    if (recompute_)  // the block's forward again (same input, same dropout masks), now keeping what backward reads;
                     // its output goes to d_tmp_, which is free until the ladder's gradient below
      blocks_[size_t(k)].forward(d_tmp_.data<float>(), mixed_[size_t(k)].data<float>(), rec_, scratch_, true, b, sopt_,
                                 first_only);
    blocks_[size_t(k)].backward(dx, d_out, mixed_[size_t(k)].data<float>(), buf, b, sopt_, ws_, first_only);
    const int i = kept_[size_t(k)];
    const float g = gate(i);
    const float* prev = k > 0 ? prev_[size_t(k) - 1].data<float>() : s0_.data<float>();
    const float* lad = ladder_[size_t(k)].data<float>();
    // mix = g s + (1 - g) ladder:  dL/dg = sum (s - ladder) * d(mix);  dg/dalpha = g (1 - g) / T
    double dg = 0;
#pragma omp parallel for simd schedule(static) reduction(+ : dg) if (Nc >= (1 << 15))
    for (size_t e = 0; e < Nc; ++e) dg += double(prev[e] - lad[e]) * double(dx[e]);
    alpha_grad[i] += float(dg * double(g) * (1.0 - double(g)) / double(opt_.gate_T));
    float* dl = d_tmp_.data<float>();
    float* dp = d_a_.data<float>();
#pragma omp parallel for simd schedule(static) if (Nc >= (1 << 15))
    for (size_t e = 0; e < Nc; ++e) {
      dl[e] = (1.0f - g) * dx[e];
      dp[e] = g * dx[e];
    }
    ladder_pass(downs_[size_t(k)], taps_[size_t(k) + 1], N, nullptr, dl);
    d_out = dp;
  }
  ladder_pass(first_down_, taps_[0], N, nullptr, d_out);
}

}  // namespace ladder::adapters
