#include "data/activation_store/store_writer.h"

#include <cstdio>
#include <set>
#include <stdexcept>

#include "core/io/hdf5_file.h"

namespace ladder::data {

using core::DType;

// The open file and its datasets. Datasets are closed before the file: MPI-IO files refuse to close while
// objects are open.
struct ActivationStoreWriter::Files {
  core::Hdf5File file;
  core::Hdf5Dataset input_ids, attention_mask, token_type_ids, labels, logits;
  std::vector<core::Hdf5Dataset> hidden;
  void close_datasets() {
    input_ids = {};
    attention_mask = {};
    token_type_ids = {};
    labels = {};
    logits = {};
    hidden.clear();
  }
};

StoreRows store_rows_from(const PaddedBatch& b) {
  StoreRows r;
  r.width = b.T;
  r.input_ids = b.ids.data();
  r.attention_mask = b.mask.data();
  r.token_type_ids = b.types.data();
  return r;
}

namespace {

std::runtime_error store_error(const std::string& path, const std::string& what) {
  return std::runtime_error("activation store " + path + ": " + what);
}

void validate(const std::string& path, const StoreIdentity& id) {
  if (id.dtype != DType::f16 && id.dtype != DType::bf16 && id.dtype != DType::f32)
    throw store_error(path, std::string("hidden states are stored as f16, bf16 or f32, not ") + core::dtype_name(id.dtype));
  if (id.max_len <= 0 || id.num_rows < 0 || id.num_logits < 0)
    throw store_error(path, "needs max_len > 0, num_rows >= 0 and num_logits >= 0");
  if (!id.layers.empty() && id.hidden_size <= 0) throw store_error(path, "needs hidden_size > 0");
  std::set<int64_t> seen;
  for (int64_t l : id.layers)
    if (l < 0 || !seen.insert(l).second)
      throw store_error(path, "layer " + std::to_string(l) + " is negative or listed twice");
}

}  // namespace

ActivationStoreWriter::ActivationStoreWriter(std::string path, StoreIdentity id, StoreWriterOptions opt)
    : path_(std::move(path)), id_(std::move(id)), opt_(opt) {
  id_.format = kActivationStoreFormat;
  id_.version = kActivationStoreVersion;
  validate(path_, id_);
  if (opt_.comm != MPI_COMM_NULL) MPI_Comm_rank(opt_.comm, &rank_);
  const uint64_t N = uint64_t(id_.num_rows), T = uint64_t(id_.max_len), H = uint64_t(id_.hidden_size);
  const uint64_t chunk = opt_.chunk_rows;
  const bool sum = opt_.checksum && opt_.comm == MPI_COMM_NULL;
  // A checksum covers a whole chunk, and H5Dread reads and verifies the whole chunk of every row it is asked
  // for: with checksums, one row per hidden-state chunk, or a random batch reads chunk_rows times its bytes.
  const uint64_t hidden_chunk = sum ? 1 : chunk;
  files_ = std::make_unique<Files>(Files{opt_.comm == MPI_COMM_NULL ? core::Hdf5File::create(path_)
                                                                     : core::Hdf5File::create_mpi(path_ + ".tmp", opt_.comm),
                                         {}, {}, {}, {}, {}, {}});
  core::Hdf5File& f = files_->file;
  write_identity(f, id_);
  f.set_attr("chunk_rows", int64_t(std::max<uint64_t>(1, std::min<uint64_t>(chunk, std::max<uint64_t>(N, 1)))));
  files_->input_ids = f.create_dataset("/input_ids", DType::i32, {N, T}, chunk, sum);
  files_->attention_mask = f.create_dataset("/attention_mask", DType::i8, {N, T}, chunk, sum);
  if (id_.token_types) files_->token_type_ids = f.create_dataset("/token_type_ids", DType::i8, {N, T}, chunk, sum);
  files_->labels = f.create_dataset("/labels", id_.label_kind == LabelKind::integer ? DType::i32 : DType::f32, {N},
                                    std::max<uint64_t>(chunk, 4096), sum);
  f.create_group("/hidden", /*track_order=*/true);
  for (int64_t l : id_.layers) {
    files_->hidden.push_back(f.create_dataset("/hidden/" + std::to_string(l), id_.dtype, {N, T, H}, hidden_chunk, sum));
    // h5py reads bf16 (a 16-bit float with an 8-bit exponent, which numpy lacks) as float32; this says what it is.
    files_->hidden.back().set_attr("dtype", id_.dtype == DType::f16 ? "float16" : id_.dtype == DType::bf16 ? "bfloat16" : "float32");
  }
  if (id_.num_logits > 0) files_->logits = f.create_dataset("/logits", DType::f32, {N, uint64_t(id_.num_logits)}, chunk, sum);
  written_.assign(size_t(N), 0);
}

ActivationStoreWriter::~ActivationStoreWriter() {
  if (!files_) return;
  files_->close_datasets();
  files_.reset();  // a serial file removes its own temporary; an MPI file is closed collectively here
  if (opt_.comm != MPI_COMM_NULL && rank_ == 0) std::remove((path_ + ".tmp").c_str());
}

void ActivationStoreWriter::write_rows(uint64_t first_row, uint64_t count, const StoreRows& r) {
  if (!files_) throw store_error(path_, "write_rows after finish()");
  const uint64_t N = uint64_t(id_.num_rows), T = uint64_t(id_.max_len), H = uint64_t(id_.hidden_size);
  if (first_row + count > N)
    throw store_error(path_, "rows [" + std::to_string(first_row) + ", " + std::to_string(first_row + count) +
                                 ") are past the end (the store has " + std::to_string(N) + " rows)");
  if (count == 0) return;
  const uint64_t W = uint64_t(r.width);
  if (r.width <= 0 || W > T)
    throw store_error(path_, "rows are " + std::to_string(r.width) + " tokens wide; max_len is " + std::to_string(T));
  if (!r.input_ids || !r.attention_mask) throw store_error(path_, "write_rows needs input_ids and attention_mask");
  if (id_.token_types && !r.token_type_ids) throw store_error(path_, "this store keeps token_type_ids; none given");
  if (id_.label_kind == LabelKind::integer ? !r.labels : !r.scores)
    throw store_error(path_, std::string("write_rows needs ") + (id_.label_kind == LabelKind::integer ? "labels" : "scores"));
  if (r.hidden.size() != id_.layers.size())
    throw store_error(path_, "write_rows got " + std::to_string(r.hidden.size()) + " hidden-state buffers for " +
                                 std::to_string(id_.layers.size()) + " layers");
  if (id_.num_logits > 0 && !r.logits) throw store_error(path_, "this store keeps teacher logits; none given");

  // Tokens: pad each row from W to T. Every masked-out position holds id 0 and type 0, whatever the batcher's
  // pad id was, so that the stored rows do not depend on how they were batched.
  std::vector<int32_t> ids(count * T, 0);
  std::vector<int8_t> mask(count * T, 0), types(id_.token_types ? count * T : 0, 0);
  for (uint64_t b = 0; b < count; ++b)
    for (uint64_t t = 0; t < W; ++t) {
      if (!(r.attention_mask[b * W + t] > 0.5f)) continue;
      mask[b * T + t] = 1;
      ids[b * T + t] = r.input_ids[b * W + t];
      if (id_.token_types) types[b * T + t] = int8_t(r.token_type_ids[b * W + t]);
    }
  files_->input_ids.write_rows(first_row, count, ids.data());
  files_->attention_mask.write_rows(first_row, count, mask.data());
  if (id_.token_types) files_->token_type_ids.write_rows(first_row, count, types.data());
  if (id_.label_kind == LabelKind::integer) files_->labels.write_rows(first_row, count, r.labels);
  else files_->labels.write_rows(first_row, count, r.scores);
  if (id_.num_logits > 0) files_->logits.write_rows(first_row, count, r.logits);

  // Hidden states: pad and convert in one pass into the stored element type (f16/bf16: round to nearest even).
  const bool half = id_.dtype != DType::f32;
  std::vector<uint16_t> bits(half ? count * T * H : 0);
  std::vector<float> full(half ? 0 : count * T * H);
  for (size_t l = 0; l < id_.layers.size(); ++l) {
    const float* src = r.hidden[l];
    if (!src) throw store_error(path_, "no hidden states given for layer " + std::to_string(id_.layers[l]));
    // Serial on purpose: an OpenMP team here competes with HDF5 for the cores (docs/ACTIVATION_STORE.md).
    for (int64_t bt = 0; bt < int64_t(count * T); ++bt) {
      const uint64_t b = uint64_t(bt) / T, t = uint64_t(bt) % T;
      // Padding positions are stored as zeros, whatever the backbone computed there: the store's content
      // then does not depend on how rows were batched, and a reader that forgets the mask sees zeros.
      const float* in = t < W && mask[size_t(bt)] ? src + (b * W + t) * H : nullptr;
      if (!half) {
        float* out = full.data() + uint64_t(bt) * H;
        for (uint64_t h = 0; h < H; ++h) out[h] = in ? in[h] : 0.0f;
      } else {
        uint16_t* out = bits.data() + uint64_t(bt) * H;
        if (!in) std::fill(out, out + H, uint16_t(0));
        else if (id_.dtype == DType::f16) for (uint64_t h = 0; h < H; ++h) out[h] = core::f32_to_f16(in[h]);
        else for (uint64_t h = 0; h < H; ++h) out[h] = core::f32_to_bf16(in[h]);
      }
    }
    files_->hidden[l].write_rows(first_row, count, half ? static_cast<const void*>(bits.data()) : full.data());
  }
  std::fill(written_.begin() + long(first_row), written_.begin() + long(first_row + count), uint8_t(1));
}

void ActivationStoreWriter::finish() {
  if (!files_) throw store_error(path_, "finish() called twice");
  const bool mpi = opt_.comm != MPI_COMM_NULL;
  if (mpi && !written_.empty())
    MPI_Allreduce(MPI_IN_PLACE, written_.data(), int(written_.size()), MPI_UNSIGNED_CHAR, MPI_MAX, opt_.comm);
  uint64_t missing = 0, first_missing = 0;
  for (size_t i = written_.size(); i-- > 0;)
    if (!written_[i]) {
      ++missing;
      first_missing = i;
    }
  if (missing > 0)
    throw store_error(path_, std::to_string(missing) + " of " + std::to_string(written_.size()) +
                                 " rows were never written (the first is row " + std::to_string(first_missing) +
                                 "); the store is left incomplete");
  files_->close_datasets();
  // Last attribute before the close: a file without it (an older crash, a copy taken mid-write) is never read.
  files_->file.set_attr("complete", int64_t(1));
  if (!mpi) {
    files_->file.commit();
    files_.reset();
    return;
  }
  files_->file.close();
  files_.reset();
  // Every rank has closed (H5Fclose is collective); rank 0 renames and tells the others how it went.
  int ok = 1;
  if (rank_ == 0) ok = std::rename((path_ + ".tmp").c_str(), path_.c_str()) == 0 ? 1 : 0;
  MPI_Bcast(&ok, 1, MPI_INT, 0, opt_.comm);
  if (!ok) throw store_error(path_, "cannot rename from " + path_ + ".tmp");
}

}  // namespace ladder::data
