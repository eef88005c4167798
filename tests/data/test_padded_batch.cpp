// pad_batch: a batch is padded to its longest row, or to min_length when that is longer (fixed-length
// batches for task.pad_to_max_length); padding carries pad_id, segment 0 and mask 0; real tokens keep
// their ids and segments.
#include <gtest/gtest.h>

#include <vector>

#include "data/padded_batch.h"

namespace {

using ladder::data::Encoding;
using ladder::data::PaddedBatch;
using ladder::data::pad_batch;

Encoding enc(std::vector<int32_t> ids, int32_t segment = 0) {
  Encoding e;
  e.input_ids = ids;
  e.token_type_ids.assign(ids.size(), segment);
  e.attention_mask.assign(ids.size(), 1);
  return e;
}

TEST(PaddedBatch, PadsToTheLongestRowOrToMinLength) {
  const std::vector<Encoding> encs = {enc({101, 7, 102}), enc({101, 8, 9, 10, 102}, 1)};
  PaddedBatch dyn;
  pad_batch(dyn, encs, {0, 1}, 0);
  EXPECT_EQ(dyn.B, 2);
  EXPECT_EQ(dyn.T, 5);

  PaddedBatch fixed;
  pad_batch(fixed, encs, {0, 1}, /*pad_id=*/3, /*min_length=*/8);
  ASSERT_EQ(fixed.T, 8);
  EXPECT_EQ(fixed.ids, (std::vector<int32_t>{101, 7, 102, 3, 3, 3, 3, 3, 101, 8, 9, 10, 102, 3, 3, 3}));
  EXPECT_EQ(fixed.types, (std::vector<int32_t>{0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 0, 0, 0}));
  EXPECT_EQ(fixed.mask, (std::vector<float>{1, 1, 1, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 0, 0, 0}));
  EXPECT_EQ(fixed.lengths, (std::vector<int>{3, 5}));
  EXPECT_EQ(fixed.real_tokens(), 8);

  // A min_length below the longest row changes nothing; the buffer is reused at the smaller size.
  pad_batch(fixed, encs, {1}, 3, 4);
  EXPECT_EQ(fixed.T, 5);
  EXPECT_EQ(fixed.ids.size(), 5u);
}

}  // namespace
