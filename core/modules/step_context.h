#pragma once
// What one forward/backward step needs to know besides its inputs: the batch geometry and masks, whether
// to keep activations for backward, whether dropout is on, and where dropout's random stream comes from.
#include "core/kernels/dropout.h"
#include <cstdint>

namespace ladder::core {

struct TokenBatch {
  int B = 0, T = 0;
  const int32_t* input_ids = nullptr;       // [B, T]
  const int32_t* token_type_ids = nullptr;  // [B, T] or null (all segment 0)
  const float* attention_mask = nullptr;    // [B, T], 1 = real token, 0 = padding; null = no padding
  int rows() const { return B * T; }
};

struct StepOptions {
  bool save_for_backward = false;  // keep what backward needs (off for eval, cache, frozen LST backbones)
  bool training = false;           // dropout active
  bool keep_hidden_states = false; // keep every layer's output even without backward (taps, parity)
  uint64_t seed = 0;               // dropout stream for this step: derive it from the run seed and global step
  SampleKeys samples;              // global sample index of each row (so a sample's dropout mask does not
                                   // depend on which rank or micro-batch holds it)
  bool first_token_only = false;   // the caller reads only position 0 of the last hidden state (BERT's
                                   // pooler): the last layer runs everything after its attention on the
                                   // first token of each sequence only (same values, ~1/T of the work)
};

// The first token of each sequence as a batch of length-1 sequences: what row-wise ops (dropout keyed by
// sequence and position, adapters, LoRA branches) see when only position 0 is computed.
inline TokenBatch first_token_rows(const TokenBatch& b) { return TokenBatch{b.B, 1, nullptr, nullptr, nullptr}; }

// Dropout on [B, T, width] activations whose counters are keyed by (global sequence, position, channel),
// so the mask of one sample is the same whatever batch it lands in. out may alias in.
void sequence_dropout_forward(float* out, const float* in, const TokenBatch& b, int width, int max_positions,
                              float p, uint64_t seed, const SampleKeys& samples);
void sequence_dropout_backward(float* dx, const float* dy, const TokenBatch& b, int width, int max_positions,
                               float p, uint64_t seed, const SampleKeys& samples);
// The same masks on columns [col0, col0 + width) of a [B, T, full_width] activation: what a rank holding
// that slice (a row-parallel layer's input under tensor parallelism) must draw to match one process.
void sequence_dropout_columns_forward(float* out, const float* in, const TokenBatch& b, int width, int full_width,
                                      int col0, int max_positions, float p, uint64_t seed, const SampleKeys& samples);
void sequence_dropout_columns_backward(float* dx, const float* dy, const TokenBatch& b, int width, int full_width,
                                       int col0, int max_positions, float p, uint64_t seed, const SampleKeys& samples);

}  // namespace ladder::core
