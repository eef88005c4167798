#include "data/activation_store/store_reader.h"

#include <algorithm>
#include <filesystem>
#include <stdexcept>

#include "core/io/hdf5_file.h"

namespace ladder::data {

using core::DType;

struct ActivationStoreReader::Files {
  core::Hdf5File file;
  core::Hdf5Dataset input_ids, attention_mask, token_type_ids, labels, logits;
  std::vector<core::Hdf5Dataset> hidden;  // in id_.layers order
};

namespace {

std::runtime_error store_error(const std::string& path, const std::string& what) {
  return std::runtime_error("activation store " + path + ": " + what);
}

std::string dims_text(const std::vector<uint64_t>& d) {
  std::string s = "[";
  for (size_t i = 0; i < d.size(); ++i) {
    if (i) s += ", ";
    s += std::to_string(d[i]);
  }
  return s + "]";
}

core::Hdf5Dataset open_checked(const core::Hdf5File& f, const std::string& path, const std::string& name,
                               const std::vector<uint64_t>& dims, std::vector<DType> dtypes) {
  if (!f.exists(name)) throw store_error(path, "has no dataset '" + name + "'");
  core::Hdf5Dataset ds = f.open_dataset(name);
  if (ds.dims() != dims)
    throw store_error(path, "dataset '" + name + "' is " + dims_text(ds.dims()) + " but its attributes say " + dims_text(dims));
  if (std::find(dtypes.begin(), dtypes.end(), ds.dtype()) == dtypes.end())
    throw store_error(path, "dataset '" + name + "' is " + core::dtype_name(ds.dtype()) + ", not " + core::dtype_name(dtypes[0]));
  return ds;
}

}  // namespace

ActivationStoreReader::ActivationStoreReader(const std::string& path) : path_(path) {
  if (!std::filesystem::exists(path)) {
    const bool tmp = std::filesystem::exists(path + ".tmp");
    throw store_error(path, tmp ? "does not exist; " + path + ".tmp does, left by a writer that did not finish"
                                : "does not exist (write it with `ladder cache`)");
  }
  std::optional<core::Hdf5File> f;
  try {
    f.emplace(core::Hdf5File::open_read(path));
  } catch (const std::exception& e) {
    throw store_error(path, "cannot be opened: not an HDF5 file, or truncated or corrupt (" + std::string(e.what()) + ")");
  }
  id_ = read_identity(*f);
  if (!f->has_attr("complete"))
    throw store_error(path, "is incomplete: it has no 'complete' attribute, so its writer did not finish; re-run `ladder cache`");
  if (f->get_attr_int("complete") != 1)
    throw store_error(path, "is incomplete: its 'complete' attribute is " + std::to_string(f->get_attr_int("complete")) +
                                ", not 1, so its writer did not finish; re-run `ladder cache`");
  const uint64_t N = uint64_t(id_.num_rows), T = uint64_t(id_.max_len), H = uint64_t(id_.hidden_size);
  files_ = std::make_unique<Files>(Files{std::move(*f), {}, {}, {}, {}, {}, {}});
  const core::Hdf5File& file = files_->file;
  files_->input_ids = open_checked(file, path, "/input_ids", {N, T}, {DType::i32});
  files_->attention_mask = open_checked(file, path, "/attention_mask", {N, T}, {DType::i8});
  if (id_.token_types) files_->token_type_ids = open_checked(file, path, "/token_type_ids", {N, T}, {DType::i8});
  files_->labels = open_checked(file, path, "/labels", {N}, {id_.label_kind == LabelKind::integer ? DType::i32 : DType::f32});
  if (id_.num_logits > 0) files_->logits = open_checked(file, path, "/logits", {N, uint64_t(id_.num_logits)}, {DType::f32});
  for (int64_t l : id_.layers)
    files_->hidden.push_back(open_checked(file, path, "/hidden/" + std::to_string(l), {N, T, H}, {id_.dtype}));
}

ActivationStoreReader::~ActivationStoreReader() = default;
ActivationStoreReader::ActivationStoreReader(ActivationStoreReader&&) noexcept = default;

StoreBatch ActivationStoreReader::read_batch(const std::vector<uint64_t>& rows, const std::vector<int64_t>& layers,
                                             bool keep_16bit) const {
  const uint64_t N = num_rows(), T = uint64_t(id_.max_len), H = uint64_t(id_.hidden_size);
  StoreBatch out;
  out.rows = rows;
  out.layers = layers.empty() ? id_.layers : layers;
  std::vector<size_t> layer_index;
  for (int64_t l : out.layers) {
    auto it = std::find(id_.layers.begin(), id_.layers.end(), l);
    if (it == id_.layers.end()) {
      StoreExpectation want;
      want.layers = out.layers;
      check_matches(want);  // throws, naming the layer and the ones the store holds
    }
    layer_index.push_back(size_t(it - id_.layers.begin()));
  }
  for (uint64_t r : rows)
    if (r >= N) throw store_error(path_, "row " + std::to_string(r) + " is past the end (the store has " + std::to_string(N) + " rows)");

  // HDF5 reads a selection in file order: read the sorted distinct rows, then place them in the asked order.
  std::vector<uint64_t> uniq(rows);
  std::sort(uniq.begin(), uniq.end());
  uniq.erase(std::unique(uniq.begin(), uniq.end()), uniq.end());
  const size_t B = rows.size(), U = uniq.size();
  std::vector<size_t> src(B);
  for (size_t i = 0; i < B; ++i) src[i] = size_t(std::lower_bound(uniq.begin(), uniq.end(), rows[i]) - uniq.begin());

  // The mask decides how many columns the batch needs: up to its longest real row.
  std::vector<int8_t> mask(U * T);
  files_->attention_mask.read_row_list(uniq, 0, mask.data());
  std::vector<uint64_t> len(U, 0);
  uint64_t Tb = 1;
  for (size_t u = 0; u < U; ++u) {
    for (uint64_t t = T; t-- > 0;)
      if (mask[u * T + t]) {
        len[u] = t + 1;
        break;
      }
    Tb = std::max(Tb, len[u]);
  }

  PaddedBatch& pb = out.tokens;
  pb.B = int(B);
  pb.T = int(Tb);
  std::vector<int32_t> ids(U * Tb);
  std::vector<int8_t> types(id_.token_types ? U * Tb : 0);
  files_->input_ids.read_row_list(uniq, Tb, ids.data());
  if (id_.token_types) files_->token_type_ids.read_row_list(uniq, Tb, types.data());
  pb.ids.resize(B * Tb);
  pb.types.assign(B * Tb, 0);
  pb.mask.resize(B * Tb);
  pb.lengths.resize(B);
  for (size_t b = 0; b < B; ++b) {
    const size_t u = src[b];
    int real = 0;
    for (uint64_t t = 0; t < Tb; ++t) {
      pb.ids[b * Tb + t] = ids[u * Tb + t];
      if (id_.token_types) pb.types[b * Tb + t] = types[u * Tb + t];
      pb.mask[b * Tb + t] = mask[u * T + t] ? 1.0f : 0.0f;
      real += mask[u * T + t] ? 1 : 0;
    }
    pb.lengths[b] = real;
  }

  if (id_.label_kind == LabelKind::integer) {
    std::vector<int32_t> l(U);
    files_->labels.read_row_list(uniq, 0, l.data());
    for (size_t b = 0; b < B; ++b) out.labels.push_back(l[src[b]]);
  } else {
    std::vector<float> s(U);
    files_->labels.read_row_list(uniq, 0, s.data());
    for (size_t b = 0; b < B; ++b) out.scores.push_back(s[src[b]]);
  }
  if (id_.num_logits > 0) {
    const size_t C = size_t(id_.num_logits);
    std::vector<float> lg(U * C);
    files_->logits.read_row_list(uniq, 0, lg.data());
    out.logits.resize(B * C);
    for (size_t b = 0; b < B; ++b) std::copy_n(lg.begin() + long(src[b] * C), C, out.logits.begin() + long(b * C));
  }

  // Hidden states: read [U, Tb, H] in the stored type, convert to f32 (or keep the bits) while placing rows.
  const size_t row = size_t(Tb * H);
  if (keep_16bit && id_.dtype != DType::f32) {
    out.hidden_dtype = id_.dtype;
    for (size_t li : layer_index) {
      std::vector<uint16_t> h(B * row);
      files_->hidden[li].read_rows_at(rows, Tb, h.data());  // each row straight into its place
      out.hidden_bits.push_back(std::move(h));
    }
    out.hidden_bytes = core::TrackedBytes(core::MemCategory::activations, layer_index.size() * B * row * sizeof(uint16_t));
    return out;
  }
  std::vector<uint16_t> bits(id_.dtype == DType::f32 ? 0 : U * row);
  std::vector<float> f32(id_.dtype == DType::f32 ? U * row : 0);
  for (size_t li : layer_index) {
    std::vector<float> h(B * row);
    files_->hidden[li].read_row_list(uniq, Tb, id_.dtype == DType::f32 ? static_cast<void*>(f32.data()) : bits.data());
    // Serial on purpose: this runs on the prefetch thread, beside the training step's OpenMP team.
    for (int64_t b = 0; b < int64_t(B); ++b) {
      float* dst = h.data() + size_t(b) * row;
      const size_t off = src[size_t(b)] * row;
      if (id_.dtype == DType::f32) std::copy_n(f32.data() + off, row, dst);
      else core::convert_to_f32(id_.dtype, bits.data() + off, dst, row);
    }
    out.hidden.push_back(std::move(h));
  }
  out.hidden_bytes = core::TrackedBytes(core::MemCategory::activations, layer_index.size() * B * row * sizeof(float));
  return out;
}

// ---- PrefetchingReader ----

PrefetchingReader::PrefetchingReader(const ActivationStoreReader& reader, std::vector<std::vector<uint64_t>> plan,
                                     std::vector<int64_t> layers, size_t depth, bool keep_16bit)
    : reader_(reader), plan_(std::move(plan)), layers_(std::move(layers)), depth_(std::max<size_t>(1, depth)),
      keep_16bit_(keep_16bit), thread_([this] { run(); }) {}

PrefetchingReader::~PrefetchingReader() {
  {
    std::lock_guard<std::mutex> lk(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  thread_.join();
}

void PrefetchingReader::run() {
  for (size_t i = 0; i < plan_.size(); ++i) {
    {
      std::unique_lock<std::mutex> lk(mu_);
      cv_.wait(lk, [&] { return stop_ || queue_.size() < depth_; });
      if (stop_) return;
    }
    try {
      std::lock_guard<std::mutex> io(io_mu_);
      StoreBatch b = reader_.read_batch(plan_[i], layers_, keep_16bit_);
      std::lock_guard<std::mutex> lk(mu_);
      queue_.push_back(std::move(b));
      ++produced_;
    } catch (...) {
      std::lock_guard<std::mutex> lk(mu_);
      error_ = std::current_exception();
      cv_.notify_all();
      return;
    }
    cv_.notify_all();
  }
}

std::optional<StoreBatch> PrefetchingReader::next() {
  std::unique_lock<std::mutex> lk(mu_);
  cv_.wait(lk, [&] { return !queue_.empty() || error_ || consumed_ == plan_.size(); });
  if (!queue_.empty()) {
    StoreBatch b = std::move(queue_.front());
    queue_.pop_front();
    ++consumed_;
    lk.unlock();
    cv_.notify_all();  // room for the next read
    return b;
  }
  if (error_) std::rethrow_exception(error_);
  return std::nullopt;
}

std::unique_lock<std::mutex> PrefetchingReader::hold_hdf5() { return std::unique_lock<std::mutex>(io_mu_); }

std::vector<int64_t> ActivationStoreReader::row_lengths() const {
  const uint64_t N = num_rows(), T = uint64_t(id_.max_len);
  std::vector<int8_t> mask(size_t(N * T));
  if (N) files_->attention_mask.read_all(mask.data());
  std::vector<int64_t> len(size_t(N), 0);
  for (uint64_t r = 0; r < N; ++r)
    for (uint64_t t = 0; t < T; ++t) len[size_t(r)] += mask[size_t(r * T + t)] != 0;
  return len;
}

}  // namespace ladder::data
