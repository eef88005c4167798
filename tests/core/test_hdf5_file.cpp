// Hdf5File / Hdf5Dataset: create-commit round trips for every dtype, row-offset writes and reads, float
// conversion into f16/bf16 datasets, attributes, the temporary-file discipline and open errors; the
// written file is also checked with h5dump when hdf5-tools is installed.
#include <gtest/gtest.h>

#include "tests/support/test_paths.h"
#include <hdf5.h>

#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <sstream>
#include <string>
#include <vector>

#include "core/io/hdf5_file.h"
#include "core/tensor/dtype.h"
#include "tests/support/tiny_models.h"

namespace {

using ladder::core::DType;
using ladder::core::Hdf5Dataset;
using ladder::core::Hdf5File;
namespace core = ladder::core;
namespace fs = std::filesystem;
using ladder::test::temp_dir;

void expect_error(const std::function<void()>& f, const std::vector<std::string>& parts) {
  try {
    f();
  } catch (const std::exception& e) {
    const std::string msg = e.what();
    for (const auto& p : parts) EXPECT_NE(msg.find(p), std::string::npos) << "message lacks '" << p << "': " << msg;
    return;
  }
  ADD_FAILURE() << "expected an error mentioning '" << (parts.empty() ? "" : parts[0]) << "'";
}

std::vector<float> ramp(size_t n, float scale) {
  std::vector<float> v(n);
  for (size_t i = 0; i < n; ++i) v[i] = scale * std::sin(0.37f * float(i) + 0.1f) * float(1 + i % 7);
  return v;
}

// Reads an integer attribute with the plain HDF5 API (Hdf5File has no integer getter).
int64_t read_int_attr(const std::string& path, const std::string& key) {
  hid_t f = H5Fopen(path.c_str(), H5F_ACC_RDONLY, H5P_DEFAULT);
  EXPECT_GE(f, 0);
  hid_t a = H5Aopen(f, key.c_str(), H5P_DEFAULT);
  EXPECT_GE(a, 0);
  int64_t v = -12345;
  EXPECT_GE(H5Aread(a, H5T_NATIVE_INT64, &v), 0);
  H5Aclose(a);
  H5Fclose(f);
  return v;
}

std::string read_dataset_string_attr(const std::string& path, const std::string& ds, const std::string& key) {
  hid_t f = H5Fopen(path.c_str(), H5F_ACC_RDONLY, H5P_DEFAULT);
  hid_t d = H5Dopen2(f, ds.c_str(), H5P_DEFAULT);
  hid_t a = H5Aopen(d, key.c_str(), H5P_DEFAULT);
  std::string out;
  if (a >= 0) {
    hid_t t = H5Aget_type(a);
    EXPECT_GT(H5Tis_variable_str(t), 0) << key << ": ladder writes variable-length strings";
    EXPECT_EQ(H5Tget_cset(t), H5T_CSET_UTF8) << key;
    char* s = nullptr;
    if (H5Aread(a, t, &s) >= 0 && s) out = s;
    H5free_memory(s);
    H5Tclose(t);
    H5Aclose(a);
  }
  if (d >= 0) H5Dclose(d);
  if (f >= 0) H5Fclose(f);
  return out;
}

TEST(Hdf5File, RoundTripEveryDtypeWithRowOffsets) {
  const std::string dir = temp_dir("h5_roundtrip");
  const std::string path = dir + "/enc.h5";
  const uint64_t N = 10, T = 3, C = 4;
  const auto f32v = ramp(N * T * C, 2.0f);
  std::vector<uint16_t> f16v(N * C), bf16v(N * C);
  const auto src16 = ramp(N * C, 3.0f);
  for (size_t i = 0; i < f16v.size(); ++i) {
    f16v[i] = core::f32_to_f16(src16[i]);
    bf16v[i] = core::f32_to_bf16(src16[i]);
  }
  std::vector<int32_t> i32v(N * T);
  for (size_t i = 0; i < i32v.size(); ++i) i32v[i] = int32_t(i * 1000003 % 30522) - 7;
  std::vector<int8_t> i8v(N * T);
  for (size_t i = 0; i < i8v.size(); ++i) i8v[i] = int8_t(int(i * 37 % 256) - 128);
  {
    auto file = Hdf5File::create(path);
    EXPECT_EQ(file.path(), path);
    EXPECT_TRUE(fs::exists(path + ".tmp"));
    EXPECT_FALSE(fs::exists(path));
    file.set_attr("format", std::string("ladder-encodings"));
    file.set_attr("empty", std::string(""));
    file.set_attr("version", int64_t(1));
    file.set_attr("big", int64_t(-9000000000LL));
    file.set_attr("format", std::string("ladder-encodings-v2"));  // overwriting an attribute is allowed
    auto h = file.create_dataset("hidden", DType::f32, {N, T, C}, 3);
    auto x16 = file.create_dataset("half", DType::f16, {N, C}, 4);
    auto xb = file.create_dataset("group/sub/bf", DType::bf16, {N, C});  // intermediate groups created
    auto ids = file.create_dataset("ids", DType::i32, {N, T}, 256);      // chunk clamped to N
    auto mask = file.create_dataset("mask", DType::i8, {N, T}, 1);
    h.set_attr("description", "hidden states");
    EXPECT_EQ(h.dims(), (std::vector<uint64_t>{N, T, C}));
    EXPECT_EQ(x16.dtype(), DType::f16);
    // Rows written out of order and in uneven pieces, as encode does (length-sorted batches).
    for (uint64_t r0 : {7ull, 0ull, 3ull}) {
      const uint64_t rows = r0 == 0 ? 3 : r0 == 3 ? 4 : 3;
      h.write_rows(r0, rows, f32v.data() + r0 * T * C);
      x16.write_rows(r0, rows, f16v.data() + r0 * C);
      xb.write_rows(r0, rows, bf16v.data() + r0 * C);
      ids.write_rows(r0, rows, i32v.data() + r0 * T);
      mask.write_rows(r0, rows, i8v.data() + r0 * T);
    }
    h.write_rows(5, 0, nullptr);  // zero rows: a no-op
    expect_error([&] { h.write_rows(9, 2, f32v.data()); }, {path, "'hidden'"});
    EXPECT_EQ(file.get_attr_string("format"), "ladder-encodings-v2");
    file.commit();
    EXPECT_TRUE(fs::exists(path));
    EXPECT_FALSE(fs::exists(path + ".tmp"));
  }
  EXPECT_TRUE(fs::exists(path));  // destroying a committed file keeps it

  auto file = Hdf5File::open_read(path);
  EXPECT_EQ(file.get_attr_string("format"), "ladder-encodings-v2");
  EXPECT_EQ(file.get_attr_string("empty"), "");
  expect_error([&] { file.get_attr_string("nope"); }, {path, "'nope'"});
  EXPECT_EQ(read_int_attr(path, "version"), 1);
  EXPECT_EQ(read_int_attr(path, "big"), -9000000000LL);
  EXPECT_EQ(read_dataset_string_attr(path, "hidden", "description"), "hidden states");

  auto h = file.open_dataset("hidden");
  EXPECT_EQ(h.dtype(), DType::f32);
  EXPECT_EQ(h.dims(), (std::vector<uint64_t>{N, T, C}));
  std::vector<float> got(N * T * C, -1.0f);
  h.read_rows(0, N, got.data());
  EXPECT_EQ(got, f32v);
  std::vector<float> part(2 * T * C);
  h.read_rows(6, 2, part.data());
  EXPECT_EQ(part, std::vector<float>(f32v.begin() + 6 * T * C, f32v.begin() + 8 * T * C));
  expect_error([&] { h.read_rows(9, 2, part.data()); }, {path, "'hidden'"});

  auto x16 = file.open_dataset("half");
  EXPECT_EQ(x16.dtype(), DType::f16);
  std::vector<uint16_t> g16(N * C);
  x16.read_rows(0, N, g16.data());
  EXPECT_EQ(g16, f16v);

  auto xb = file.open_dataset("group/sub/bf");
  EXPECT_EQ(xb.dtype(), DType::bf16);
  EXPECT_EQ(xb.dims(), (std::vector<uint64_t>{N, C}));
  std::vector<uint16_t> gb(N * C);
  xb.read_rows(0, N, gb.data());
  EXPECT_EQ(gb, bf16v);

  auto ids = file.open_dataset("ids");
  EXPECT_EQ(ids.dtype(), DType::i32);
  std::vector<int32_t> gi(N * T);
  ids.read_rows(0, N, gi.data());
  EXPECT_EQ(gi, i32v);
  std::vector<int32_t> row(T);
  ids.read_rows(4, 1, row.data());
  EXPECT_EQ(row, std::vector<int32_t>(i32v.begin() + 4 * T, i32v.begin() + 5 * T));

  auto mask = file.open_dataset("mask");
  EXPECT_EQ(mask.dtype(), DType::i8);
  std::vector<int8_t> g8(N * T);
  mask.read_rows(0, N, g8.data());
  EXPECT_EQ(g8, i8v);

  expect_error([&] { file.open_dataset("absent"); }, {path, "'absent'"});
}

// Row lists (what the activation store's reader asks for): every dtype, the first dim1 columns, against
// whole-row reads; on fully written datasets (read by pread at each chunk's address) and on one with
// chunks never written (HDF5's own path, which reads them as zeros); a bad row list names the dataset.
TEST(Hdf5File, RowListsReadTheSameAsWholeRows) {
  const std::string path = temp_dir("h5_rowlist") + "/rows.h5";
  const uint64_t N = 23, T = 5, C = 6;
  const auto f32v = ramp(N * T * C, 1.5f);
  std::vector<uint16_t> f16v(N * T * C);
  for (size_t i = 0; i < f16v.size(); ++i) f16v[i] = core::f32_to_f16(f32v[i]);
  std::vector<int8_t> i8v(N * T);
  for (size_t i = 0; i < i8v.size(); ++i) i8v[i] = int8_t(i % 100);
  {
    // Unchecksummed, fully written: the pread path; "partial" (unwritten chunks) and "summed" (Fletcher-32,
    // which only H5Dread verifies) take the H5Dread path.
    auto file = Hdf5File::create(path);
    auto a = file.create_dataset("a", DType::f32, {N, T, C}, 4, /*checksum=*/false);
    auto b = file.create_dataset("b", DType::f16, {N, T, C}, 32, false);  // one chunk (clamped to N)
    auto m = file.create_dataset("m", DType::i8, {N, T}, 3, false);
    auto p = file.create_dataset("partial", DType::f32, {N, T, C}, 4, false);
    auto sm = file.create_dataset("summed", DType::f32, {N, T, C}, 4);
    EXPECT_TRUE(sm.checksummed());
    EXPECT_FALSE(a.checksummed());
    sm.write_rows(0, N, f32v.data());
    a.write_rows(0, N, f32v.data());
    b.write_rows(0, N, f16v.data());
    m.write_rows(0, N, i8v.data());
    p.write_rows(0, 8, f32v.data());  // rows 8.. never written
    file.commit();
  }
  auto file = Hdf5File::open_read(path);
  const std::vector<uint64_t> rows{0, 3, 4, 5, 11, 17, 22};
  for (uint64_t dim1 : {uint64_t(0), uint64_t(2), T}) {
    const uint64_t t = dim1 ? dim1 : T;
    for (const char* name : {"a", "partial", "summed"}) {
      auto d = file.open_dataset(name);
      std::vector<float> got(rows.size() * t * C, -1.0f);
      d.read_row_list(rows, dim1, got.data());
      for (size_t i = 0; i < rows.size(); ++i)
        for (uint64_t k = 0; k < t * C; ++k) {
          const float want = std::string(name) == "partial" && rows[i] >= 8 ? 0.0f : f32v[rows[i] * T * C + k];
          ASSERT_EQ(got[i * t * C + k], want) << name << " row " << rows[i] << " dim1 " << dim1;
        }
    }
    auto b = file.open_dataset("b");
    std::vector<uint16_t> gb(rows.size() * t * C);
    b.read_row_list(rows, dim1, gb.data());
    for (size_t i = 0; i < rows.size(); ++i)
      for (uint64_t k = 0; k < t * C; ++k) ASSERT_EQ(gb[i * t * C + k], f16v[rows[i] * T * C + k]);
    auto m = file.open_dataset("m");
    std::vector<int8_t> gm(rows.size() * t);
    m.read_row_list(rows, dim1, gm.data());
    for (size_t i = 0; i < rows.size(); ++i)
      for (uint64_t k = 0; k < t; ++k) ASSERT_EQ(gm[i * t + k], i8v[rows[i] * T + k]);
  }
  // Any order, repeats allowed (read_rows_at), on both paths.
  const std::vector<uint64_t> shuffled{17, 3, 22, 3, 0, 9};
  for (const char* name : {"a", "partial", "summed"}) {
    auto d = file.open_dataset(name);
    std::vector<float> got(shuffled.size() * 2 * C, -1.0f);
    d.read_rows_at(shuffled, 2, got.data());
    for (size_t i = 0; i < shuffled.size(); ++i)
      for (uint64_t k = 0; k < 2 * C; ++k) {
        const float want = std::string(name) == "partial" && shuffled[i] >= 8 ? 0.0f : f32v[shuffled[i] * T * C + k];
        ASSERT_EQ(got[i * 2 * C + k], want) << name << " row " << shuffled[i];
      }
  }
  auto a = file.open_dataset("a");
  std::vector<float> buf(2 * T * C);
  expect_error([&] { a.read_row_list({4, 3}, 0, buf.data()); }, {path, "'a'", "increasing"});
  expect_error([&] { a.read_row_list({N}, 0, buf.data()); }, {path, "'a'"});
  expect_error([&] { a.read_row_list({1}, T + 1, buf.data()); }, {path, "'a'", "columns"});
}

// A store cut short under a reader that already located its chunks (copied over, or a disk that filled up):
// the direct pread path names the file, the dataset and the row instead of returning garbage.
TEST(Hdf5File, DirectRowReadsOfAFileCutShortNameTheRow) {
  const std::string path = temp_dir("h5_cut") + "/cut.h5";
  const uint64_t N = 64, T = 8, C = 16;
  const auto v = ramp(N * T * C, 0.5f);
  {
    auto file = Hdf5File::create(path);
    auto a = file.create_dataset("a", DType::f32, {N, T, C}, 4, /*checksum=*/false);  // the pread path
    a.write_rows(0, N, v.data());
    file.commit();
  }
  auto file = Hdf5File::open_read(path);
  auto a = file.open_dataset("a");
  std::vector<float> row(T * C);
  a.read_row_list({0}, 0, row.data());  // locates every chunk
  ASSERT_EQ(row[5], v[5]);
  std::filesystem::resize_file(path, std::filesystem::file_size(path) / 2);  // the last rows' chunks are gone
  expect_error([&] { a.read_row_list({N - 1}, 0, row.data()); }, {path, "'a'", "row 63", "truncated"});
  expect_error([&] { a.read_rows_at({N - 1, 0}, 0, row.data()); }, {path, "'a'", "row 63", "truncated"});
}

// The f16/bf16 file types are real IEEE-layout floats: HDF5 itself converts them to native float.
TEST(Hdf5File, HalfDatasetsAreFloatTypesHdf5CanConvert) {
  const std::string path = temp_dir("h5_convert") + "/c.h5";
  const std::vector<float> v = {1.0f, -2.5f, 0.333251953125f, 1024.0f, -0.0f, 6.103515625e-05f};
  {
    auto file = Hdf5File::create(path);
    auto a = file.create_dataset("a16", DType::f16, {2, 3});
    auto b = file.create_dataset("b16", DType::bf16, {2, 3});
    a.write_rows_from_f32(0, 2, v.data());
    b.write_rows_from_f32(0, 2, v.data());
    file.commit();
  }
  for (const char* name : {"a16", "b16"}) {
    hid_t f = H5Fopen(path.c_str(), H5F_ACC_RDONLY, H5P_DEFAULT);
    hid_t d = H5Dopen2(f, name, H5P_DEFAULT);
    hid_t t = H5Dget_type(d);
    EXPECT_EQ(H5Tget_class(t), H5T_FLOAT) << name;
    EXPECT_EQ(H5Tget_size(t), 2u) << name;
    std::vector<float> out(6, 99.0f);
    EXPECT_GE(H5Dread(d, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, out.data()), 0);
    for (size_t i = 0; i < v.size(); ++i) {
      const float expect = std::string(name) == "a16" ? core::f16_to_f32(core::f32_to_f16(v[i]))
                                                      : core::bf16_to_f32(core::f32_to_bf16(v[i]));
      EXPECT_EQ(out[i], expect) << name << "[" << i << "]";
    }
    H5Tclose(t);
    H5Dclose(d);
    H5Fclose(f);
  }
}

TEST(Hdf5File, WriteRowsFromF32IntoHalfDatasets) {
  const std::string path = temp_dir("h5_from_f32") + "/h.h5";
  const uint64_t N = 6, C = 16;
  const auto v = ramp(N * C, 5.0f);
  {
    auto file = Hdf5File::create(path);
    auto f16 = file.create_dataset("f16", DType::f16, {N, C}, 2);
    auto bf16 = file.create_dataset("bf16", DType::bf16, {N, C}, 2);
    auto f32 = file.create_dataset("f32", DType::f32, {N, C}, 2);
    auto ints = file.create_dataset("ints", DType::i32, {N, C}, 2);
    f16.write_rows_from_f32(2, 4, v.data() + 2 * C);
    f16.write_rows_from_f32(0, 2, v.data());
    bf16.write_rows_from_f32(0, N, v.data());
    f32.write_rows_from_f32(0, N, v.data());
    expect_error([&] { ints.write_rows_from_f32(0, 1, v.data()); }, {path, "'ints'"});
    file.commit();
  }
  auto file = Hdf5File::open_read(path);
  std::vector<uint16_t> bits(N * C);
  file.open_dataset("f16").read_rows(0, N, bits.data());
  for (size_t i = 0; i < v.size(); ++i) {
    const float back = core::f16_to_f32(bits[i]);
    EXPECT_NEAR(back, v[i], std::fabs(v[i]) * (1.0f / 2048) + 1e-7f) << i;
    EXPECT_EQ(bits[i], core::f32_to_f16(v[i])) << i;
  }
  file.open_dataset("bf16").read_rows(0, N, bits.data());
  for (size_t i = 0; i < v.size(); ++i) {
    const float back = core::bf16_to_f32(bits[i]);
    EXPECT_NEAR(back, v[i], std::fabs(v[i]) * (1.0f / 256) + 1e-30f) << i;
    EXPECT_EQ(bits[i], core::f32_to_bf16(v[i])) << i;
  }
  std::vector<float> f(N * C);
  file.open_dataset("f32").read_rows(0, N, f.data());
  EXPECT_EQ(f, v);
}

TEST(Hdf5File, UncommittedFileLeavesNothing) {
  const std::string dir = temp_dir("h5_uncommitted");
  const std::string path = dir + "/partial.h5";
  {
    auto file = Hdf5File::create(path);
    file.set_attr("format", std::string("x"));
    auto d = file.create_dataset("x", DType::f32, {4, 2});
    std::vector<float> v(8, 1.0f);
    d.write_rows(0, 4, v.data());
    EXPECT_TRUE(fs::exists(path + ".tmp"));
    // destroyed here without commit (as when encode throws half-way)
  }
  EXPECT_FALSE(fs::exists(path));
  EXPECT_FALSE(fs::exists(path + ".tmp"));
  EXPECT_TRUE(fs::is_empty(dir));

  // A moved-from file does not remove the temporary the moved-to one still writes.
  {
    auto a = Hdf5File::create(path);
    Hdf5File b(std::move(a));
    EXPECT_TRUE(fs::exists(path + ".tmp"));
    b.commit();
  }
  EXPECT_TRUE(fs::exists(path));
  EXPECT_FALSE(fs::exists(path + ".tmp"));
}

TEST(Hdf5File, OpenErrorsNameThePath) {
  const std::string dir = temp_dir("h5_errors");
  const std::string missing = dir + "/missing.h5";
  expect_error([&] { Hdf5File::open_read(missing); }, {missing});
  const std::string text = dir + "/not_hdf5.h5";
  std::ofstream(text) << "this is not an HDF5 file\n";
  expect_error([&] { Hdf5File::open_read(text); }, {text});
  const std::string nodir = dir + "/no/such/dir/out.h5";
  expect_error([&] { Hdf5File::create(nodir); }, {nodir});
}

TEST(Hdf5File, H5dumpReadsTheFile) {
  const std::string dir = temp_dir("h5_dump");
  const std::string path = dir + "/dump.h5";
  {
    auto file = Hdf5File::create(path);
    file.set_attr("format", std::string("ladder-encodings"));
    file.set_attr("version", int64_t(1));
    auto a = file.create_dataset("sentence_embedding", DType::f32, {3, 4});
    auto b = file.create_dataset("last_hidden_state", DType::f16, {3, 2, 4}, 1);
    auto c = file.create_dataset("bf", DType::bf16, {3, 4});
    std::vector<float> v(24, 0.5f);
    a.write_rows_from_f32(0, 3, v.data());
    b.write_rows_from_f32(0, 3, v.data());
    c.write_rows_from_f32(0, 3, v.data());
    file.commit();
  }
  if (std::system("command -v h5dump > /dev/null 2>&1") != 0) {
    LADDER_SKIP_OR_FAIL() << "h5dump not on PATH (apt-get install hdf5-tools); skipping the external check";
  }
  const std::string out = dir + "/dump.txt";
  const std::string cmd = "h5dump -H '" + path + "' > '" + out + "' 2>&1";
  const int rc = std::system(cmd.c_str());
  std::ifstream in(out);
  std::stringstream ss;
  ss << in.rdbuf();
  ASSERT_EQ(rc, 0) << cmd << "\n" << ss.str();
  EXPECT_NE(ss.str().find("sentence_embedding"), std::string::npos) << ss.str();
  EXPECT_NE(ss.str().find("last_hidden_state"), std::string::npos) << ss.str();
  // The 16-bit datasets are 16-bit floats in the file, not 32-bit ones with 16 bits of precision.
  EXPECT_EQ(ss.str().find("32-bit little-endian floating-point 16-bit precision"), std::string::npos) << ss.str();
  // A full dump (attribute values and the data of the 16-bit float dataset) must also succeed.
  const std::string cmd2 = "h5dump -a format -d last_hidden_state '" + path + "' > '" + out + "' 2>&1";
  EXPECT_EQ(std::system(cmd2.c_str()), 0) << cmd2;
  std::ifstream in2(out);
  std::stringstream ss2;
  ss2 << in2.rdbuf();
  EXPECT_NE(ss2.str().find("ladder-encodings"), std::string::npos) << ss2.str();
  EXPECT_NE(ss2.str().find("0.5"), std::string::npos) << ss2.str();
}

}  // namespace
