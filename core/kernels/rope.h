#pragma once
// Rotary position embeddings as Hugging Face's Llama and Gemma apply them (rotate_half: element i of a
// head's first half pairs with element i + D/2). inv_freq[i] = base^(-2i/D) and the angle
// pos * inv_freq[i] are formed in fp32 as transformers forms them; linear scaling divides positions.
#include <cstdint>
#include <vector>

namespace ladder::core {

// cos/sin of every (position, frequency): [positions, D/2] each.
struct RopeTable {
  int D = 0, positions = 0;
  float base = 0.0f, linear_factor = 1.0f;
  std::vector<float> cos, sin;
  // Fills the table for positions [0, positions) (no work when it already covers them with these settings).
  void ensure(int head_dim, int positions, float base, float linear_factor = 1.0f);
};

// x: rows of `heads` heads of width D (row stride ld), position of row r = pos[r]; rotated in place.
void rope_forward(float* x, int rows, int heads, int ld, const int32_t* pos, const RopeTable& t);
// The inverse rotation: dx = R(-angle) dy, in place on a gradient laid out as rope_forward's x.
void rope_backward(float* dx, int rows, int heads, int ld, const int32_t* pos, const RopeTable& t);

}  // namespace ladder::core
