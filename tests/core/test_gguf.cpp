// GGUF reader (core/io/gguf.h): a file written here with every metadata value type and tensors of several
// block types reads back (shapes reversed to row-major, values by the blocks' formulas); bad files are
// errors naming the file and the key or tensor; the real SmolLM2-135M GGUF (LADDER_SMOLLM2_GGUF) matches
// the `gguf` Python package's dequantization (tests/golden/gguf_smollm2.json, made by
// scripts/make_gguf_fixture.py).
#include <gtest/gtest.h>

#include <cmath>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "core/io/gguf.h"
#include "core/tensor/dtype.h"
#include "tests/support/test_paths.h"
#include "tests/support/tiny_models.h"

using namespace ladder::core;

namespace {

// Writes a GGUF v3 file byte by byte.
class Writer {
 public:
  template <class T>
  void put(T v) {
    const char* p = reinterpret_cast<const char*>(&v);
    buf_.insert(buf_.end(), p, p + sizeof(T));
  }
  void str(const std::string& s) {
    put<uint64_t>(s.size());
    buf_.insert(buf_.end(), s.begin(), s.end());
  }
  void bytes(const std::vector<unsigned char>& b) { buf_.insert(buf_.end(), b.begin(), b.end()); }
  void align(size_t a) {
    while (buf_.size() % a) buf_.push_back(0);
  }
  std::vector<char>& buf() { return buf_; }
  void save(const std::string& path, size_t cut = 0) const {
    std::ofstream(path, std::ios::binary).write(buf_.data(), std::streamsize(buf_.size() - cut));
  }

 private:
  std::vector<char> buf_;
};

uint16_t f16(float x) { return f32_to_f16(x); }

struct Sample {
  std::vector<unsigned char> q4_0, q8_0, q4_1;  // one block each
  std::vector<float> q4_0_ref, q8_0_ref, q4_1_ref;
};

Sample sample_blocks() {
  Sample s;
  auto push16 = [](std::vector<unsigned char>& b, uint16_t h) {
    b.push_back(uint8_t(h & 0xFF));
    b.push_back(uint8_t(h >> 8));
  };
  // Q4_0: d = 0.5; byte j = (j % 16) | ((15 - j % 16) << 4)
  push16(s.q4_0, f16(0.5f));
  s.q4_0_ref.resize(32);
  for (int j = 0; j < 16; ++j) {
    s.q4_0.push_back(uint8_t(j | ((15 - j) << 4)));
    s.q4_0_ref[j] = float(j - 8) * 0.5f;
    s.q4_0_ref[j + 16] = float(15 - j - 8) * 0.5f;
  }
  // Q4_1: d = 0.25, m = -1
  push16(s.q4_1, f16(0.25f));
  push16(s.q4_1, f16(-1.0f));
  s.q4_1_ref.resize(32);
  for (int j = 0; j < 16; ++j) {
    s.q4_1.push_back(uint8_t((j % 16) | (((j * 3) % 16) << 4)));
    s.q4_1_ref[j] = float(j) * 0.25f - 1.0f;
    s.q4_1_ref[j + 16] = float((j * 3) % 16) * 0.25f - 1.0f;
  }
  // Q8_0: d = 0.125, q = j - 16
  push16(s.q8_0, f16(0.125f));
  for (int j = 0; j < 32; ++j) {
    s.q8_0.push_back(uint8_t(int8_t(j - 16)));
    s.q8_0_ref.push_back(float(j - 16) * 0.125f);
  }
  return s;
}

// A file with every value type, and tensors: F32 [2, 3] (dims 3, 2), Q4_0 [32], Q4_1 [32], Q8_0 [32].
// `bad_type` replaces the Q8_0 tensor's type code; `offset_add` moves its offset.
Writer sample_file(const Sample& s, uint32_t bad_type = 8, uint64_t offset_add = 0) {
  Writer w;
  w.buf().insert(w.buf().end(), {'G', 'G', 'U', 'F'});
  w.put<uint32_t>(3);
  w.put<uint64_t>(4);   // tensors
  w.put<uint64_t>(10);  // keys
  w.str("general.architecture"); w.put<uint32_t>(8); w.str("llama");
  w.str("u8"); w.put<uint32_t>(0); w.put<uint8_t>(200);
  w.str("i16"); w.put<uint32_t>(3); w.put<int16_t>(-300);
  w.str("llama.block_count"); w.put<uint32_t>(4); w.put<uint32_t>(30);
  w.str("i64"); w.put<uint32_t>(11); w.put<int64_t>(-5);
  w.str("llama.rope.freq_base"); w.put<uint32_t>(6); w.put<float>(10000.0f);
  w.str("f64"); w.put<uint32_t>(12); w.put<double>(0.125);
  w.str("flag"); w.put<uint32_t>(7); w.put<uint8_t>(1);
  w.str("tokenizer.ggml.tokens"); w.put<uint32_t>(9); w.put<uint32_t>(8); w.put<uint64_t>(3);
  w.str("<s>"); w.str("a"); w.str("\xc4\xa0the");
  w.str("tokenizer.ggml.token_type"); w.put<uint32_t>(9); w.put<uint32_t>(5); w.put<uint64_t>(3);
  w.put<int32_t>(3); w.put<int32_t>(1); w.put<int32_t>(-1);
  // tensor infos: offsets within the data section, each aligned to 32
  w.str("w.f32"); w.put<uint32_t>(2); w.put<uint64_t>(3); w.put<uint64_t>(2); w.put<uint32_t>(0); w.put<uint64_t>(0);
  w.str("w.q4_0"); w.put<uint32_t>(1); w.put<uint64_t>(32); w.put<uint32_t>(2); w.put<uint64_t>(32);
  w.str("w.q4_1"); w.put<uint32_t>(1); w.put<uint64_t>(32); w.put<uint32_t>(3); w.put<uint64_t>(64);
  w.str("w.q8_0"); w.put<uint32_t>(1); w.put<uint64_t>(32); w.put<uint32_t>(bad_type); w.put<uint64_t>(96 + offset_add);
  w.align(32);
  for (float v : {1.f, 2.f, 3.f, 4.f, 5.f, 6.f}) w.put<float>(v);
  w.align(32);
  w.bytes(s.q4_0);
  w.align(32);
  w.bytes(s.q4_1);
  w.align(32);
  w.bytes(s.q8_0);
  return w;
}

std::string error_of(const std::string& path) {
  try {
    GgufFile::open(path);
  } catch (const std::exception& e) {
    return e.what();
  }
  return "";
}

}  // namespace

TEST(Gguf, EveryValueTypeAndBlockTypeReadsBack) {
  const Sample s = sample_blocks();
  const std::string path = ladder::test::temp_dir("gguf_ok") + "/m.gguf";
  sample_file(s).save(path);
  const GgufFile g = GgufFile::open(path);
  EXPECT_EQ(g.version(), 3u);
  EXPECT_EQ(g.get_string("general.architecture"), "llama");
  EXPECT_EQ(g.get_int("u8"), 200);
  EXPECT_EQ(g.get_int("i16"), -300);
  EXPECT_EQ(g.get_int("llama.block_count"), 30);
  EXPECT_EQ(g.get_int("i64"), -5);
  EXPECT_EQ(g.get_float("llama.rope.freq_base"), 10000.0);
  EXPECT_EQ(g.get_float("f64"), 0.125);
  EXPECT_TRUE(g.get_bool("flag"));
  EXPECT_EQ(g.get_strings("tokenizer.ggml.tokens"), (std::vector<std::string>{"<s>", "a", "\xc4\xa0the"}));
  EXPECT_EQ(std::get<std::vector<int64_t>>(g.metadata().at("tokenizer.ggml.token_type").value),
            (std::vector<int64_t>{3, 1, -1}));
  ASSERT_EQ(g.tensors().size(), 4u);
  EXPECT_EQ(g.tensor("w.f32").shape, (std::vector<int64_t>{2, 3}));  // dims (3, 2) fastest-first
  EXPECT_EQ(g.dequantize(g.tensor("w.f32")), (std::vector<float>{1, 2, 3, 4, 5, 6}));
  EXPECT_EQ(g.dequantize(g.tensor("w.q4_0")), s.q4_0_ref);
  EXPECT_EQ(g.dequantize(g.tensor("w.q4_1")), s.q4_1_ref);
  EXPECT_EQ(g.dequantize(g.tensor("w.q8_0")), s.q8_0_ref);
  // Wrong-typed and missing keys name the key.
  try {
    g.get_int("general.architecture");
    ADD_FAILURE();
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("'general.architecture' is not an integer"), std::string::npos) << e.what();
  }
  EXPECT_THROW(g.get_string("nope"), std::runtime_error);
  // A block type the reader sizes but does not dequantize is an error naming it and what is read.
  std::vector<unsigned char> q2k(84, 0);
  std::vector<float> out(256);
  try {
    dequantize_ggml(uint32_t(GgmlType::q2_k), q2k.data(), out.data(), 256);
    ADD_FAILURE() << "Q2_K was dequantized";
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("cannot dequantize Q2_K (it reads F32"), std::string::npos) << e.what();
  }
  EXPECT_THROW(dequantize_ggml(uint32_t(GgmlType::q4_0), q2k.data(), out.data(), 31), std::invalid_argument);
  EXPECT_THROW(g.tensor("nope"), std::runtime_error);
}

TEST(Gguf, BadFilesAreErrorsNamingTheFileAndTensor) {
  const Sample s = sample_blocks();
  const std::string dir = ladder::test::temp_dir("gguf_bad");
  {
    Writer w = sample_file(s);
    w.buf()[0] = 'X';
    w.save(dir + "/magic.gguf");
    const std::string e = error_of(dir + "/magic.gguf");
    EXPECT_NE(e.find("magic.gguf"), std::string::npos) << e;
    EXPECT_NE(e.find("not a GGUF file"), std::string::npos) << e;
  }
  {
    sample_file(s).save(dir + "/cut.gguf", 20);  // the last tensor's block cut short
    const std::string e = error_of(dir + "/cut.gguf");
    EXPECT_NE(e.find("'w.q8_0'"), std::string::npos) << e;
    EXPECT_NE(e.find("past the end"), std::string::npos) << e;
  }
  {
    Writer w = sample_file(s);
    w.save(dir + "/header.gguf", w.buf().size() - 100);  // cut inside the metadata
    const std::string e = error_of(dir + "/header.gguf");
    EXPECT_NE(e.find("truncated"), std::string::npos) << e;
  }
  {
    sample_file(s, 99).save(dir + "/type.gguf");
    const std::string e = error_of(dir + "/type.gguf");
    EXPECT_NE(e.find("'w.q8_0' has unknown type 99"), std::string::npos) << e;
  }
  {
    sample_file(s, 8, 1 << 20).save(dir + "/offset.gguf");
    const std::string e = error_of(dir + "/offset.gguf");
    EXPECT_NE(e.find("'w.q8_0'"), std::string::npos) << e;
    EXPECT_NE(e.find("past the end"), std::string::npos) << e;
  }
}

// The real SmolLM2-135M-Instruct Q4_1 file: its architecture metadata, and every tensor's dequantized
// values against the `gguf` package's (count, sum, sum of squares, first and last values per tensor).
TEST(Gguf, RealSmolLM2MatchesTheGgufPackage) {
  const char* path = std::getenv("LADDER_SMOLLM2_GGUF");
  if (!path || !*path) {
    LADDER_SKIP_OR_FAIL() << "LADDER_SMOLLM2_GGUF not set (scripts/fetch_smollm2.sh fetches the file)";
  }
  const GgufFile g = GgufFile::open(path);
  EXPECT_EQ(g.get_string("general.architecture"), "llama");
  EXPECT_EQ(g.get_int("llama.block_count"), 30);
  std::ifstream in(std::string(LADDER_SOURCE_DIR) + "/tests/golden/gguf_smollm2.json");
  ASSERT_TRUE(in) << "tests/golden/gguf_smollm2.json";
  const nlohmann::json ref = nlohmann::json::parse(in);
  ASSERT_EQ(g.tensors().size(), ref.size());
  for (const auto& t : g.tensors()) {
    SCOPED_TRACE(t.name);
    ASSERT_TRUE(ref.contains(t.name));
    const auto& r = ref[t.name];
    EXPECT_EQ(ggml_type_name(t.type), r["type"].get<std::string>());
    EXPECT_EQ(t.shape, r["shape"].get<std::vector<int64_t>>());
    const std::vector<float> v = g.dequantize(t);
    double sum = 0, sq = 0;
    for (float x : v) sum += x, sq += double(x) * x;
    // Sums in double of the same f32 values differ only by summation order: relative 1e-9 of sum |x|.
    const double tol = 1e-9 * r["abs_sum"].get<double>() + 1e-12;
    EXPECT_NEAR(sum, r["sum"].get<double>(), tol);
    EXPECT_NEAR(sq, r["sum_sq"].get<double>(), 1e-9 * r["sum_sq"].get<double>() + 1e-12);
    const auto head = r["head"].get<std::vector<float>>(), tail = r["tail"].get<std::vector<float>>();
    for (size_t i = 0; i < head.size(); ++i) EXPECT_EQ(v[i], head[i]) << i;
    for (size_t i = 0; i < tail.size(); ++i) EXPECT_EQ(v[v.size() - tail.size() + i], tail[i]) << i;
  }
}

// Q5_0 and Q5_1 blocks (and Q4_0 again) made by the `gguf` package's quantize() from (i - 20) / 7, i < 64,
// with its dequantize() as the reference.
TEST(Gguf, FiveBitBlocksMatchTheGgufPackage) {
  struct Case { uint32_t code; const char* hex; std::vector<float> ref; };
  const std::vector<Case> cases = {
      {6, "b7310000f0ffd0e1e2f203142526364758696a7a8b9c25b6000000006c5b5b4a4a4a39393928281717170606", {-2.857421875f, -2.6788330078125f, -2.500244140625f, -2.500244140625f, -2.3216552734375f, -2.14306640625f, -1.9644775390625f, -1.785888671875f, -1.785888671875f, -1.6072998046875f, -1.4287109375f, -1.2501220703125f, -1.071533203125f, -1.071533203125f, -0.8929443359375f, -0.71435546875f, -0.5357666015625f, -0.357177734375f, -0.357177734375f, -0.1785888671875f, 0.0f, 0.1785888671875f, 0.357177734375f, 0.357177734375f, 0.5357666015625f, 0.71435546875f, 0.8929443359375f, 1.071533203125f, 1.071533203125f, 1.2501220703125f, 1.4287109375f, 1.6072998046875f, 1.5361328125f, 1.920166015625f, 1.920166015625f, 2.30419921875f, 2.30419921875f, 2.30419921875f, 2.688232421875f, 2.688232421875f, 2.688232421875f, 3.072265625f, 3.072265625f, 3.456298828125f, 3.456298828125f, 3.456298828125f, 3.84033203125f, 3.84033203125f, 3.84033203125f, 4.224365234375f, 4.224365234375f, 4.6083984375f, 4.6083984375f, 4.6083984375f, 4.992431640625f, 4.992431640625f, 4.992431640625f, 5.37646484375f, 5.37646484375f, 5.760498046875f, 5.760498046875f, 5.760498046875f, 6.14453125f, 6.14453125f}},
      {7, "9230b7c10000ffff00112233445566778899aabbccddeeff9230db3e0000ffff00112233445566778899aabbccddeeff", {-2.857421875f, -2.714599609375f, -2.57177734375f, -2.428955078125f, -2.2861328125f, -2.143310546875f, -2.00048828125f, -1.857666015625f, -1.71484375f, -1.572021484375f, -1.42919921875f, -1.286376953125f, -1.1435546875f, -1.000732421875f, -0.85791015625f, -0.715087890625f, -0.572265625f, -0.429443359375f, -0.28662109375f, -0.143798828125f, -0.0009765625f, 0.141845703125f, 0.28466796875f, 0.427490234375f, 0.5703125f, 0.713134765625f, 0.85595703125f, 0.998779296875f, 1.1416015625f, 1.284423828125f, 1.42724609375f, 1.570068359375f, 1.7138671875f, 1.856689453125f, 1.99951171875f, 2.142333984375f, 2.28515625f, 2.427978515625f, 2.57080078125f, 2.713623046875f, 2.8564453125f, 2.999267578125f, 3.14208984375f, 3.284912109375f, 3.427734375f, 3.570556640625f, 3.71337890625f, 3.856201171875f, 3.9990234375f, 4.141845703125f, 4.28466796875f, 4.427490234375f, 4.5703125f, 4.713134765625f, 4.85595703125f, 4.998779296875f, 5.1416015625f, 5.284423828125f, 5.42724609375f, 5.570068359375f, 5.712890625f, 5.855712890625f, 5.99853515625f, 6.141357421875f}},
      {2, "b7356070718182829293a3a4a4b4b5c5c6c625ba36362525252525141414141414030303", {-2.857421875f, -2.857421875f, -2.500244140625f, -2.500244140625f, -2.14306640625f, -2.14306640625f, -2.14306640625f, -1.785888671875f, -1.785888671875f, -1.4287109375f, -1.4287109375f, -1.4287109375f, -1.071533203125f, -1.071533203125f, -0.71435546875f, -0.71435546875f, -0.71435546875f, -0.357177734375f, -0.357177734375f, 0.0f, 0.0f, 0.0f, 0.357177734375f, 0.357177734375f, 0.71435546875f, 0.71435546875f, 0.71435546875f, 1.071533203125f, 1.071533203125f, 1.4287109375f, 1.4287109375f, 1.4287109375f, 1.5361328125f, 1.5361328125f, 2.30419921875f, 2.30419921875f, 2.30419921875f, 2.30419921875f, 2.30419921875f, 3.072265625f, 3.072265625f, 3.072265625f, 3.072265625f, 3.072265625f, 3.072265625f, 3.84033203125f, 3.84033203125f, 3.84033203125f, 3.84033203125f, 3.84033203125f, 4.6083984375f, 4.6083984375f, 4.6083984375f, 4.6083984375f, 4.6083984375f, 5.37646484375f, 5.37646484375f, 5.37646484375f, 5.37646484375f, 5.37646484375f, 5.37646484375f, 6.14453125f, 6.14453125f, 6.14453125f}},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(ggml_type_name(c.code));
    std::vector<unsigned char> blocks;
    for (size_t i = 0; i + 1 < std::strlen(c.hex); i += 2) blocks.push_back(uint8_t(std::stoi(std::string(c.hex + i, 2), nullptr, 16)));
    std::vector<float> out(64);
    dequantize_ggml(c.code, blocks.data(), out.data(), 64);
    EXPECT_EQ(out, c.ref);
  }
}

// K-quant blocks (Q4_K, Q5_K, Q6_K: Gemma 3's file uses Q4_K and Q6_K) of random bytes with finite f16
// scales, against the gguf package's dequantize() (tests/golden/gguf_kquant_blocks.json, made by
// scripts/make_gguf_fixture.py --kquant-blocks). Both compute each value as the same float32 products.
TEST(Gguf, KQuantBlocksMatchTheGgufPackage) {
  std::ifstream in(std::string(LADDER_SOURCE_DIR) + "/tests/golden/gguf_kquant_blocks.json");
  ASSERT_TRUE(in) << "tests/golden/gguf_kquant_blocks.json";
  const nlohmann::json ref = nlohmann::json::parse(in);
  ASSERT_EQ(ref.size(), 3u);
  for (const auto& [name, c] : ref.items()) {
    SCOPED_TRACE(name);
    const std::string hex = c["hex"].get<std::string>();
    std::vector<unsigned char> blocks;
    for (size_t i = 0; i + 1 < hex.size(); i += 2) blocks.push_back(uint8_t(std::stoi(hex.substr(i, 2), nullptr, 16)));
    const auto want = c["values"].get<std::vector<float>>();
    ASSERT_EQ(want.size(), 512u);
    std::vector<float> got(want.size());
    dequantize_ggml(c["code"].get<uint32_t>(), blocks.data(), got.data(), int64_t(got.size()));
    size_t bad = 0;
    for (size_t i = 0; i < got.size(); ++i)
      if (got[i] != want[i] && bad++ < 3) ADD_FAILURE() << name << "[" << i << "] = " << got[i] << ", gguf " << want[i];
    EXPECT_EQ(bad, 0u);
  }
}
