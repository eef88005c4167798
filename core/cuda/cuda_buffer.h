#pragma once
// CudaBuffer<T>: an owning device allocation tagged with a memory category and counted in the
// MemoryTracker (slot 1 + device), plus synchronous host <-> device copies.
#include <cuda_runtime_api.h>

#include <cstddef>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "core/cuda/cuda_device.h"
#include "core/tensor/memory.h"

namespace ladder::core {

template <class T>
class CudaBuffer {
 public:
  CudaBuffer() = default;
  // Allocates n elements on the current device (uninitialised). n = 0 holds nothing.
  CudaBuffer(size_t n, MemCategory category) : category_(category) {
    if (n == 0) return;
    device_ = cuda_current_device();
    if (device_ + 1 >= kMaxDevices)
      throw std::runtime_error("CudaBuffer: device " + std::to_string(device_) + " exceeds the memory tracker's slots");
    void* p = nullptr;
    cudaError_t err = cudaMalloc(&p, n * sizeof(T));
    if (err != cudaSuccess) {
      (void)cudaGetLastError();
      throw std::runtime_error("CudaBuffer: cudaMalloc of " + format_bytes(n * sizeof(T)) + " (" +
                               mem_category_name(category) + ") on cuda:" + std::to_string(device_) +
                               " failed: " + cudaGetErrorString(err));
    }
    data_ = static_cast<T*>(p);
    size_ = n;
    MemoryTracker::instance().add(1 + device_, category_, bytes());
  }
  // Allocates and uploads a host vector.
  CudaBuffer(const std::vector<T>& host, MemCategory category) : CudaBuffer(host.size(), category) {
    copy_from_host(host.data(), host.size());
  }
  ~CudaBuffer() { release(); }

  CudaBuffer(const CudaBuffer&) = delete;
  CudaBuffer& operator=(const CudaBuffer&) = delete;
  CudaBuffer(CudaBuffer&& o) noexcept { swap(o); }
  CudaBuffer& operator=(CudaBuffer&& o) noexcept {
    if (this != &o) {
      release();
      swap(o);
    }
    return *this;
  }

  T* data() { return data_; }
  const T* data() const { return data_; }
  size_t size() const { return size_; }
  size_t bytes() const { return size_ * sizeof(T); }
  int device() const { return device_; }
  MemCategory category() const { return category_; }

  // Synchronous copies of the first n elements (n <= size()).
  void copy_from_host(const T* host, size_t n) {
    check_count(n, "copy_from_host");
    if (n) LADDER_CUDA_CHECK(cudaMemcpy(data_, host, n * sizeof(T), cudaMemcpyHostToDevice));
  }
  void copy_to_host(T* host, size_t n) const {
    check_count(n, "copy_to_host");
    if (n) LADDER_CUDA_CHECK(cudaMemcpy(host, data_, n * sizeof(T), cudaMemcpyDeviceToHost));
  }
  std::vector<T> to_host() const {
    std::vector<T> out(size_);
    copy_to_host(out.data(), size_);
    return out;
  }
  // Sets every byte to zero.
  void zero() {
    if (size_) LADDER_CUDA_CHECK(cudaMemset(data_, 0, bytes()));
  }

 private:
  void check_count(size_t n, const char* what) const {
    if (n > size_)
      throw std::runtime_error(std::string("CudaBuffer::") + what + ": " + std::to_string(n) +
                               " elements requested, buffer holds " + std::to_string(size_));
  }
  void release() noexcept {
    if (!data_) return;
    // cudaFree runs on whatever device is current; it frees by pointer, so no device switch is needed.
    (void)cudaFree(data_);
    MemoryTracker::instance().sub(1 + device_, category_, bytes());
    data_ = nullptr;
    size_ = 0;
  }
  void swap(CudaBuffer& o) noexcept {
    std::swap(data_, o.data_);
    std::swap(size_, o.size_);
    std::swap(device_, o.device_);
    std::swap(category_, o.category_);
  }

  T* data_ = nullptr;
  size_t size_ = 0;
  int device_ = 0;
  MemCategory category_ = MemCategory::workspace;
};

}  // namespace ladder::core
