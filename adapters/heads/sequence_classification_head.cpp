#include "adapters/heads/sequence_classification_head.h"

#include <random>
#include <stdexcept>

#include "core/kernels/dropout.h"
#include "core/kernels/losses.h"

namespace ladder::adapters {

using core::DType;
using core::MemCategory;
using core::Tensor;

namespace {
constexpr uint64_t kHeadDropoutSite = 2000;
}

SequenceClassificationHead::SequenceClassificationHead(core::Backbone& backbone, int num_labels, uint64_t seed)
    : backbone_(backbone), num_labels_(num_labels), last_token_head_(!backbone.classifier_layout().from_pooler) {
  if (num_labels < 1) throw std::invalid_argument("classification head: num_labels must be >= 1");
  const int C = backbone.config().hidden;
  const core::ClassifierLayout layout = backbone.classifier_layout();
  if (layout.from_pooler && !backbone.has_pooler())
    throw std::runtime_error("sequence classification on " + backbone.name() + " needs the pooler (pooler.dense) in the checkpoint");
  std::mt19937_64 g(seed ^ 0x5eedc1a55ull);
  std::normal_distribution<float> n(0.0f, 0.02f);  // HF initializer_range
  std::vector<float> w(size_t(num_labels) * C);
  for (auto& v : w) v = n(g);
  auto& reg = backbone.params();
  const std::string base = layout.head;
  linear_.weight = &reg.add(base + ".weight", Tensor::from_floats(w, {num_labels, C}, MemCategory::trainable_weights));
  linear_.weight->trainable = true;
  if (layout.bias) {
    linear_.bias = &reg.add(base + ".bias", Tensor::zeros({num_labels}, DType::f32, MemCategory::trainable_weights));
    linear_.bias->trainable = true;
  }
  linear_.in = C;
  linear_.out = num_labels;
  linear_.layout = core::WeightLayout::out_in;
  dropout_ = layout.dropout ? backbone.config().hidden_dropout : 0.0f;
}

const Tensor& SequenceClassificationHead::forward(const core::TokenBatch& b, const core::StepOptions& opt) {
  if (!last_token_head_) return forward_on(backbone_.pooled().data<float>(), b, opt);
  batch_ = b;
  opt_ = opt;
  const int C = backbone_.config().hidden, B = b.B;
  const MemCategory cat = opt.save_for_backward ? MemCategory::activations : MemCategory::workspace;
  Tensor::ensure(in_, {B, C}, DType::f32, cat);
  Tensor::ensure(logits_, {B, num_labels_}, DType::f32, cat);
  float* in = in_.data<float>();
  // The last real token of each row (right padding), as HF finds it from the pad token
  last_token_.assign(size_t(B), b.T - 1);
  const float* last = backbone_.last_hidden().data<float>();
  for (int r = 0; r < B; ++r) {
    int t = b.T - 1;
    if (b.attention_mask)
      while (t > 0 && b.attention_mask[r * b.T + t] == 0.0f) --t;
    last_token_[size_t(r)] = t;
    std::copy(last + (size_t(r) * b.T + t) * C, last + (size_t(r) * b.T + t + 1) * C, in + size_t(r) * C);
  }
  linear_.forward(logits_.data<float>(), in, B);
  return logits_;
}

const Tensor& SequenceClassificationHead::forward_on(const float* features, const core::TokenBatch& b,
                                                     const core::StepOptions& opt) {
  batch_ = b;
  opt_ = opt;
  const int C = backbone_.config().hidden, B = b.B;
  const MemCategory cat = opt.save_for_backward ? MemCategory::activations : MemCategory::workspace;
  Tensor::ensure(in_, {B, C}, DType::f32, cat);
  Tensor::ensure(logits_, {B, num_labels_}, DType::f32, cat);
  float* in = in_.data<float>();
  std::copy(features, features + size_t(B) * C, in);
  if (opt.training && dropout_ > 0)
    for (int r = 0; r < B; ++r)
      core::dropout_forward(in + size_t(r) * C, in + size_t(r) * C, size_t(C), dropout_,
                            core::derive_seed(opt.seed, kHeadDropoutSite), uint64_t(opt.samples.of(r)) * uint64_t(C));
  linear_.forward(logits_.data<float>(), in, B);
  return logits_;
}

void SequenceClassificationHead::backward_to(const int32_t* labels, const float* scores, float grad_scale,
                                             float* d_features) {
  const int B = batch_.B, C = backbone_.config().hidden;
  Tensor::ensure(dlogits_, {B, num_labels_}, DType::f32, MemCategory::workspace);
  if (regression()) core::mse_backward(dlogits_.data<float>(), logits_.data<float>(), scores, B, grad_scale);
  else core::cross_entropy_backward(dlogits_.data<float>(), logits_.data<float>(), labels, B, num_labels_, -100, grad_scale);
  linear_.backward(d_features, dlogits_.data<float>(), in_.data<float>(), B);
  if (opt_.training && dropout_ > 0)
    for (int r = 0; r < B; ++r)
      core::dropout_backward(d_features + size_t(r) * C, d_features + size_t(r) * C, size_t(C), dropout_,
                             core::derive_seed(opt_.seed, kHeadDropoutSite), uint64_t(opt_.samples.of(r)) * uint64_t(C));
}

float SequenceClassificationHead::loss(const int32_t* labels, const float* scores) const {
  const int B = batch_.B;
  if (regression()) return core::mse_forward(logits_.data<float>(), scores, B);
  return core::cross_entropy_forward(logits_.data<float>(), labels, B, num_labels_, -100);
}

void SequenceClassificationHead::backward(const int32_t* labels, const float* scores, float grad_scale) {
  const int B = batch_.B, C = backbone_.config().hidden, T = batch_.T;
  Tensor::ensure(dlogits_, {B, num_labels_}, DType::f32, MemCategory::workspace);
  Tensor::ensure(din_, {B, C}, DType::f32, MemCategory::workspace);
  if (regression()) core::mse_backward(dlogits_.data<float>(), logits_.data<float>(), scores, B, grad_scale);
  else core::cross_entropy_backward(dlogits_.data<float>(), logits_.data<float>(), labels, B, num_labels_, -100, grad_scale);
  float* din = din_.data<float>();
  linear_.backward(din, dlogits_.data<float>(), in_.data<float>(), B);
  if (last_token_head_) {
    Tensor::ensure(dlast_, {B * T, C}, DType::f32, MemCategory::workspace);
    dlast_.zero_();
    float* d = dlast_.data<float>();
    for (int r = 0; r < B; ++r)
      std::copy(din + size_t(r) * C, din + size_t(r + 1) * C, d + (size_t(r) * T + size_t(last_token_[size_t(r)])) * C);
    backbone_.backward(d);
    return;
  }
  if (opt_.training && dropout_ > 0)
    for (int r = 0; r < B; ++r)
      core::dropout_backward(din + size_t(r) * C, din + size_t(r) * C, size_t(C), dropout_,
                             core::derive_seed(opt_.seed, kHeadDropoutSite), uint64_t(opt_.samples.of(r)) * uint64_t(C));
  backbone_.backward_from_pooled(din);
}

}  // namespace ladder::adapters
