#include "data/padded_batch.h"

#include <algorithm>
#include <numeric>

namespace ladder::data {

long PaddedBatch::real_tokens() const {
  long n = 0;
  for (int l : lengths) n += l;
  return n;
}

void pad_batch(PaddedBatch& out, const std::vector<Encoding>& encs, const std::vector<size_t>& rows, int32_t pad_id,
               int min_length) {
  out.B = int(rows.size());
  out.T = std::max(0, min_length);
  for (size_t r : rows) out.T = std::max(out.T, int(encs[r].input_ids.size()));
  const size_t n = size_t(out.B) * out.T;
  out.ids.assign(n, pad_id);
  out.types.assign(n, 0);
  out.mask.assign(n, 0.0f);
  out.lengths.assign(size_t(out.B), 0);
  for (int b = 0; b < out.B; ++b) {
    const Encoding& e = encs[rows[size_t(b)]];
    const size_t len = e.input_ids.size();
    out.lengths[size_t(b)] = int(len);
    std::copy(e.input_ids.begin(), e.input_ids.end(), out.ids.begin() + long(b) * out.T);
    if (e.token_type_ids.size() == len)
      std::copy(e.token_type_ids.begin(), e.token_type_ids.end(), out.types.begin() + long(b) * out.T);
    std::fill(out.mask.begin() + long(b) * out.T, out.mask.begin() + long(b) * out.T + long(len), 1.0f);
  }
}

std::vector<size_t> order_by_length(const std::vector<Encoding>& encs) {
  std::vector<size_t> idx(encs.size());
  std::iota(idx.begin(), idx.end(), 0);
  std::stable_sort(idx.begin(), idx.end(),
                   [&](size_t a, size_t b) { return encs[a].input_ids.size() > encs[b].input_ids.size(); });
  return idx;
}

}  // namespace ladder::data
