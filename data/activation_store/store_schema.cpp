#include "data/activation_store/store_schema.h"

#include <cstdio>
#include <cstring>
#include <filesystem>
#include <stdexcept>

#include "core/io/hdf5_file.h"
#include "core/io/mapped_file.h"

namespace ladder::data {

const char* label_kind_name(LabelKind k) { return k == LabelKind::integer ? "int" : "float"; }

namespace {

// numpy's names, so that the attribute reads naturally in h5py.
const char* store_dtype_name(core::DType t) {
  switch (t) {
    case core::DType::f16: return "float16";
    case core::DType::bf16: return "bfloat16";
    case core::DType::f32: return "float32";
    default: return "?";
  }
}

std::string join(const std::vector<int64_t>& v) {
  std::string s;
  for (size_t i = 0; i < v.size(); ++i) {
    if (i) s += ", ";
    s += std::to_string(v[i]);
  }
  return s.empty() ? "none" : s;
}

[[noreturn]] void mismatch(const std::string& path, const std::string& field, const std::string& found,
                           const std::string& wanted) {
  throw std::runtime_error("activation store " + path + " was written for " + field + " " + found +
                           " but the config asks for " + wanted + " (re-run `ladder cache` for this config)");
}

void check_string(const std::string& path, const char* field, const std::string& found, const std::string& wanted) {
  if (!wanted.empty() && found != wanted)
    mismatch(path, field, found.empty() ? "(none)" : "'" + found + "'", "'" + wanted + "'");
}

void check_int(const std::string& path, const char* field, int64_t found, int64_t wanted) {
  if (wanted != 0 && found != wanted) mismatch(path, field, std::to_string(found), std::to_string(wanted));
}

}  // namespace

void check_matches(const StoreIdentity& found, const StoreExpectation& e, const std::string& path) {
  check_string(path, "backbone", found.backbone_id, e.backbone_id);
  check_string(path, "backbone weight hash", found.backbone_hash, e.backbone_hash);
  check_string(path, "tokenizer hash", found.tokenizer_hash, e.tokenizer_hash);
  check_string(path, "task", found.task, e.task);
  check_string(path, "split", found.split, e.split);
  check_int(path, "max_length", found.max_len, e.max_len);
  check_int(path, "hidden size", found.hidden_size, e.hidden_size);
  if (e.dtype && *e.dtype != found.dtype) mismatch(path, "dtype", store_dtype_name(found.dtype), store_dtype_name(*e.dtype));
  if (e.label_kind && *e.label_kind != found.label_kind)
    mismatch(path, "label kind", label_kind_name(found.label_kind), label_kind_name(*e.label_kind));
  if (e.num_logits > 0 && found.num_logits != e.num_logits)
    mismatch(path, "teacher logits of", found.num_logits ? std::to_string(found.num_logits) + " classes" : "no classes (none stored)",
             std::to_string(e.num_logits) + " classes");
  for (int64_t l : e.layers) {
    bool have = false;
    for (int64_t f : found.layers) have = have || f == l;
    if (!have)
      throw std::runtime_error("activation store " + path + " has no hidden states for layer " + std::to_string(l) +
                               " (it holds layers " + join(found.layers) + "; the config asks for layers " +
                               join(e.layers) + "): re-run `ladder cache` with those layers");
  }
}

void write_identity(core::Hdf5File& f, const StoreIdentity& id) {
  f.set_attr("format", id.format);
  f.set_attr("version", id.version);
  f.set_attr("backbone_id", id.backbone_id);
  f.set_attr("backbone_hash", id.backbone_hash);
  f.set_attr("tokenizer_hash", id.tokenizer_hash);
  f.set_attr("task", id.task);
  f.set_attr("split", id.split);
  f.set_attr("max_len", id.max_len);
  f.set_attr("dtype", std::string(store_dtype_name(id.dtype)));
  f.set_attr("layers", id.layers);
  f.set_attr("hidden_size", id.hidden_size);
  f.set_attr("num_rows", id.num_rows);
  f.set_attr("label_kind", std::string(label_kind_name(id.label_kind)));
  f.set_attr("num_logits", id.num_logits);
  f.set_attr("token_types", int64_t(id.token_types ? 1 : 0));
}

StoreIdentity read_identity(const core::Hdf5File& f) {
  const std::string& path = f.path();
  if (!f.has_attr("format") || !f.attr_is_string("format"))
    throw std::runtime_error("activation store " + path + " has no 'format' attribute: not a ladder activation store");
  StoreIdentity id;
  id.format = f.get_attr_string("format");
  if (id.format != kActivationStoreFormat)
    throw std::runtime_error("activation store " + path + " has format '" + id.format + "', expected '" +
                             kActivationStoreFormat + "'");
  id.version = f.get_attr_int("version");
  if (id.version < 1 || id.version > kActivationStoreVersion)
    throw std::runtime_error("activation store " + path + " has version " + std::to_string(id.version) +
                             "; this ladder reads versions up to " + std::to_string(kActivationStoreVersion));
  id.backbone_id = f.get_attr_string("backbone_id");
  id.backbone_hash = f.get_attr_string("backbone_hash");
  id.tokenizer_hash = f.get_attr_string("tokenizer_hash");
  id.task = f.get_attr_string("task");
  id.split = f.get_attr_string("split");
  id.max_len = f.get_attr_int("max_len");
  const std::string dt = f.get_attr_string("dtype");
  if (dt == "float16") id.dtype = core::DType::f16;
  else if (dt == "bfloat16") id.dtype = core::DType::bf16;
  else if (dt == "float32") id.dtype = core::DType::f32;
  else throw std::runtime_error("activation store " + path + " has unknown dtype '" + dt + "'");
  id.layers = f.get_attr_int_vector("layers");
  id.hidden_size = f.get_attr_int("hidden_size");
  id.num_rows = f.get_attr_int("num_rows");
  const std::string lk = f.get_attr_string("label_kind");
  if (lk != "int" && lk != "float") throw std::runtime_error("activation store " + path + " has unknown label_kind '" + lk + "'");
  id.label_kind = lk == "int" ? LabelKind::integer : LabelKind::real;
  id.num_logits = f.get_attr_int("num_logits");
  id.token_types = f.get_attr_int("token_types") != 0;
  return id;
}

// ---- XXH64 (Yann Collet's xxHash, 64-bit variant, as specified in xxhash's doc/xxhash_spec.md) ----

namespace {

constexpr uint64_t P1 = 0x9E3779B185EBCA87ull, P2 = 0xC2B2AE3D27D4EB4Full, P3 = 0x165667B19E3779F9ull,
                   P4 = 0x85EBCA77C2B2AE63ull, P5 = 0x27D4EB2F165667C5ull;

inline uint64_t rotl(uint64_t x, int r) { return (x << r) | (x >> (64 - r)); }
inline uint64_t read64(const unsigned char* p) {
  uint64_t v;
  std::memcpy(&v, p, 8);  // the spec reads little-endian; ladder targets little-endian machines only
  return v;
}
inline uint32_t read32(const unsigned char* p) {
  uint32_t v;
  std::memcpy(&v, p, 4);
  return v;
}
inline uint64_t round64(uint64_t acc, uint64_t in) { return rotl(acc + in * P2, 31) * P1; }
inline uint64_t merge64(uint64_t acc, uint64_t v) { return (acc ^ round64(0, v)) * P1 + P4; }

std::string hex64(uint64_t h) {
  char buf[24];
  std::snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(h));
  return std::string("xxh64:") + buf;
}

}  // namespace

uint64_t xxh64(const void* data, size_t size, uint64_t seed) {
  const auto* p = static_cast<const unsigned char*>(data);
  const unsigned char* end = p + size;
  uint64_t h;
  if (size >= 32) {
    uint64_t v1 = seed + P1 + P2, v2 = seed + P2, v3 = seed, v4 = seed - P1;
    for (; p + 32 <= end; p += 32) {
      v1 = round64(v1, read64(p));
      v2 = round64(v2, read64(p + 8));
      v3 = round64(v3, read64(p + 16));
      v4 = round64(v4, read64(p + 24));
    }
    h = rotl(v1, 1) + rotl(v2, 7) + rotl(v3, 12) + rotl(v4, 18);
    h = merge64(merge64(merge64(merge64(h, v1), v2), v3), v4);
  } else {
    h = seed + P5;
  }
  h += uint64_t(size);
  for (; p + 8 <= end; p += 8) h = rotl(h ^ round64(0, read64(p)), 27) * P1 + P4;
  if (p + 4 <= end) {
    h = rotl(h ^ (uint64_t(read32(p)) * P1), 23) * P2 + P3;
    p += 4;
  }
  for (; p < end; ++p) h = rotl(h ^ (uint64_t(*p) * P5), 11) * P1;
  h ^= h >> 33;
  h *= P2;
  h ^= h >> 29;
  h *= P3;
  h ^= h >> 32;
  return h;
}

std::string hash_file(const std::string& path) {
  std::error_code ec;
  const auto size = std::filesystem::file_size(path, ec);
  if (ec) throw std::runtime_error("cannot hash " + path + ": " + ec.message());
  if (size == 0) return hex64(xxh64(nullptr, 0));
  auto m = core::MappedFile::open(path);
  return hex64(xxh64(m->data(), m->size()));
}

std::string hash_files(const std::vector<std::string>& paths) {
  if (paths.size() == 1) return hash_file(paths[0]);
  std::string joined;
  for (size_t i = 0; i < paths.size(); ++i) {
    if (i) joined += '\n';
    joined += hash_file(paths[i]);
  }
  return hex64(xxh64(joined.data(), joined.size()));
}

}  // namespace ladder::data
