// Activation stores: round trips at f32 (exact), f16 and bf16 (exactly the round-to-nearest-even values),
// out-of-order and two-rank MPI writes into one file, dynamic padding on read, every identity mismatch named
// in its error, incomplete / truncated / corrupt files refused, the prefetching reader (same batches, errors
// surfacing, early shutdown), XXH64 against published vectors, and h5dump / h5py reading the file.
#include <gtest/gtest.h>
#include <hdf5.h>
#include <unistd.h>

#include <chrono>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <sstream>
#include <string>
#include <vector>

#include "core/io/hdf5_file.h"
#include "core/tensor/dtype.h"
#include "data/activation_store/store_reader.h"
#include "data/activation_store/store_schema.h"
#include "data/activation_store/store_writer.h"
#include "tests/support/error_of.h"
#include "tests/support/hdf5_damage.h"
#include "tests/support/test_paths.h"
#include "tests/support/tiny_models.h"

namespace {

namespace core = ladder::core;
namespace fs = std::filesystem;
using core::DType;
using namespace ladder::data;
using ladder::test::temp_dir;

// ---- A synthetic split: row r has length 1 + (5r + 3) % T, hidden values spread over [-8, 8) ----

struct Synthetic {
  int64_t N, T, H;
  std::vector<int64_t> layers;
  int64_t len(uint64_t r) const { return 1 + int64_t((5 * r + 3) % uint64_t(T)); }
  int32_t id(uint64_t r, int64_t t) const { return int32_t(r * 1000 + uint64_t(t) + 1); }
  int32_t type(uint64_t r, int64_t t) const { return int32_t((r + uint64_t(t)) % 2); }
  int32_t label(uint64_t r) const { return r == 4 ? -1 : int32_t(r % 3); }  // row 4 unlabeled
  float logit(uint64_t r, int64_t c) const { return float(r) * 0.5f - float(c); }
  float value(int64_t layer, uint64_t r, int64_t t, int64_t h) const {
    uint64_t x = uint64_t(layer) * 0x9E3779B97F4A7C15ull ^ (r * 1315423911ull + uint64_t(t) * 2654435761ull + uint64_t(h) * 97ull);
    x ^= x >> 29;
    x *= 0xBF58476D1CE4E5B9ull;
    x ^= x >> 32;
    return (float(x % 1000003) / 1000003.0f - 0.5f) * 16.0f;
  }
};

StoreIdentity identity_for(const Synthetic& s, DType dt) {
  StoreIdentity id;
  id.backbone_id = "tiny/bert";
  id.backbone_hash = "xxh64:00000000000000aa";
  id.tokenizer_hash = "xxh64:00000000000000bb";
  id.task = "sst2";
  id.split = "train";
  id.max_len = s.T;
  id.dtype = dt;
  id.layers = s.layers;
  id.hidden_size = s.H;
  id.num_rows = s.N;
  id.num_logits = 2;
  id.token_types = true;
  return id;
}

// Writes rows [r0, r0 + count) the way `ladder cache` would: padded to the batch's own longest row, with
// non-zero junk at padding positions (which the store must zero).
void write_range(ActivationStoreWriter& w, const Synthetic& s, uint64_t r0, uint64_t count) {
  int64_t W = 1;
  for (uint64_t r = r0; r < r0 + count; ++r) W = std::max(W, s.len(r));
  std::vector<int32_t> ids(count * W, 77), types(count * W, 1), labels(count);
  std::vector<float> mask(count * W, 0.0f), logits(count * 2);
  std::vector<std::vector<float>> hidden(s.layers.size(), std::vector<float>(count * W * s.H, 123.0f));
  for (uint64_t b = 0; b < count; ++b) {
    const uint64_t r = r0 + b;
    labels[b] = s.label(r);
    for (int64_t c = 0; c < 2; ++c) logits[b * 2 + c] = s.logit(r, c);
    for (int64_t t = 0; t < s.len(r); ++t) {
      ids[b * W + t] = s.id(r, t);
      types[b * W + t] = s.type(r, t);
      mask[b * W + t] = 1.0f;
      for (size_t l = 0; l < s.layers.size(); ++l)
        for (int64_t h = 0; h < s.H; ++h) hidden[l][(b * W + t) * s.H + h] = s.value(s.layers[l], r, t, h);
    }
  }
  StoreRows rows;
  rows.width = int(W);
  rows.input_ids = ids.data();
  rows.attention_mask = mask.data();
  rows.token_type_ids = types.data();
  rows.labels = labels.data();
  rows.logits = logits.data();
  for (auto& h : hidden) rows.hidden.push_back(h.data());
  w.write_rows(r0, count, rows);
}

std::string write_store(const std::string& path, const Synthetic& s, DType dt, uint64_t chunk_rows = 4,
                        bool checksum = true) {
  ActivationStoreWriter w(path, identity_for(s, dt), {.chunk_rows = chunk_rows, .checksum = checksum});
  for (uint64_t r0 = 0; r0 < uint64_t(s.N); r0 += 4) write_range(w, s, r0, std::min<uint64_t>(4, uint64_t(s.N) - r0));
  w.finish();
  return path;
}

float stored(DType dt, float x) {
  if (dt == DType::f16) return core::f16_to_f32(core::f32_to_f16(x));
  if (dt == DType::bf16) return core::bf16_to_f32(core::f32_to_bf16(x));
  return x;
}

// Checks a batch against the synthetic source, value for value (bit-exact after the dtype's rounding).
void expect_batch(const StoreBatch& b, const Synthetic& s, const std::vector<uint64_t>& rows, DType dt,
                  const std::vector<int64_t>& layers) {
  ASSERT_EQ(b.rows, rows);
  int64_t T = 1;
  for (uint64_t r : rows) T = std::max(T, s.len(r));
  ASSERT_EQ(b.tokens.B, int(rows.size()));
  ASSERT_EQ(b.tokens.T, int(T)) << "dynamic padding: T is the longest real row of the batch";
  ASSERT_EQ(b.layers, layers);
  ASSERT_EQ(b.hidden.size(), layers.size());
  ASSERT_EQ(b.labels.size(), rows.size());
  ASSERT_EQ(b.logits.size(), rows.size() * 2);
  int mismatches = 0;
  for (size_t i = 0; i < rows.size(); ++i) {
    const uint64_t r = rows[i];
    EXPECT_EQ(b.tokens.lengths[i], s.len(r));
    EXPECT_EQ(b.labels[i], s.label(r));
    EXPECT_EQ(b.logits[i * 2 + 1], s.logit(r, 1));
    for (int64_t t = 0; t < T; ++t) {
      const bool real = t < s.len(r);
      EXPECT_EQ(b.tokens.ids[i * T + t], real ? s.id(r, t) : 0);
      EXPECT_EQ(b.tokens.types[i * T + t], real ? s.type(r, t) : 0);
      EXPECT_EQ(b.tokens.mask[i * T + t], real ? 1.0f : 0.0f);
      for (size_t l = 0; l < layers.size(); ++l)
        for (int64_t h = 0; h < s.H; ++h) {
          const float want = real ? stored(dt, s.value(layers[l], r, t, h)) : 0.0f;
          const float got = b.hidden[l][(i * T + t) * s.H + h];
          if (got != want && ++mismatches < 5)
            ADD_FAILURE() << "layer " << layers[l] << " row " << r << " t " << t << " h " << h << ": " << got << " != " << want;
        }
    }
  }
  EXPECT_EQ(mismatches, 0);
}

void expect_error(const std::function<void()>& f, const std::vector<std::string>& parts) {
  try {
    f();
    ADD_FAILURE() << "no exception; expected one mentioning " << parts[0];
  } catch (const std::exception& e) {
    const std::string m = e.what();
    for (const auto& p : parts) EXPECT_NE(m.find(p), std::string::npos) << "'" << p << "' not in: " << m;
  }
}

std::string slurp(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

const Synthetic kSmall{13, 8, 6, {0, 2, 5}};

// ---- Round trips ----

TEST(ActivationStore, RoundTripF32IsExact) {
  const std::string path = write_store(temp_dir("store_f32") + "/s.h5", kSmall, DType::f32);
  EXPECT_FALSE(fs::exists(path + ".tmp"));
  ActivationStoreReader r(path);
  EXPECT_EQ(r.identity().num_rows, 13);
  EXPECT_EQ(r.identity().layers, kSmall.layers);
  EXPECT_EQ(r.identity().dtype, DType::f32);
  EXPECT_EQ(r.identity().backbone_hash, "xxh64:00000000000000aa");
  EXPECT_EQ(r.identity().label_kind, LabelKind::integer);
  // Unordered, with a repeat; all layers.
  const std::vector<uint64_t> rows = {7, 0, 12, 7, 3};
  expect_batch(r.read_batch(rows), kSmall, rows, DType::f32, kSmall.layers);
  // A subset of layers in another order; short rows only (T shrinks to their longest).
  const std::vector<uint64_t> short_rows = {1, 11};  // lengths 1 + 8%8 = 1 and 1 + 58%8 = 3
  const StoreBatch b = r.read_batch(short_rows, {5, 0});
  EXPECT_EQ(b.tokens.T, 3);
  expect_batch(b, kSmall, short_rows, DType::f32, {5, 0});
}

TEST(ActivationStore, RoundTripF16WithinRounding) {
  const std::string path = write_store(temp_dir("store_f16") + "/s.h5", kSmall, DType::f16);
  ActivationStoreReader r(path);
  std::vector<uint64_t> all(13);
  for (uint64_t i = 0; i < 13; ++i) all[i] = i;
  const StoreBatch b = r.read_batch(all);
  expect_batch(b, kSmall, all, DType::f16, kSmall.layers);
  // And the rounding is within half an ulp of f16 (11 significant bits) of the source.
  const float x = kSmall.value(2, 5, 0, 3);
  EXPECT_NEAR(b.hidden[1][(5 * b.tokens.T + 0) * 6 + 3], x, std::fabs(x) * std::ldexp(1.0f, -11) + 1e-7f);
  EXPECT_NE(stored(DType::f16, 0.1f), 0.1f) << "f16 really rounds (the test would be vacuous otherwise)";
  // keep_16bit hands the stored bits instead, in the same places (what the LST side network reads).
  const std::vector<uint64_t> rows = {7, 2, 7};
  const StoreBatch f = r.read_batch(rows, {5, 0});
  const StoreBatch h = r.read_batch(rows, {5, 0}, /*keep_16bit=*/true);
  EXPECT_TRUE(h.hidden.empty());
  EXPECT_EQ(h.hidden_dtype, DType::f16);
  ASSERT_EQ(h.hidden_bits.size(), 2u);
  EXPECT_EQ(h.tokens.mask, f.tokens.mask);
  for (size_t l = 0; l < 2; ++l) {
    ASSERT_EQ(h.hidden_bits[l].size(), f.hidden[l].size());
    for (size_t i = 0; i < f.hidden[l].size(); ++i) ASSERT_EQ(core::f16_to_f32(h.hidden_bits[l][i]), f.hidden[l][i]) << l << " " << i;
  }
}

TEST(ActivationStore, RoundTripBf16WithinRounding) {
  const std::string path = write_store(temp_dir("store_bf16") + "/s.h5", kSmall, DType::bf16);
  ActivationStoreReader r(path);
  EXPECT_EQ(r.identity().dtype, DType::bf16);
  const std::vector<uint64_t> rows = {12, 2, 9};
  const StoreBatch b = r.read_batch(rows);
  expect_batch(b, kSmall, rows, DType::bf16, kSmall.layers);
  const float x = kSmall.value(0, 12, 1, 0);
  EXPECT_NEAR(b.hidden[0][(0 * b.tokens.T + 1) * 6 + 0], x, std::fabs(x) * std::ldexp(1.0f, -8));
}

TEST(ActivationStore, RealLabelsAndNoOptionalDatasets) {
  const std::string path = temp_dir("store_real") + "/s.h5";
  StoreIdentity id = identity_for(kSmall, DType::f32);
  id.label_kind = LabelKind::real;
  id.num_logits = 0;
  id.token_types = false;
  id.layers = {3};
  {
    ActivationStoreWriter w(path, id);
    std::vector<int32_t> ids(13 * 2, 5);
    std::vector<float> mask(13 * 2, 1.0f), scores(13), hidden(13 * 2 * 6, 0.25f);
    for (int i = 0; i < 13; ++i) scores[size_t(i)] = 0.5f * float(i);
    StoreRows rows;
    rows.width = 2;
    rows.input_ids = ids.data();
    rows.attention_mask = mask.data();
    rows.scores = scores.data();
    rows.hidden = {hidden.data()};
    w.write_rows(0, 13, rows);
    w.finish();
  }
  ActivationStoreReader r(path);
  const StoreBatch b = r.read_batch({12, 1});
  EXPECT_EQ(b.scores, (std::vector<float>{6.0f, 0.5f}));
  EXPECT_TRUE(b.labels.empty());
  EXPECT_TRUE(b.logits.empty());
  EXPECT_EQ(b.tokens.T, 2);
  EXPECT_EQ(b.tokens.types, std::vector<int32_t>(4, 0));
  EXPECT_EQ(b.hidden[0], std::vector<float>(2 * 2 * 6, 0.25f));
}

TEST(ActivationStore, OutOfOrderRowWrites) {
  const std::string path = temp_dir("store_ooo") + "/s.h5";
  {
    ActivationStoreWriter w(path, identity_for(kSmall, DType::f16), {.chunk_rows = 4});
    write_range(w, kSmall, 9, 4);
    write_range(w, kSmall, 0, 3);
    write_range(w, kSmall, 6, 3);
    write_range(w, kSmall, 3, 3);  // spans a chunk boundary (rows 3 | 4, 5)
    w.finish();
  }
  ActivationStoreReader r(path);
  std::vector<uint64_t> all(13);
  for (uint64_t i = 0; i < 13; ++i) all[i] = 12 - i;
  expect_batch(r.read_batch(all), kSmall, all, DType::f16, kSmall.layers);
}

TEST(ActivationStore, ChunkedByRows) {
  const std::string path = write_store(temp_dir("store_chunks") + "/s.h5", kSmall, DType::f16, /*chunk_rows=*/5, false);
  auto f = core::Hdf5File::open_read(path);
  EXPECT_EQ(f.get_attr_int("chunk_rows"), 5);
  EXPECT_EQ(f.open_dataset("/hidden/2").chunk_dims(), (std::vector<uint64_t>{5, 8, 6}));
  EXPECT_EQ(f.open_dataset("/input_ids").chunk_dims(), (std::vector<uint64_t>{5, 8}));
  EXPECT_EQ(f.list_group("/hidden"), (std::vector<std::string>{"0", "2", "5"}));
  EXPECT_FALSE(f.open_dataset("/hidden/2").checksummed());
  // Checksummed (the default): every dataset carries Fletcher-32, and hidden states come one row per chunk.
  const std::string summed = write_store(temp_dir("store_chunks_sum") + "/s.h5", kSmall, DType::f16, 5);
  auto g = core::Hdf5File::open_read(summed);
  EXPECT_EQ(g.open_dataset("/hidden/2").chunk_dims(), (std::vector<uint64_t>{1, 8, 6}));
  EXPECT_EQ(g.open_dataset("/input_ids").chunk_dims(), (std::vector<uint64_t>{5, 8}));
  for (const char* d : {"/hidden/0", "/hidden/2", "/hidden/5", "/input_ids", "/attention_mask", "/labels", "/logits"})
    EXPECT_TRUE(g.open_dataset(d).checksummed()) << d;
}

// ---- Writer errors ----

TEST(ActivationStore, UnwrittenRowsFailFinishAndLeaveNoFile) {
  const std::string path = temp_dir("store_missing") + "/s.h5";
  {
    ActivationStoreWriter w(path, identity_for(kSmall, DType::f16));
    write_range(w, kSmall, 0, 4);
    write_range(w, kSmall, 8, 5);
    expect_error([&] { w.finish(); }, {path, "4 of 13 rows were never written", "row 4"});
    EXPECT_TRUE(fs::exists(path + ".tmp"));
    EXPECT_FALSE(fs::exists(path));
  }
  EXPECT_FALSE(fs::exists(path + ".tmp")) << "an unfinished writer removes its temporary";
  EXPECT_FALSE(fs::exists(path));
  expect_error([&] { ActivationStoreReader r(path); }, {path, "does not exist"});
}

TEST(ActivationStore, BadWritesAreErrors) {
  const std::string path = temp_dir("store_badwrite") + "/s.h5";
  ActivationStoreWriter w(path, identity_for(kSmall, DType::f16));
  expect_error([&] { write_range(w, kSmall, 10, 4); }, {"rows [10, 14) are past the end", "13 rows"});
  StoreRows too_wide;
  too_wide.width = 9;
  expect_error([&] { w.write_rows(0, 1, too_wide); }, {"9 tokens wide; max_len is 8"});
  StoreIdentity bad = identity_for(kSmall, DType::i8);
  expect_error([&] { ActivationStoreWriter w2(path + "2", bad); }, {"f16, bf16 or f32"});
}

// ---- What is checked on open ----

TEST(ActivationStore, MismatchesNameTheFieldAndBothValues) {
  const std::string path = write_store(temp_dir("store_mismatch") + "/s.h5", kSmall, DType::f16);
  ActivationStoreReader r(path);
  StoreExpectation ok;
  ok.backbone_id = "tiny/bert";
  ok.backbone_hash = "xxh64:00000000000000aa";
  ok.tokenizer_hash = "xxh64:00000000000000bb";
  ok.task = "sst2";
  ok.split = "train";
  ok.max_len = 8;
  ok.hidden_size = 6;
  ok.layers = {5, 2};
  ok.dtype = DType::f16;
  ok.label_kind = LabelKind::integer;
  ok.num_logits = 2;
  r.check_matches(ok);  // the matching expectation passes
  r.check_matches(StoreExpectation{});  // nothing asked, nothing checked

  auto with = [&](const std::function<void(StoreExpectation&)>& change) {
    StoreExpectation e = ok;
    change(e);
    return [e, &r] { r.check_matches(e); };
  };
  const std::string store = "activation store " + path + " was written for ";
  expect_error(with([](auto& e) { e.max_len = 64; }), {store + "max_length 8 but the config asks for 64"});
  expect_error(with([](auto& e) { e.backbone_hash = "xxh64:00000000000000cc"; }),
               {store + "backbone weight hash 'xxh64:00000000000000aa' but the config asks for 'xxh64:00000000000000cc'"});
  expect_error(with([](auto& e) { e.backbone_id = "bert-base-uncased"; }),
               {store + "backbone 'tiny/bert' but the config asks for 'bert-base-uncased'"});
  expect_error(with([](auto& e) { e.tokenizer_hash = "xxh64:1111111111111111"; }),
               {store + "tokenizer hash 'xxh64:00000000000000bb' but the config asks for 'xxh64:1111111111111111'"});
  expect_error(with([](auto& e) { e.task = "mnli"; }), {store + "task 'sst2' but the config asks for 'mnli'"});
  expect_error(with([](auto& e) { e.split = "validation"; }), {store + "split 'train' but the config asks for 'validation'"});
  expect_error(with([](auto& e) { e.hidden_size = 384; }), {store + "hidden size 6 but the config asks for 384"});
  expect_error(with([](auto& e) { e.dtype = DType::bf16; }), {store + "dtype float16 but the config asks for bfloat16"});
  expect_error(with([](auto& e) { e.label_kind = LabelKind::real; }), {store + "label kind int but the config asks for float"});
  expect_error(with([](auto& e) { e.num_logits = 3; }), {store + "teacher logits of 2 classes but the config asks for 3 classes"});
  expect_error(with([](auto& e) { e.layers = {0, 4}; }),
               {"activation store " + path + " has no hidden states for layer 4", "it holds layers 0, 2, 5"});
  // Reading a layer the store lacks is the same error.
  expect_error([&] { r.read_batch({0}, {1}); }, {"has no hidden states for layer 1"});
  expect_error([&] { r.read_batch({0, 13}); }, {path, "row 13 is past the end", "13 rows"});
}

// Deletes the `complete` attribute with the plain HDF5 API, as if the writer had died before setting it.
void remove_complete_attr(const std::string& path) {
  hid_t f = H5Fopen(path.c_str(), H5F_ACC_RDWR, H5P_DEFAULT);
  ASSERT_GE(f, 0);
  ASSERT_GE(H5Adelete(f, "complete"), 0);
  H5Fclose(f);
}

TEST(ActivationStore, IncompleteFileIsAnError) {
  const std::string path = write_store(temp_dir("store_incomplete") + "/s.h5", kSmall, DType::f16);
  { ActivationStoreReader ok(path); }
  remove_complete_attr(path);
  expect_error([&] { ActivationStoreReader r(path); }, {"activation store " + path, "is incomplete", "no 'complete' attribute"});
  // complete = 0: the attribute is there, and the message says what it holds.
  {
    hid_t f = H5Fopen(path.c_str(), H5F_ACC_RDWR, H5P_DEFAULT);
    ASSERT_GE(f, 0);
    const int64_t zero = 0;
    hid_t space = H5Screate(H5S_SCALAR);
    hid_t a = H5Acreate2(f, "complete", H5T_STD_I64LE, space, H5P_DEFAULT, H5P_DEFAULT);
    ASSERT_GE(H5Awrite(a, H5T_NATIVE_INT64, &zero), 0);
    H5Aclose(a);
    H5Sclose(space);
    H5Fclose(f);
  }
  const std::string err = ladder::test::error_of([&] { ActivationStoreReader r(path); });
  EXPECT_NE(err.find("its 'complete' attribute is 0, not 1"), std::string::npos) << err;
  EXPECT_EQ(err.find("no 'complete' attribute"), std::string::npos) << err;
}

TEST(ActivationStore, TruncatedOrCorruptFileIsAClearError) {
  const std::string dir = temp_dir("store_corrupt");
  const std::string path = write_store(dir + "/s.h5", kSmall, DType::f32);
  const auto size = fs::file_size(path);
  // Truncated: the last 40% cut off (a copy interrupted halfway).
  fs::copy_file(path, dir + "/cut.h5");
  fs::resize_file(dir + "/cut.h5", size * 6 / 10);
  expect_error([&] { ActivationStoreReader r(dir + "/cut.h5"); },
               {"activation store " + dir + "/cut.h5", "cannot be opened", "truncated or corrupt"});
  // Corrupt: the superblock overwritten.
  fs::copy_file(path, dir + "/bad.h5");
  {
    std::fstream f(dir + "/bad.h5", std::ios::in | std::ios::out | std::ios::binary);
    const std::string junk(512, '\xab');
    f.write(junk.data(), std::streamsize(junk.size()));
  }
  expect_error([&] { ActivationStoreReader r(dir + "/bad.h5"); }, {dir + "/bad.h5", "cannot be opened"});
  // Not HDF5 at all, and an HDF5 file that is not a store.
  std::ofstream(dir + "/text.h5") << "not hdf5\n";
  expect_error([&] { ActivationStoreReader r(dir + "/text.h5"); }, {"cannot be opened"});
  {
    auto f = core::Hdf5File::create(dir + "/other.h5");
    f.set_attr("format", std::string("ladder-checkpoint"));
    f.commit();
  }
  expect_error([&] { ActivationStoreReader r(dir + "/other.h5"); },
               {"has format 'ladder-checkpoint', expected 'ladder-activations'"});
}

using ladder::test::first_chunk_offset;
using ladder::test::flip_byte;

// One flipped byte inside a dataset: with the checksum (the default) a read error naming the file, the
// dataset and the mismatch, on every read path; without it (as stores written before checksums) the file
// still reads, and the flipped value comes back unnoticed.
TEST(ActivationStore, FlippedByteIsAChecksumErrorNamingFileAndDataset) {
  const std::string dir = temp_dir("store_flip");
  for (bool checksum : {true, false}) {
    const std::string path = write_store(dir + (checksum ? "/sum.h5" : "/plain.h5"), kSmall, DType::f16, 4, checksum);
    flip_byte(path, first_chunk_offset(path, "/hidden/2") + 7);
    ActivationStoreReader r(path);
    if (!checksum) {
      EXPECT_NO_THROW(r.read_batch({0, 1}));
      continue;
    }
    for (bool bits : {false, true})
      expect_error([&] { r.read_batch({3, 0}, {}, bits); },
                   {path, "'/hidden/2'", "Fletcher-32 checksum does not match", "corrupt"});
    EXPECT_NO_THROW(r.read_batch({1, 2}));  // other rows' chunks are intact
    PrefetchingReader p(r, {{2}, {0}});
    EXPECT_NO_THROW(p.next());
    expect_error([&] { p.next(); }, {path, "'/hidden/2'", "checksum"});
  }
  // The token datasets too.
  const std::string ids = write_store(dir + "/ids.h5", kSmall, DType::f16);
  flip_byte(ids, first_chunk_offset(ids, "/input_ids") + 1);
  ActivationStoreReader r(ids);
  expect_error([&] { r.read_batch({0}); }, {ids, "'/input_ids'", "checksum"});
}

// ---- Prefetching ----

std::vector<std::vector<uint64_t>> sample_plan(uint64_t n_batches, uint64_t B, uint64_t N) {
  std::vector<std::vector<uint64_t>> plan;
  uint64_t x = 12345;
  for (uint64_t i = 0; i < n_batches; ++i) {
    std::vector<uint64_t> rows;
    for (uint64_t j = 0; j < B; ++j) {
      x = x * 6364136223846793005ull + 1442695040888963407ull;
      rows.push_back((x >> 33) % N);
    }
    plan.push_back(rows);
  }
  return plan;
}

TEST(ActivationStore, PrefetchYieldsTheDirectBatchesInOrder) {
  const std::string path = write_store(temp_dir("store_prefetch") + "/s.h5", kSmall, DType::bf16);
  ActivationStoreReader r(path);
  const auto plan = sample_plan(9, 5, 13);
  for (size_t depth : {size_t(1), size_t(2)}) {
    PrefetchingReader p(r, plan, {2, 0}, depth);
    for (size_t i = 0; i < plan.size(); ++i) {
      auto got = p.next();
      ASSERT_TRUE(got) << "batch " << i;
      StoreBatch want;
      {
        auto hold = p.hold_hdf5();  // the background thread is kept out of HDF5 meanwhile
        want = r.read_batch(plan[i], {2, 0});
      }
      EXPECT_EQ(got->rows, want.rows);
      EXPECT_EQ(got->tokens.ids, want.tokens.ids);
      EXPECT_EQ(got->tokens.mask, want.tokens.mask);
      EXPECT_EQ(got->labels, want.labels);
      EXPECT_EQ(got->hidden, want.hidden);
      expect_batch(*got, kSmall, plan[i], DType::bf16, {2, 0});
    }
    EXPECT_FALSE(p.next());
    EXPECT_FALSE(p.next());
  }
  // keep_16bit: the stored bits of the same batches (one prefetcher at a time: HDF5 is not thread-safe).
  PrefetchingReader p16(r, plan, {2, 0}, 2, /*keep_16bit=*/true);
  for (size_t i = 0; i < plan.size(); ++i) {
    auto bits = p16.next();
    ASSERT_TRUE(bits) << "batch " << i;
    StoreBatch want;
    {
      auto hold = p16.hold_hdf5();
      want = r.read_batch(plan[i], {2, 0});
    }
    ASSERT_EQ(bits->hidden_bits.size(), 2u);
    EXPECT_EQ(bits->hidden_dtype, DType::bf16);
    for (size_t l = 0; l < 2; ++l)
      for (size_t k = 0; k < want.hidden[l].size(); ++k) ASSERT_EQ(core::bf16_to_f32(bits->hidden_bits[l][k]), want.hidden[l][k]);
  }
  EXPECT_FALSE(p16.next());
}

TEST(ActivationStore, PrefetchErrorSurfacesOnNext) {
  const std::string path = write_store(temp_dir("store_prefetch_err") + "/s.h5", kSmall, DType::f16);
  ActivationStoreReader r(path);
  std::vector<std::vector<uint64_t>> plan = {{0, 1}, {2, 3}, {4, 99}, {5, 6}};
  PrefetchingReader p(r, plan);
  ASSERT_TRUE(p.next());
  ASSERT_TRUE(p.next());
  expect_error([&] { p.next(); }, {"row 99 is past the end"});
  expect_error([&] { p.next(); }, {"row 99 is past the end"});  // the error stays
}

TEST(ActivationStore, PrefetchStopsCleanlyMidPlan) {
  const std::string path = write_store(temp_dir("store_prefetch_stop") + "/s.h5", kSmall, DType::f16);
  ActivationStoreReader r(path);
  const auto plan = sample_plan(200, 8, 13);
  {
    PrefetchingReader p(r, plan, {}, 2);
    ASSERT_TRUE(p.next());
  }  // destroyed with 199 batches left: joins without reading them all
  { PrefetchingReader empty(r, {}); EXPECT_FALSE(empty.next()); }
  // The reader is still usable afterwards.
  expect_batch(r.read_batch({3}), kSmall, {3}, DType::f16, kSmall.layers);
}

// ---- Hashes ----

TEST(ActivationStore, Xxh64MatchesPublishedVectors) {
  EXPECT_EQ(xxh64("", 0), 0xEF46DB3751D8E999ull);
  EXPECT_EQ(xxh64("abc", 3), 0x44BC2CF5AD770999ull);
  const std::string s = "Nobody inspects the spammish repetition";  // 39 bytes: stripes, 4-byte and 1-byte tails
  EXPECT_EQ(xxh64(s.data(), s.size()), 0xFBCEA83C8A378BF1ull);
  EXPECT_EQ(xxh64("xxhash", 6, 20141025), 0xB559B98D844E0635ull);
}

TEST(ActivationStore, FileHashesAreStableAndOrderSensitive) {
  const std::string dir = temp_dir("store_hash");
  std::ofstream(dir + "/vocab.txt") << "[PAD]\n[UNK]\nhello\n";
  std::ofstream(dir + "/merges.txt") << "h e\nl l\n";
  std::ofstream(dir + "/empty.txt");
  const std::string v = hash_file(dir + "/vocab.txt");
  EXPECT_EQ(v.size(), 6u + 16u);
  EXPECT_EQ(v.rfind("xxh64:", 0), 0u);
  const std::string text = "[PAD]\n[UNK]\nhello\n";
  char want[17];
  std::snprintf(want, sizeof want, "%016llx", static_cast<unsigned long long>(xxh64(text.data(), text.size())));
  EXPECT_EQ(v, std::string("xxh64:") + want);
  EXPECT_EQ(hash_file(dir + "/empty.txt"), "xxh64:ef46db3751d8e999");
  EXPECT_EQ(hash_files({dir + "/vocab.txt"}), v);
  const std::string ab = hash_files({dir + "/vocab.txt", dir + "/merges.txt"});
  EXPECT_NE(ab, hash_files({dir + "/merges.txt", dir + "/vocab.txt"}));
  EXPECT_EQ(ab, hash_files({dir + "/vocab.txt", dir + "/merges.txt"}));
  std::ofstream(dir + "/vocab.txt", std::ios::app) << "x";
  EXPECT_NE(hash_file(dir + "/vocab.txt"), v);
  expect_error([&] { hash_file(dir + "/nope.bin"); }, {"cannot hash " + dir + "/nope.bin"});
}

// ---- Several MPI ranks, one file ----

// The parent test runs this same binary under `mpirun -np 2` with LADDER_STORE_MPI_CHILD=<path>; each child
// rank writes every other block of 3 rows, last block first, then both finish together.
TEST(ActivationStoreMpi, TwoRanksWriteOneFile) {
  if (const char* child = std::getenv("LADDER_STORE_MPI_CHILD")) {
    MPI_Init(nullptr, nullptr);
    int rank = 0, size = 1;
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &size);
    {
      ActivationStoreWriter w(child, identity_for(kSmall, DType::f16), {.chunk_rows = 4, .comm = MPI_COMM_WORLD});
      std::vector<uint64_t> mine;
      for (uint64_t r0 = 0; r0 < 13; r0 += 3)
        if (int((r0 / 3) % uint64_t(size)) == rank) mine.push_back(r0);
      for (auto it = mine.rbegin(); it != mine.rend(); ++it) write_range(w, kSmall, *it, std::min<uint64_t>(3, 13 - *it));
      w.finish();
    }
    MPI_Finalize();
    return;
  }
  if (std::system("command -v mpirun > /dev/null 2>&1") != 0) {
    LADDER_SKIP_OR_FAIL() << "mpirun not on PATH (apt-get install openmpi-bin); skipping the two-rank write";
  }
  const std::string dir = temp_dir("store_mpi");
  const std::string path = dir + "/s.h5", log = dir + "/mpirun.log";
  const std::string self = fs::read_symlink("/proc/self/exe").string();
  const std::string root_ok = ::geteuid() == 0 ? "OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 " : "";
  const std::string cmd = "env " + root_ok + "LADDER_STORE_MPI_CHILD='" + path + "' OMP_NUM_THREADS=1 mpirun -np 2 --oversubscribe '" +
                          self + "' --gtest_filter=ActivationStoreMpi.TwoRanksWriteOneFile > '" + log + "' 2>&1";
  ASSERT_EQ(std::system(cmd.c_str()), 0) << cmd << "\n" << slurp(log);
  EXPECT_FALSE(fs::exists(path + ".tmp"));
  ActivationStoreReader r(path);
  std::vector<uint64_t> all(13);
  for (uint64_t i = 0; i < 13; ++i) all[i] = i;
  expect_batch(r.read_batch(all), kSmall, all, DType::f16, kSmall.layers);
}

// ---- Readable without ladder ----

TEST(ActivationStore, H5dumpReadsTheSchema) {
  const std::string dir = temp_dir("store_h5dump");
  const std::string path = write_store(dir + "/s.h5", kSmall, DType::bf16, 4);
  if (std::system("command -v h5dump > /dev/null 2>&1") != 0) {
    LADDER_SKIP_OR_FAIL() << "h5dump not on PATH (apt-get install hdf5-tools); skipping the external check";
  }
  const std::string out = dir + "/dump.txt";
  const std::string cmd = "h5dump -p -H '" + path + "' > '" + out + "' 2>&1";
  ASSERT_EQ(std::system(cmd.c_str()), 0) << cmd << "\n" << slurp(out);
  const std::string h = slurp(out);
  for (const char* s : {"ATTRIBUTE \"format\"", "ATTRIBUTE \"backbone_hash\"", "ATTRIBUTE \"tokenizer_hash\"",
                        "ATTRIBUTE \"max_len\"", "ATTRIBUTE \"dtype\"", "ATTRIBUTE \"layers\"", "ATTRIBUTE \"complete\"",
                        "DATASET \"input_ids\"", "DATASET \"attention_mask\"", "DATASET \"labels\"", "DATASET \"logits\"",
                        "GROUP \"hidden\"", "DATASET \"5\"", "CHUNKED ( 1, 8, 6 )", "CHUNKED ( 4, 8 )",
                        "CHECKSUM FLETCHER32", "H5T_STD_I32LE", "H5T_STD_I8LE"})
    EXPECT_NE(h.find(s), std::string::npos) << s << "\n" << h;
  const std::string cmd2 = "h5dump -a format -a dtype -d /hidden/2 '" + path + "' > '" + out + "' 2>&1";
  ASSERT_EQ(std::system(cmd2.c_str()), 0) << cmd2 << "\n" << slurp(out);
  const std::string v = slurp(out);
  EXPECT_NE(v.find("ladder-activations"), std::string::npos) << v;
  EXPECT_NE(v.find("bfloat16"), std::string::npos) << v;
}

std::string python() {
  const char* py_env = std::getenv("LADDER_PYTHON");
  return py_env && *py_env ? py_env : "python3";
}

// h5py reads f16 hidden states as numpy float16 (bit for bit), bf16 ones as float32 (exactly the rounded
// values), and the identity attributes; the expected values come from ladder's own conversions.
TEST(ActivationStore, H5pyReadsTheStore) {
  const std::string py = python();
  if (std::system((py + " -c 'import h5py' > /dev/null 2>&1").c_str()) != 0) {
    LADDER_SKIP_OR_FAIL() << "h5py not importable by " << py << " (LADDER_PYTHON); skipping the external check";
  }
  const std::string dir = temp_dir("store_h5py");
  write_store(dir + "/f16.h5", kSmall, DType::f16);
  write_store(dir + "/bf16.h5", kSmall, DType::bf16);
  // Expected /hidden/2 as f16 bits and as bf16-rounded f32, [N, T, H].
  std::vector<uint16_t> f16;
  std::vector<float> bf16;
  for (uint64_t r = 0; r < 13; ++r)
    for (int64_t t = 0; t < 8; ++t)
      for (int64_t h = 0; h < 6; ++h) {
        const float x = t < kSmall.len(r) ? kSmall.value(2, r, t, h) : 0.0f;
        f16.push_back(core::f32_to_f16(x));
        bf16.push_back(stored(DType::bf16, x));
      }
  std::ofstream(dir + "/f16.bin", std::ios::binary).write(reinterpret_cast<const char*>(f16.data()), std::streamsize(f16.size() * 2));
  std::ofstream(dir + "/bf16.bin", std::ios::binary).write(reinterpret_cast<const char*>(bf16.data()), std::streamsize(bf16.size() * 4));
  const std::string script = dir + "/check.py", out = dir + "/out.txt";
  std::ofstream(script) << "import sys, h5py, numpy as np\n"
                           "d = sys.argv[1]\n"
                           "def s(v):\n"
                           "    assert isinstance(v, str), repr(v)  # variable-length UTF-8 reads back as str\n"
                           "    return v\n"
                           "f = h5py.File(d + '/f16.h5', 'r')\n"
                           "a = f.attrs\n"
                           "assert s(a['format']) == 'ladder-activations', a['format']\n"
                           "assert int(a['version']) == 1 and int(a['max_len']) == 8 and int(a['num_rows']) == 13\n"
                           "assert s(a['dtype']) == 'float16' and s(a['task']) == 'sst2' and s(a['split']) == 'train'\n"
                           "assert s(a['backbone_hash']) == 'xxh64:00000000000000aa' and int(a['complete']) == 1\n"
                           "assert list(a['layers']) == [0, 2, 5], a['layers']\n"
                           "assert list(f['hidden']) == ['0', '2', '5']\n"
                           "h = f['hidden/2']\n"
                           "assert h.dtype == np.float16 and h.shape == (13, 8, 6) and h.chunks == (1, 8, 6) and h.fletcher32, (h.dtype, h.chunks)\n"
                           "want = np.fromfile(d + '/f16.bin', dtype='<u2').reshape(13, 8, 6)\n"
                           "assert np.array_equal(h[...].view('<u2'), want)\n"
                           "assert f['input_ids'].dtype == np.int32 and f['attention_mask'].dtype == np.int8\n"
                           "assert int(f['attention_mask'][3].sum()) == 1 + (5 * 3 + 3) % 8\n"
                           "assert f['labels'].dtype == np.int32 and int(f['labels'][4]) == -1\n"
                           "g = h5py.File(d + '/bf16.h5', 'r')\n"
                           "b = g['hidden/2']\n"
                           "assert s(g.attrs['dtype']) == 'bfloat16' and s(b.attrs['dtype']) == 'bfloat16'\n"
                           "assert b.dtype == np.float32, b.dtype\n"
                           "assert np.array_equal(b[...], np.fromfile(d + '/bf16.bin', dtype='<f4').reshape(13, 8, 6))\n"
                           "print('ok')\n";
  const std::string cmd = py + " '" + script + "' '" + dir + "' > '" + out + "' 2>&1";
  EXPECT_EQ(std::system(cmd.c_str()), 0) << cmd << "\n" << slurp(out);
}

// ---- Speed (run by hand: --gtest_also_run_disabled_tests --gtest_filter=ActivationStoreBench.*) ----

TEST(ActivationStoreBench, DISABLED_WriteAndRead2000Rows7LayersT64H384) {
  const Synthetic s{2000, 64, 384, {0, 1, 2, 3, 4, 5, 6}};
  const std::string path = temp_dir("store_bench") + "/s.h5";
  const DType dt = std::getenv("LADDER_STORE_DTYPE") ? core::parse_dtype(std::getenv("LADDER_STORE_DTYPE")) : DType::f16;
  const uint64_t B = 32;
  // Source rows: full length (T = 64), so every stored byte is real data.
  std::vector<float> hid(B * 64 * 384);
  for (size_t i = 0; i < hid.size(); ++i) hid[i] = float(i % 1000) * 0.001f - 0.5f;
  std::vector<int32_t> ids(B * 64, 1), labels(B, 1);
  std::vector<float> mask(B * 64, 1.0f), logits(B * 2, 0.0f);
  StoreIdentity id = identity_for(s, dt);
  using clock = std::chrono::steady_clock;
  const auto t0 = clock::now();
  {
    const char* chunk_env = std::getenv("LADDER_STORE_CHUNK_ROWS");
    const char* sum_env = std::getenv("LADDER_STORE_CHECKSUM");
    ActivationStoreWriter w(path, id, {.chunk_rows = chunk_env ? uint64_t(std::atoi(chunk_env)) : 32,
                                       .checksum = !(sum_env && std::string(sum_env) == "0")});
    StoreRows rows;
    rows.width = 64;
    rows.input_ids = ids.data();
    rows.attention_mask = mask.data();
    rows.token_type_ids = ids.data();
    rows.labels = labels.data();
    rows.logits = logits.data();
    rows.hidden.assign(7, hid.data());
    for (uint64_t r0 = 0; r0 < 2000; r0 += B) w.write_rows(r0, std::min<uint64_t>(B, 2000 - r0), rows);
    w.finish();
  }
  const double write_s = std::chrono::duration<double>(clock::now() - t0).count();
  const double hidden_mb = 2000.0 * 7 * 64 * 384 * (dt == DType::f32 ? 4 : 2) / 1e6;
  ActivationStoreReader r(path);
  const auto plan = sample_plan(2000 / B, B, 2000);
  for (const auto& rows : plan) r.read_batch(rows);  // warm the page cache (the file was just written)
  const auto t1 = clock::now();
  for (const auto& rows : plan) r.read_batch(rows);
  const double read_s = std::chrono::duration<double>(clock::now() - t1).count();
  const auto t2 = clock::now();
  {
    PrefetchingReader p(r, plan);
    while (p.next()) {
    }
  }
  const double prefetch_s = std::chrono::duration<double>(clock::now() - t2).count();
  // As training reads: the stored 16-bit bits, rows straight into place.
  const auto t3 = clock::now();
  for (const auto& rows : plan) r.read_batch(rows, {}, /*keep_16bit=*/true);
  const double bits_s = std::chrono::duration<double>(clock::now() - t3).count();

  std::printf("store %s: %.0f MB of hidden states (%s), file %.0f MB\n", path.c_str(), hidden_mb, core::dtype_name(dt),
              double(fs::file_size(path)) / 1e6);
  std::printf("write %.2f s = %.0f MB/s; random-batch read (B=%llu, page cache) %.2f s = %.0f MB/s; prefetched %.2f s\n",
              write_s, hidden_mb / write_s, static_cast<unsigned long long>(B), read_s, hidden_mb / read_s, prefetch_s);
  std::printf("checksum %s; random-batch read of the stored bits (keep_16bit, as training reads) %.2f s = %.0f MB/s\n",
              core::Hdf5File::open_read(path).open_dataset("/hidden/0").checksummed() ? "on" : "off",
              bits_s, hidden_mb / bits_s);
}

}  // namespace
