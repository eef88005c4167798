#pragma once
// Losses return the mean over counted rows and write d(mean loss)/d(input) * grad_scale in backward.
#include <cstdint>

namespace ladder::core {

// logits [N, V], targets [N]; rows whose target == ignore_index are skipped (HF uses -100).
// Returns mean NLL over counted rows; count_out (optional) gets the number counted.
float cross_entropy_forward(const float* logits, const int32_t* targets, int N, int V, int ignore_index,
                            int* count_out = nullptr);
// dlogits OVERWRITTEN: (softmax - onehot) * grad_scale / count; ignored rows get 0.
void cross_entropy_backward(float* dlogits, const float* logits, const int32_t* targets, int N, int V,
                            int ignore_index, float grad_scale);

// Mean squared error over n values.
float mse_forward(const float* pred, const float* target, int n);
void mse_backward(float* dpred, const float* pred, const float* target, int n, float grad_scale);

// Knowledge distillation: T^2 * mean_rows KL(softmax(teacher/T) || softmax(student/T)), as Hinton et al.
float kl_div_forward(const float* student_logits, const float* teacher_logits, int N, int V, float temperature);
// dstudent OVERWRITTEN (the teacher gets no gradient).
void kl_div_backward(float* dstudent, const float* student_logits, const float* teacher_logits, int N, int V,
                     float temperature, float grad_scale);

// Next-token targets for causal LM loss, as Hugging Face computes it from labels = input_ids with padding
// set to -100: position t predicts token t+1 of the same row; the last position and padded targets get
// ignore_index. out [B*T].
void causal_lm_targets(int32_t* out, const int32_t* ids, const float* attention_mask, int B, int T, int ignore_index);

}  // namespace ladder::core
