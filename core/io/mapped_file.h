#pragma once
// A read-only memory mapping of a whole file (or anonymous memory standing for one); tensors borrow from it
// and keep it alive.
#include <cstddef>
#include <memory>
#include <string>

namespace ladder::core {

class MappedFile {
 public:
  // Throws std::runtime_error naming the path (and errno text) if it cannot be opened or mapped.
  static std::shared_ptr<MappedFile> open(const std::string& path);
  // `size` zeroed bytes of anonymous memory, writable through writable_data() while it is being filled
  // (a file converted in memory, e.g. a GGUF model as safetensors); `label` stands for the path in messages.
  static std::shared_ptr<MappedFile> anonymous(size_t size, const std::string& label);
  unsigned char* writable_data() { return static_cast<unsigned char*>(data_); }
  ~MappedFile();
  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;

  const unsigned char* data() const { return static_cast<const unsigned char*>(data_); }
  size_t size() const { return size_; }
  const std::string& path() const { return path_; }

 private:
  MappedFile() = default;
  void* data_ = nullptr;
  size_t size_ = 0;
  std::string path_;
};

}  // namespace ladder::core
