#pragma once
// GGUF files (llama.cpp's model format, versions 2 and 3), memory-mapped: the header, every metadata
// key/value (all twelve value types, arrays included), the tensor infos and the aligned data section.
// Tensors are read in the block type the file holds them in; dequantize() widens them to f32 for the
// types listed below. Every error names the file and, where there is one, the key or tensor.
// Layout facts (byte order little-endian; GGUF dims are fastest-first, shapes here are row-major):
// ggml's gguf.c and the `gguf` Python package.
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <variant>
#include <vector>

#include "core/io/mapped_file.h"

namespace ladder::core {

// ggml tensor types by their file codes.
enum class GgmlType : uint32_t {
  f32 = 0, f16 = 1, q4_0 = 2, q4_1 = 3, q5_0 = 6, q5_1 = 7, q8_0 = 8, q8_1 = 9, q2_k = 10, q3_k = 11,
  q4_k = 12, q5_k = 13, q6_k = 14, q8_k = 15, bf16 = 30
};
// "Q4_1", ...; "type 17" for a code this reader does not know.
std::string ggml_type_name(uint32_t code);
// Elements per block and bytes per block; false for an unknown code.
bool ggml_block_size(uint32_t code, int64_t* elements, int64_t* bytes);

// One metadata value. Arrays of numbers and bools are held widened (int64 / uint64 / double / bool);
// arrays of strings as strings; nested arrays are rejected as an error naming the key.
struct GgufValue {
  uint32_t type = 0;        // the file's value type code (4 = uint32, 8 = string, 9 = array, ...)
  uint32_t elem_type = 0;   // for arrays: the elements' type code
  std::variant<uint64_t, int64_t, double, bool, std::string, std::vector<int64_t>, std::vector<uint64_t>,
               std::vector<double>, std::vector<bool>, std::vector<std::string>>
      value;
};

struct GgufTensorInfo {
  std::string name;
  std::vector<int64_t> shape;  // row-major (the file's dims reversed)
  uint32_t type = 0;           // GgmlType code
  uint64_t offset = 0;         // from the start of the data section
  uint64_t bytes = 0;          // whole blocks
  int64_t numel() const;
};

class GgufFile {
 public:
  // Maps and validates the whole header: magic, version, every key and tensor info, alignment, and that
  // every tensor lies inside the file. Throws std::runtime_error naming the file (and the key or tensor).
  static GgufFile open(const std::string& path);

  const std::string& path() const { return map_->path(); }
  uint32_t version() const { return version_; }
  uint64_t alignment() const { return alignment_; }
  const std::map<std::string, GgufValue>& metadata() const { return kv_; }
  const std::vector<GgufTensorInfo>& tensors() const { return tensors_; }

  bool has(const std::string& key) const { return kv_.count(key) > 0; }
  // Typed reads; throw naming the file and key when it is missing or of another type.
  std::string get_string(const std::string& key) const;
  int64_t get_int(const std::string& key) const;  // any integer type
  double get_float(const std::string& key) const; // f32 or f64 (integers too)
  bool get_bool(const std::string& key) const;
  const std::vector<std::string>& get_strings(const std::string& key) const;

  const GgufTensorInfo& tensor(const std::string& name) const;  // throws naming the file and tensor
  // The tensor's bytes as stored (blocks), inside the mapping.
  const unsigned char* tensor_data(const GgufTensorInfo& t) const;
  // The tensor widened to f32, row-major. Types: F32, F16, BF16, Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, Q4_K, Q5_K,
  // Q6_K; others
  // throw naming the tensor and its type.
  std::vector<float> dequantize(const GgufTensorInfo& t) const;

 private:
  std::shared_ptr<MappedFile> map_;
  uint32_t version_ = 0;
  uint64_t alignment_ = 32;
  uint64_t data_offset_ = 0;
  std::map<std::string, GgufValue> kv_;
  std::vector<GgufTensorInfo> tensors_;
  std::map<std::string, size_t> by_name_;
};

// Widens n elements (a whole number of blocks) of type `code` at `src` into dst. Throws for the types
// dequantize() does not list.
void dequantize_ggml(uint32_t code, const unsigned char* src, float* dst, int64_t n);

}  // namespace ladder::core
