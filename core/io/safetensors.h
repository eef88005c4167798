#pragma once
// Safetensors (Hugging Face's weight format): an 8-byte little-endian header length, a JSON header mapping
// tensor names to {dtype, shape, data_offsets}, then the raw bytes. Files are memory-mapped and tensors
// borrow the mapping (zero copy). Every error names the file and, where there is one, the tensor.
// A checkpoint directory holds either `model.safetensors` or shards listed in `model.safetensors.index.json`.
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "core/io/mapped_file.h"
#include "core/modules/tensor_parallel.h"
#include "core/tensor/tensor.h"

namespace ladder::core {

struct SafetensorsEntry {
  std::string name;
  std::string st_dtype;  // as written in the file ("F32", "I64", ...)
  bool loadable = false; // whether st_dtype maps to a ladder DType (I64, U8, BOOL, F64... are listed but not loaded)
  DType dtype = DType::f32;
  Shape shape;
  size_t begin = 0, end = 0;  // byte offsets into the data section
};

class SafetensorsFile {
 public:
  // Validates the header completely (JSON, dtypes, offsets inside the file, sizes consistent with shapes).
  static std::shared_ptr<SafetensorsFile> open(const std::string& path);
  // The same over bytes already mapped (MappedFile::anonymous filled by a converter).
  static std::shared_ptr<SafetensorsFile> from_mapping(std::shared_ptr<MappedFile> map);

  const std::string& path() const { return map_->path(); }
  bool has(const std::string& name) const { return entries_.count(name) != 0; }
  const SafetensorsEntry& entry(const std::string& name) const;  // throws naming file and tensor
  std::vector<std::string> names() const;
  const std::map<std::string, std::string>& metadata() const { return metadata_; }
  // A tensor borrowing the mapping, accounted to `cat` while alive.
  Tensor tensor(const std::string& name, MemCategory cat) const;
  // This rank's part of `name` (spec.full must be its shape). A dim-0 part is the rows' bytes of the mapping
  // (nothing else is touched or accounted); any other cut is copied out as f32.
  Tensor tensor_shard(const std::string& name, const ShardSpec& spec, MemCategory cat) const;

 private:
  std::shared_ptr<MappedFile> map_;
  size_t data_start_ = 0;
  std::map<std::string, SafetensorsEntry> entries_;
  std::map<std::string, std::string> metadata_;
};

// A Hugging Face model directory's weights: single file or sharded with an index.
class SafetensorsCheckpoint {
 public:
  static SafetensorsCheckpoint open_dir(const std::string& dir);
  // One file standing for a whole checkpoint (e.g. a converted GGUF model); `dir` is its name in messages.
  static SafetensorsCheckpoint from_file(std::shared_ptr<SafetensorsFile> file, const std::string& dir);
  bool has(const std::string& name) const { return where_.count(name) != 0; }
  std::vector<std::string> names() const;
  const SafetensorsEntry& entry(const std::string& name) const;
  // Loads `name`, checking it has `shape`; "missing tensor" and "shape mismatch" errors name file and tensor.
  Tensor load(const std::string& name, const Shape& shape, MemCategory cat) const;
  // Loads this rank's part (SafetensorsFile::tensor_shard), checking the stored shape is spec.full.
  Tensor load_shard(const std::string& name, const ShardSpec& spec, MemCategory cat) const;
  // The file that holds `name` (for messages).
  const std::string& file_of(const std::string& name) const;
  const std::string& dir() const { return dir_; }

 private:
  std::string dir_;
  std::vector<std::shared_ptr<SafetensorsFile>> files_;
  std::map<std::string, size_t> where_;
};

// A safetensors image of f32 tensors in anonymous memory, filled tensor by tensor: declare every tensor, then
// fill each through data(), then finish() it into a file the checkpoint reads like any other.
class SafetensorsImageBuilder {
 public:
  void declare(const std::string& name, const Shape& shape);
  // Allocates the image (after every declare); `label` names it in messages.
  void allocate(const std::string& label);
  float* data(const std::string& name);
  std::shared_ptr<SafetensorsFile> finish();

 private:
  std::vector<std::pair<std::string, Shape>> order_;
  std::map<std::string, size_t> offset_;  // byte offset of each tensor's data in the image
  std::shared_ptr<MappedFile> map_;
  size_t header_bytes_ = 0;
};

// Writes tensors (any dtype, contiguous) as a safetensors file, via a temporary name and rename.
void write_safetensors(const std::string& path, const std::vector<std::pair<std::string, Tensor>>& tensors,
                       const std::map<std::string, std::string>& metadata = {});

}  // namespace ladder::core
