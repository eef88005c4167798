#pragma once
// Sequence classification / regression heads as Hugging Face defines them, laid out by the backbone's
// ClassifierLayout:
//   BERT  (BertForSequenceClassification): logits = classifier(dropout(pooled)), "classifier.weight/bias"
//   GPT-2 (GPT2ForSequenceClassification): logits = score(h[last real token]), "score.weight", no bias
// num_labels == 1 is regression (MSE on a float score, e.g. STS-B); otherwise cross-entropy.
// The head registers its parameters (trainable) in the backbone's registry; weights ~ N(0, 0.02), bias 0.
#include <cstdint>

#include "core/backbones/backbone.h"
#include "core/modules/linear.h"

namespace ladder::adapters {

class SequenceClassificationHead {
 public:
  SequenceClassificationHead(core::Backbone& backbone, int num_labels, uint64_t seed);

  // After backbone.forward: logits [B, num_labels].
  const core::Tensor& forward(const core::TokenBatch& b, const core::StepOptions& opt);
  // The same head on given features [B, d] instead of the backbone's pooled output (a side network's),
  // with BERT's classifier dropout; backward_to then stops at the features.
  const core::Tensor& forward_on(const float* features, const core::TokenBatch& b, const core::StepOptions& opt);
  // d_features [B, d] OVERWRITTEN with dL/d(features) (times grad_scale); head gradients accumulate.
  void backward_to(const int32_t* labels, const float* scores, float grad_scale, float* d_features);
  // Mean loss over the batch; labels for classification, scores for regression.
  float loss(const int32_t* labels, const float* scores) const;
  // Backward of that loss (times grad_scale) through the head and the backbone.
  void backward(const int32_t* labels, const float* scores, float grad_scale);
  int num_labels() const { return num_labels_; }
  bool regression() const { return num_labels_ == 1; }
  // BERT's head reads only the pooled CLS row: callers set StepOptions::first_token_only from this so the
  // backbone's last layer skips the other positions. GPT-2's reads the last real token of each row.
  bool reads_first_token_only() const { return !last_token_head_; }
  const core::Tensor& logits() const { return logits_; }

 private:
  core::Backbone& backbone_;
  int num_labels_;
  bool last_token_head_;  // classifies the last real token (decoders), not the pooled first one
  core::Linear linear_;
  float dropout_;
  core::TokenBatch batch_;
  core::StepOptions opt_;
  core::Tensor in_, logits_, dlogits_, din_, dlast_;
  std::vector<int> last_token_;
};

}  // namespace ladder::adapters
