#include "core/io/safetensors.h"

#include <cstdint>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <nlohmann/json.hpp>
#include <stdexcept>

namespace ladder::core {

using json = nlohmann::json;

static std::runtime_error file_error(const std::string& path, const std::string& what) {
  return std::runtime_error(path + ": " + what);
}

// Safetensors dtype strings; I64/U8/BOOL are readable as raw bytes only (we never compute in them).
static bool parse_st_dtype(const std::string& s, DType& out) {
  if (s == "F32") out = DType::f32;
  else if (s == "BF16") out = DType::bf16;
  else if (s == "F16") out = DType::f16;
  else if (s == "I32") out = DType::i32;
  else if (s == "I8") out = DType::i8;
  else return false;
  return true;
}

// Bytes per element of every dtype the format defines, so headers with types we do not compute in still
// validate (e.g. BERT checkpoints carry an I64 position_ids buffer).
static size_t st_dtype_size(const std::string& s) {
  if (s == "F64" || s == "I64" || s == "U64") return 8;
  if (s == "F32" || s == "I32" || s == "U32") return 4;
  if (s == "F16" || s == "BF16" || s == "I16" || s == "U16") return 2;
  if (s == "I8" || s == "U8" || s == "BOOL" || s == "F8_E4M3" || s == "F8_E5M2") return 1;
  return 0;
}

static const char* st_dtype_name(DType t) {
  switch (t) {
    case DType::f32: return "F32";
    case DType::bf16: return "BF16";
    case DType::f16: return "F16";
    case DType::i32: return "I32";
    case DType::i8: return "I8";
    case DType::u4: return "U8";  // packed nibbles are stored as bytes
  }
  return "?";
}

std::shared_ptr<SafetensorsFile> SafetensorsFile::open(const std::string& path) {
  return from_mapping(MappedFile::open(path));
}

std::shared_ptr<SafetensorsFile> SafetensorsFile::from_mapping(std::shared_ptr<MappedFile> map) {
  auto f = std::make_shared<SafetensorsFile>();
  f->map_ = std::move(map);
  const std::string& path = f->map_->path();
  const size_t size = f->map_->size();
  if (size < 8) throw file_error(path, "truncated safetensors file (" + std::to_string(size) + " bytes, no header)");
  uint64_t hlen = 0;
  std::memcpy(&hlen, f->map_->data(), 8);  // little-endian on every platform we build for
  if (hlen > size - 8)
    throw file_error(path, "truncated or corrupt safetensors file: header claims " + std::to_string(hlen) +
                               " bytes but the file has " + std::to_string(size));
  f->data_start_ = 8 + size_t(hlen);
  json header;
  try {
    header = json::parse(reinterpret_cast<const char*>(f->map_->data()) + 8,
                         reinterpret_cast<const char*>(f->map_->data()) + 8 + hlen);
  } catch (const std::exception& e) {
    throw file_error(path, std::string("corrupt safetensors header (invalid JSON): ") + e.what());
  }
  if (!header.is_object()) throw file_error(path, "corrupt safetensors header (not a JSON object)");
  const size_t data_size = size - f->data_start_;
  for (auto it = header.begin(); it != header.end(); ++it) {
    const std::string& name = it.key();
    if (name == "__metadata__") {
      if (it->is_object())
        for (auto m = it->begin(); m != it->end(); ++m)
          if (m->is_string()) f->metadata_[m.key()] = m->get<std::string>();
      continue;
    }
    const json& e = *it;
    auto bad = [&](const std::string& why) { return file_error(path, "tensor '" + name + "': " + why); };
    if (!e.is_object() || !e.contains("dtype") || !e.contains("shape") || !e.contains("data_offsets"))
      throw bad("header entry lacks dtype, shape or data_offsets");
    SafetensorsEntry entry;
    entry.name = name;
    if (!e["dtype"].is_string()) throw bad("dtype must be a string");
    if (!e["shape"].is_array()) throw bad("invalid shape (not an array)");
    std::string dt = e["dtype"].get<std::string>();
    entry.st_dtype = dt;
    entry.loadable = parse_st_dtype(dt, entry.dtype);
    if (st_dtype_size(dt) == 0) throw bad("unknown dtype " + dt);
    for (auto& d : e["shape"]) {
      if (!d.is_number_integer() || d.get<int64_t>() < 0) throw bad("invalid shape");
      entry.shape.push_back(d.get<int64_t>());
    }
    const json& off = e["data_offsets"];
    if (!off.is_array() || off.size() != 2 || !off[0].is_number_unsigned() || !off[1].is_number_unsigned())
      throw bad("data_offsets must be [begin, end] (non-negative integers)");
    entry.begin = off[0].get<size_t>();
    entry.end = off[1].get<size_t>();
    if (entry.end < entry.begin) throw bad("data_offsets end before begin");
    if (entry.end > data_size)
      throw bad("data ends at byte " + std::to_string(entry.end) + " past the end of the file's data (" +
                std::to_string(data_size) + " bytes): truncated file");
    size_t expect = st_dtype_size(dt) * size_t(shape_numel(entry.shape));
    if (entry.end - entry.begin != expect)
      throw bad("holds " + std::to_string(entry.end - entry.begin) + " bytes but " + dt + " " + shape_str(entry.shape) +
                " needs " + std::to_string(expect));
    f->entries_[name] = std::move(entry);
  }
  return f;
}

const SafetensorsEntry& SafetensorsFile::entry(const std::string& name) const {
  auto it = entries_.find(name);
  if (it == entries_.end()) throw file_error(path(), "no tensor named '" + name + "'");
  return it->second;
}

std::vector<std::string> SafetensorsFile::names() const {
  std::vector<std::string> out;
  for (auto& [k, v] : entries_) out.push_back(k);
  return out;
}

Tensor SafetensorsFile::tensor(const std::string& name, MemCategory cat) const {
  const SafetensorsEntry& e = entry(name);
  if (!e.loadable) throw file_error(path(), "tensor '" + name + "' has dtype " + e.st_dtype + ", which ladder does not load");
  size_t bytes = e.end - e.begin;
  void* p = const_cast<unsigned char*>(map_->data()) + data_start_ + e.begin;
  auto storage = Storage::borrow(p, bytes, cat, map_);
  // f32/i32 data in a safetensors file is only guaranteed 1-byte aligned; copy when it is not 4-aligned.
  Tensor t = Tensor::from_storage(storage, 0, e.shape, e.dtype);
  if (reinterpret_cast<uintptr_t>(p) % 4 != 0) return t.clone(cat);
  return t;
}

Tensor SafetensorsFile::tensor_shard(const std::string& name, const ShardSpec& spec, MemCategory cat) const {
  if (!spec.sharded()) return tensor(name, cat);
  const SafetensorsEntry& e = entry(name);
  if (!e.loadable) throw file_error(path(), "tensor '" + name + "' has dtype " + e.st_dtype + ", which ladder does not load");
  if (spec.dim == 0 && spec.blocks == 1) {
    auto [b, end] = spec.range();
    const size_t row_bytes = dtype_bytes(e.dtype, size_t(shape_numel(e.shape) / std::max<int64_t>(1, e.shape[0])));
    void* p = const_cast<unsigned char*>(map_->data()) + data_start_ + e.begin + size_t(b) * row_bytes;
    Tensor t = Tensor::from_storage(Storage::borrow(p, size_t(end - b) * row_bytes, cat, map_), 0, spec.local_shape(), e.dtype);
    if (reinterpret_cast<uintptr_t>(p) % 4 != 0) return t.clone(cat);
    return t;
  }
  // A strided cut: read through a transient view of the whole tensor, keep only the part.
  Tensor whole = tensor(name, MemCategory::workspace);
  if (whole.dtype() != DType::f32) whole = whole.to(DType::f32, MemCategory::workspace);
  Tensor local = Tensor::empty(spec.local_shape(), DType::f32, cat);
  extract_shard(local.data<float>(), whole.data<float>(), spec, spec.index);
  return local;
}

SafetensorsCheckpoint SafetensorsCheckpoint::open_dir(const std::string& dir) {
  SafetensorsCheckpoint c;
  c.dir_ = dir;
  const std::string single = dir + "/model.safetensors";
  const std::string index = dir + "/model.safetensors.index.json";
  std::ifstream idx(index);
  if (idx) {
    json j;
    try {
      j = json::parse(idx);
    } catch (const std::exception& e) {
      throw file_error(index, std::string("invalid JSON: ") + e.what());
    }
    if (!j.contains("weight_map") || !j["weight_map"].is_object()) throw file_error(index, "no \"weight_map\" object");
    std::map<std::string, size_t> file_ids;
    for (auto it = j["weight_map"].begin(); it != j["weight_map"].end(); ++it) {
      std::string fname = it->get<std::string>();
      if (!file_ids.count(fname)) {
        file_ids[fname] = c.files_.size();
        c.files_.push_back(SafetensorsFile::open(dir + "/" + fname));
      }
      size_t fid = file_ids[fname];
      if (!c.files_[fid]->has(it.key()))
        throw file_error(c.files_[fid]->path(), "tensor '" + it.key() + "' is listed in " + index + " but missing from the shard");
      c.where_[it.key()] = fid;
    }
    return c;
  }
  std::ifstream probe(single);
  if (!probe) throw std::runtime_error(dir + ": no model.safetensors or model.safetensors.index.json");
  c.files_.push_back(SafetensorsFile::open(single));
  for (auto& n : c.files_[0]->names()) c.where_[n] = 0;
  return c;
}

SafetensorsCheckpoint SafetensorsCheckpoint::from_file(std::shared_ptr<SafetensorsFile> file, const std::string& dir) {
  SafetensorsCheckpoint c;
  c.dir_ = dir;
  c.files_.push_back(std::move(file));
  for (auto& n : c.files_[0]->names()) c.where_[n] = 0;
  return c;
}

void SafetensorsImageBuilder::declare(const std::string& name, const Shape& shape) {
  if (map_) throw std::logic_error("SafetensorsImageBuilder: declare after allocate");
  order_.emplace_back(name, shape);
}

void SafetensorsImageBuilder::allocate(const std::string& label) {
  json header = json::object();
  size_t off = 0;
  for (auto& [name, shape] : order_) {
    const size_t bytes = 4 * size_t(shape_numel(shape));
    header[name] = {{"dtype", "F32"}, {"shape", shape}, {"data_offsets", {off, off + bytes}}};
    offset_[name] = off;
    off += bytes;
  }
  std::string h = header.dump();
  h.append((8 - h.size() % 8) % 8, ' ');  // keep the data 8-byte aligned
  header_bytes_ = 8 + h.size();
  map_ = MappedFile::anonymous(header_bytes_ + off, label);
  const uint64_t hlen = h.size();
  std::memcpy(map_->writable_data(), &hlen, 8);
  std::memcpy(map_->writable_data() + 8, h.data(), h.size());
}

float* SafetensorsImageBuilder::data(const std::string& name) {
  auto it = offset_.find(name);
  if (!map_ || it == offset_.end()) throw std::logic_error("SafetensorsImageBuilder: no allocated tensor '" + name + "'");
  return reinterpret_cast<float*>(map_->writable_data() + header_bytes_ + it->second);
}

std::shared_ptr<SafetensorsFile> SafetensorsImageBuilder::finish() {
  if (!map_) throw std::logic_error("SafetensorsImageBuilder: finish before allocate");
  return SafetensorsFile::from_mapping(std::move(map_));
}

std::vector<std::string> SafetensorsCheckpoint::names() const {
  std::vector<std::string> out;
  for (auto& [k, v] : where_) out.push_back(k);
  return out;
}

const std::string& SafetensorsCheckpoint::file_of(const std::string& name) const {
  auto it = where_.find(name);
  if (it == where_.end()) throw std::runtime_error(dir_ + ": no tensor named '" + name + "'");
  return files_[it->second]->path();
}

const SafetensorsEntry& SafetensorsCheckpoint::entry(const std::string& name) const {
  auto it = where_.find(name);
  if (it == where_.end())
    throw std::runtime_error((files_.size() == 1 ? files_[0]->path() : dir_) + ": missing tensor '" + name + "'");
  return files_[it->second]->entry(name);
}

Tensor SafetensorsCheckpoint::load(const std::string& name, const Shape& shape, MemCategory cat) const {
  const SafetensorsEntry& e = entry(name);
  if (e.shape != shape)
    throw std::runtime_error(file_of(name) + ": tensor '" + name + "' has shape " + shape_str(e.shape) +
                             " but the config needs " + shape_str(shape));
  return files_[where_.at(name)]->tensor(name, cat);
}

Tensor SafetensorsCheckpoint::load_shard(const std::string& name, const ShardSpec& spec, MemCategory cat) const {
  const SafetensorsEntry& e = entry(name);
  if (e.shape != spec.full)
    throw std::runtime_error(file_of(name) + ": tensor '" + name + "' has shape " + shape_str(e.shape) +
                             " but the config needs " + shape_str(spec.full));
  return files_[where_.at(name)]->tensor_shard(name, spec, cat);
}

void write_safetensors(const std::string& path, const std::vector<std::pair<std::string, Tensor>>& tensors,
                       const std::map<std::string, std::string>& metadata) {
  json header = json::object();
  size_t off = 0;
  for (auto& [name, t] : tensors) {
    json e;
    e["dtype"] = st_dtype_name(t.dtype());
    e["shape"] = t.shape();
    e["data_offsets"] = {off, off + t.nbytes()};
    header[name] = e;
    off += t.nbytes();
  }
  if (!metadata.empty()) header["__metadata__"] = metadata;
  std::string h = header.dump();
  while ((h.size() + 8) % 8 != 0) h.push_back(' ');  // keep the data section 8-byte aligned
  const std::string tmp = path + ".tmp";
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    if (!out) throw file_error(tmp, "cannot create");
    uint64_t hlen = h.size();
    out.write(reinterpret_cast<const char*>(&hlen), 8);
    out.write(h.data(), std::streamsize(h.size()));
    for (auto& [name, t] : tensors) out.write(static_cast<const char*>(t.raw()), std::streamsize(t.nbytes()));
    if (!out) throw file_error(tmp, "write failed");
  }
  if (std::rename(tmp.c_str(), path.c_str()) != 0) throw file_error(path, "cannot rename from " + tmp);
}

}  // namespace ladder::core
