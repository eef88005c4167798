#include "core/io/gguf.h"

#include <cstring>
#include <stdexcept>

#include "core/tensor/dtype.h"

namespace ladder::core {

namespace {

enum ValueType : uint32_t {
  t_u8 = 0, t_i8 = 1, t_u16 = 2, t_i16 = 3, t_u32 = 4, t_i32 = 5, t_f32 = 6, t_bool = 7, t_string = 8,
  t_array = 9, t_u64 = 10, t_i64 = 11, t_f64 = 12
};

// A bounds-checked cursor over the header; every read past the end names the file and what was read.
class Cursor {
 public:
  Cursor(const MappedFile& f) : f_(f) {}
  template <class T>
  T read(const char* what) {
    need(sizeof(T), what);
    T v;
    std::memcpy(&v, f_.data() + pos_, sizeof(T));
    pos_ += sizeof(T);
    return v;
  }
  std::string string(const char* what) {
    const uint64_t n = read<uint64_t>(what);
    need(n, what);
    std::string s(reinterpret_cast<const char*>(f_.data() + pos_), size_t(n));
    pos_ += n;
    return s;
  }
  uint64_t pos() const { return pos_; }
  [[noreturn]] void fail(const std::string& why) const {
    throw std::runtime_error(f_.path() + ": " + why + " (at byte " + std::to_string(pos_) + ")");
  }

 private:
  void need(uint64_t n, const char* what) const {
    if (n > f_.size() || pos_ > f_.size() - n) fail(std::string("file ends inside ") + what + " (truncated?)");
  }
  const MappedFile& f_;
  uint64_t pos_ = 0;
};

template <class T>
T read_scalar_as(Cursor& c, uint32_t type, const char* what) {
  switch (type) {
    case t_u8: return T(c.read<uint8_t>(what));
    case t_i8: return T(c.read<int8_t>(what));
    case t_u16: return T(c.read<uint16_t>(what));
    case t_i16: return T(c.read<int16_t>(what));
    case t_u32: return T(c.read<uint32_t>(what));
    case t_i32: return T(c.read<int32_t>(what));
    case t_u64: return T(c.read<uint64_t>(what));
    case t_i64: return T(c.read<int64_t>(what));
    case t_f32: return T(c.read<float>(what));
    case t_f64: return T(c.read<double>(what));
    case t_bool: return T(c.read<uint8_t>(what) != 0);
  }
  c.fail(std::string("unknown value type ") + std::to_string(type) + " in " + what);
}

bool is_signed_int(uint32_t t) { return t == t_i8 || t == t_i16 || t == t_i32 || t == t_i64; }
bool is_unsigned_int(uint32_t t) { return t == t_u8 || t == t_u16 || t == t_u32 || t == t_u64; }
bool is_float(uint32_t t) { return t == t_f32 || t == t_f64; }

GgufValue read_value(Cursor& c, uint32_t type, const std::string& key) {
  const std::string what = "the value of '" + key + "'";
  GgufValue v;
  v.type = type;
  if (type == t_string) {
    v.value = c.string(what.c_str());
  } else if (type == t_array) {
    v.elem_type = c.read<uint32_t>(what.c_str());
    const uint64_t n = c.read<uint64_t>(what.c_str());
    const uint32_t et = v.elem_type;
    if (et == t_array) c.fail("key '" + key + "': nested arrays are not supported");
    if (et == t_string) {
      std::vector<std::string> s;
      for (uint64_t i = 0; i < n; ++i) s.push_back(c.string(what.c_str()));
      v.value = std::move(s);
    } else if (is_signed_int(et)) {
      std::vector<int64_t> a;
      for (uint64_t i = 0; i < n; ++i) a.push_back(read_scalar_as<int64_t>(c, et, what.c_str()));
      v.value = std::move(a);
    } else if (is_unsigned_int(et)) {
      std::vector<uint64_t> a;
      for (uint64_t i = 0; i < n; ++i) a.push_back(read_scalar_as<uint64_t>(c, et, what.c_str()));
      v.value = std::move(a);
    } else if (is_float(et)) {
      std::vector<double> a;
      for (uint64_t i = 0; i < n; ++i) a.push_back(read_scalar_as<double>(c, et, what.c_str()));
      v.value = std::move(a);
    } else if (et == t_bool) {
      std::vector<bool> a;
      for (uint64_t i = 0; i < n; ++i) a.push_back(read_scalar_as<bool>(c, et, what.c_str()));
      v.value = std::move(a);
    } else {
      c.fail("key '" + key + "': unknown array element type " + std::to_string(et));
    }
  } else if (is_signed_int(type)) {
    v.value = read_scalar_as<int64_t>(c, type, what.c_str());
  } else if (is_unsigned_int(type)) {
    v.value = read_scalar_as<uint64_t>(c, type, what.c_str());
  } else if (is_float(type)) {
    v.value = read_scalar_as<double>(c, type, what.c_str());
  } else if (type == t_bool) {
    v.value = read_scalar_as<bool>(c, type, what.c_str());
  } else {
    c.fail("key '" + key + "': unknown value type " + std::to_string(type));
  }
  return v;
}

// The 6-bit scale and min of sub-block j of a Q4_K / Q5_K block (ggml's get_scale_min_k4).
void k_scale_min(int j, const unsigned char* q, uint8_t* d, uint8_t* m) {
  if (j < 4) {
    *d = q[j] & 63;
    *m = q[j + 4] & 63;
  } else {
    *d = uint8_t((q[j + 4] & 0x0F) | ((q[j - 4] >> 6) << 4));
    *m = uint8_t((q[j + 4] >> 4) | ((q[j] >> 6) << 4));
  }
}

float h2f(const unsigned char* p) {
  uint16_t h;
  std::memcpy(&h, p, 2);
  return f16_to_f32(h);
}

}  // namespace

std::string ggml_type_name(uint32_t code) {
  switch (GgmlType(code)) {
    case GgmlType::f32: return "F32";
    case GgmlType::f16: return "F16";
    case GgmlType::bf16: return "BF16";
    case GgmlType::q4_0: return "Q4_0";
    case GgmlType::q4_1: return "Q4_1";
    case GgmlType::q5_0: return "Q5_0";
    case GgmlType::q5_1: return "Q5_1";
    case GgmlType::q8_0: return "Q8_0";
    case GgmlType::q8_1: return "Q8_1";
    case GgmlType::q2_k: return "Q2_K";
    case GgmlType::q3_k: return "Q3_K";
    case GgmlType::q4_k: return "Q4_K";
    case GgmlType::q5_k: return "Q5_K";
    case GgmlType::q6_k: return "Q6_K";
    case GgmlType::q8_k: return "Q8_K";
  }
  return "type " + std::to_string(code);
}

bool ggml_block_size(uint32_t code, int64_t* elements, int64_t* bytes) {
  int64_t e = 0, b = 0;
  switch (GgmlType(code)) {
    case GgmlType::f32: e = 1, b = 4; break;
    case GgmlType::f16: case GgmlType::bf16: e = 1, b = 2; break;
    case GgmlType::q4_0: e = 32, b = 18; break;
    case GgmlType::q4_1: e = 32, b = 20; break;
    case GgmlType::q5_0: e = 32, b = 22; break;
    case GgmlType::q5_1: e = 32, b = 24; break;
    case GgmlType::q8_0: e = 32, b = 34; break;
    case GgmlType::q8_1: e = 32, b = 36; break;
    case GgmlType::q2_k: e = 256, b = 84; break;
    case GgmlType::q3_k: e = 256, b = 110; break;
    case GgmlType::q4_k: e = 256, b = 144; break;
    case GgmlType::q5_k: e = 256, b = 176; break;
    case GgmlType::q6_k: e = 256, b = 210; break;
    case GgmlType::q8_k: e = 256, b = 292; break;
    default: return false;
  }
  *elements = e;
  *bytes = b;
  return true;
}

int64_t GgufTensorInfo::numel() const {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  return n;
}

GgufFile GgufFile::open(const std::string& path) {
  GgufFile g;
  g.map_ = MappedFile::open(path);
  Cursor c(*g.map_);
  char magic[4];
  for (char& m : magic) m = char(c.read<uint8_t>("the magic"));
  if (std::memcmp(magic, "GGUF", 4) != 0) c.fail("not a GGUF file (magic is not 'GGUF')");
  g.version_ = c.read<uint32_t>("the version");
  if (g.version_ != 2 && g.version_ != 3)
    c.fail("GGUF version " + std::to_string(g.version_) + " is not supported (2 and 3 are)");
  const uint64_t n_tensors = c.read<uint64_t>("the tensor count");
  const uint64_t n_kv = c.read<uint64_t>("the key count");
  for (uint64_t i = 0; i < n_kv; ++i) {
    const std::string key = c.string("a metadata key");
    const uint32_t type = c.read<uint32_t>(("the type of '" + key + "'").c_str());
    if (g.kv_.count(key)) c.fail("metadata key '" + key + "' appears twice");
    g.kv_[key] = read_value(c, type, key);
  }
  if (g.has("general.alignment")) {
    const int64_t a = g.get_int("general.alignment");
    if (a <= 0 || (a & (a - 1)) != 0) c.fail("general.alignment " + std::to_string(a) + " is not a power of two");
    g.alignment_ = uint64_t(a);
  }
  for (uint64_t i = 0; i < n_tensors; ++i) {
    GgufTensorInfo t;
    t.name = c.string("a tensor name");
    const std::string what = "tensor '" + t.name + "'";
    const uint32_t nd = c.read<uint32_t>(what.c_str());
    if (nd == 0 || nd > 8) c.fail(what + " has " + std::to_string(nd) + " dimensions");
    std::vector<int64_t> dims(nd);
    for (auto& d : dims) {
      const uint64_t v = c.read<uint64_t>(what.c_str());
      if (v == 0 || v > (uint64_t(1) << 40)) c.fail(what + " has a dimension of " + std::to_string(v));
      d = int64_t(v);
    }
    t.shape.assign(dims.rbegin(), dims.rend());
    t.type = c.read<uint32_t>(what.c_str());
    t.offset = c.read<uint64_t>(what.c_str());
    int64_t be = 0, bb = 0;
    if (!ggml_block_size(t.type, &be, &bb)) c.fail(what + " has unknown type " + std::to_string(t.type));
    if (dims[0] % be != 0)
      c.fail(what + ": its row of " + std::to_string(dims[0]) + " is not whole " + ggml_type_name(t.type) + " blocks of " +
             std::to_string(be));
    t.bytes = uint64_t(t.numel() / be * bb);
    if (t.offset % g.alignment_ != 0) c.fail(what + ": offset " + std::to_string(t.offset) + " is not aligned");
    if (g.by_name_.count(t.name)) c.fail(what + " appears twice");
    g.by_name_[t.name] = g.tensors_.size();
    g.tensors_.push_back(std::move(t));
  }
  g.data_offset_ = (c.pos() + g.alignment_ - 1) / g.alignment_ * g.alignment_;
  const uint64_t size = g.map_->size();
  for (const auto& t : g.tensors_)
    if (g.data_offset_ > size || t.offset > size - g.data_offset_ || t.bytes > size - g.data_offset_ - t.offset)
      throw std::runtime_error(path + ": tensor '" + t.name + "' (" + std::to_string(t.bytes) + " bytes at data offset " +
                               std::to_string(t.offset) + ") lies past the end of the file (" + std::to_string(size) +
                               " bytes; truncated?)");
  return g;
}

namespace {
[[noreturn]] void key_error(const std::string& path, const std::string& key, const std::string& want) {
  throw std::runtime_error(path + ": metadata key '" + key + "' " + want);
}
}  // namespace

std::string GgufFile::get_string(const std::string& key) const {
  auto it = kv_.find(key);
  if (it == kv_.end()) key_error(path(), key, "is missing");
  if (auto* s = std::get_if<std::string>(&it->second.value)) return *s;
  key_error(path(), key, "is not a string");
}

int64_t GgufFile::get_int(const std::string& key) const {
  auto it = kv_.find(key);
  if (it == kv_.end()) key_error(path(), key, "is missing");
  if (auto* u = std::get_if<uint64_t>(&it->second.value)) return int64_t(*u);
  if (auto* i = std::get_if<int64_t>(&it->second.value)) return *i;
  key_error(path(), key, "is not an integer");
}

double GgufFile::get_float(const std::string& key) const {
  auto it = kv_.find(key);
  if (it == kv_.end()) key_error(path(), key, "is missing");
  if (auto* d = std::get_if<double>(&it->second.value)) return *d;
  if (auto* u = std::get_if<uint64_t>(&it->second.value)) return double(*u);
  if (auto* i = std::get_if<int64_t>(&it->second.value)) return double(*i);
  key_error(path(), key, "is not a number");
}

bool GgufFile::get_bool(const std::string& key) const {
  auto it = kv_.find(key);
  if (it == kv_.end()) key_error(path(), key, "is missing");
  if (auto* b = std::get_if<bool>(&it->second.value)) return *b;
  key_error(path(), key, "is not a bool");
}

const std::vector<std::string>& GgufFile::get_strings(const std::string& key) const {
  auto it = kv_.find(key);
  if (it == kv_.end()) key_error(path(), key, "is missing");
  if (auto* s = std::get_if<std::vector<std::string>>(&it->second.value)) return *s;
  key_error(path(), key, "is not an array of strings");
}

const GgufTensorInfo& GgufFile::tensor(const std::string& name) const {
  auto it = by_name_.find(name);
  if (it == by_name_.end()) throw std::runtime_error(path() + ": no tensor '" + name + "'");
  return tensors_[it->second];
}

const unsigned char* GgufFile::tensor_data(const GgufTensorInfo& t) const {
  return map_->data() + data_offset_ + t.offset;
}

std::vector<float> GgufFile::dequantize(const GgufTensorInfo& t) const {
  std::vector<float> out(size_t(t.numel()));
  try {
    dequantize_ggml(t.type, tensor_data(t), out.data(), t.numel());
  } catch (const std::invalid_argument& e) {
    throw std::runtime_error(path() + ": tensor '" + t.name + "': " + e.what());
  }
  return out;
}

void dequantize_ggml(uint32_t code, const unsigned char* src, float* dst, int64_t n) {
  int64_t be = 0, bb = 0;
  if (!ggml_block_size(code, &be, &bb)) throw std::invalid_argument("unknown ggml type " + std::to_string(code));
  if (n % be != 0) throw std::invalid_argument(std::to_string(n) + " elements are not whole " + ggml_type_name(code) + " blocks");
  const int64_t blocks = n / be;
  switch (GgmlType(code)) {
    case GgmlType::f32: std::memcpy(dst, src, size_t(n) * 4); return;
    case GgmlType::f16: convert_to_f32(DType::f16, src, dst, size_t(n)); return;
    case GgmlType::bf16: convert_to_f32(DType::bf16, src, dst, size_t(n)); return;
    default: break;
  }
  const auto t = GgmlType(code);
  if (t != GgmlType::q4_0 && t != GgmlType::q4_1 && t != GgmlType::q5_0 && t != GgmlType::q5_1 && t != GgmlType::q8_0 &&
      t != GgmlType::q4_k && t != GgmlType::q5_k && t != GgmlType::q6_k)
    throw std::invalid_argument("ladder cannot dequantize " + ggml_type_name(code) +
                                " (it reads F32, F16, BF16, Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, Q4_K, Q5_K, Q6_K)");
#pragma omp parallel for schedule(static)
  for (int64_t ib = 0; ib < blocks; ++ib) {
    const unsigned char* b = src + ib * bb;
    float* y = dst + ib * be;
    switch (GgmlType(code)) {
      case GgmlType::q4_0: {  // d, 16 bytes: element j in the low nibble of byte j, j + 16 in its high one
        const float d = h2f(b);
        for (int j = 0; j < 16; ++j) {
          y[j] = float(int(b[2 + j] & 0x0F) - 8) * d;
          y[j + 16] = float(int(b[2 + j] >> 4) - 8) * d;
        }
        break;
      }
      case GgmlType::q4_1: {  // d, m, 16 bytes of nibbles: x = q d + m
        const float d = h2f(b), m = h2f(b + 2);
        for (int j = 0; j < 16; ++j) {
          y[j] = float(b[4 + j] & 0x0F) * d + m;
          y[j + 16] = float(b[4 + j] >> 4) * d + m;
        }
        break;
      }
      case GgmlType::q5_0:
      case GgmlType::q5_1: {  // d, (m,) 32 fifth bits, 16 bytes of nibbles
        const bool has_m = GgmlType(code) == GgmlType::q5_1;
        const float d = h2f(b), m = has_m ? h2f(b + 2) : 0.0f;
        const unsigned char* qhp = b + (has_m ? 4 : 2);
        uint32_t qh;
        std::memcpy(&qh, qhp, 4);
        const unsigned char* qs = qhp + 4;
        const int off = has_m ? 0 : 16;
        for (int j = 0; j < 16; ++j) {
          const int h0 = int((qh >> j) << 4) & 0x10, h1 = int(qh >> (j + 12)) & 0x10;
          y[j] = float(int((qs[j] & 0x0F) | h0) - off) * d + m;
          y[j + 16] = float(int((qs[j] >> 4) | h1) - off) * d + m;
        }
        break;
      }
      case GgmlType::q8_0: {  // d, 32 signed bytes
        const float d = h2f(b);
        for (int j = 0; j < 32; ++j) y[j] = float(int8_t(b[2 + j])) * d;
        break;
      }
      case GgmlType::q4_k:
      case GgmlType::q5_k: {  // d, dmin, 12 bytes of 6-bit scales and mins, (q5: 32 bytes of fifth bits,) nibbles
        const bool five = GgmlType(code) == GgmlType::q5_k;
        const float d = h2f(b), dmin = h2f(b + 2);
        const unsigned char* sc = b + 4;
        const unsigned char* qh = b + 16;
        const unsigned char* q = b + (five ? 48 : 16);
        unsigned u1 = 1, u2 = 2;
        for (int j = 0, is = 0; j < 256; j += 64, is += 2) {
          uint8_t s1, m1, s2, m2;
          k_scale_min(is, sc, &s1, &m1);
          k_scale_min(is + 1, sc, &s2, &m2);
          const float d1 = d * s1, mm1 = dmin * m1, d2 = d * s2, mm2 = dmin * m2;
          for (int l = 0; l < 32; ++l) y[j + l] = d1 * float((q[l] & 0x0F) + (five && (qh[l] & u1) ? 16 : 0)) - mm1;
          for (int l = 0; l < 32; ++l) y[j + 32 + l] = d2 * float((q[l] >> 4) + (five && (qh[l] & u2) ? 16 : 0)) - mm2;
          q += 32;
          u1 <<= 2;
          u2 <<= 2;
        }
        break;
      }
      case GgmlType::q6_k: {  // 128 bytes low nibbles, 64 bytes high 2-bit pairs, 16 signed scales, d
        const unsigned char* ql = b;
        const unsigned char* qh = b + 128;
        const int8_t* sc = reinterpret_cast<const int8_t*>(b + 192);
        const float d = h2f(b + 208);
        for (int n = 0; n < 256; n += 128) {
          for (int l = 0; l < 32; ++l) {
            const int is = l / 16;
            const int q1 = int((ql[l] & 0x0F) | (((qh[l] >> 0) & 3) << 4)) - 32;
            const int q2 = int((ql[l + 32] & 0x0F) | (((qh[l] >> 2) & 3) << 4)) - 32;
            const int q3 = int((ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4)) - 32;
            const int q4 = int((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)) - 32;
            y[n + l] = d * float(sc[is]) * float(q1);
            y[n + l + 32] = d * float(sc[is + 2]) * float(q2);
            y[n + l + 64] = d * float(sc[is + 4]) * float(q3);
            y[n + l + 96] = d * float(sc[is + 6]) * float(q4);
          }
          ql += 64;
          qh += 32;
          sc += 8;
        }
        break;
      }
      default:
        break;
    }
  }
}

}  // namespace ladder::core
