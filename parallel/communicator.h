#pragma once
// Communicator: the one interface every collective in ladder goes through, so that sharded layers and the
// data-parallel gradient sync read the same on CPU (MPI, host buffers) and GPU (NCCL, device buffers).
//
// Promises, for every implementation:
// - Collectives are called by every rank of the communicator, in the same order, with the same counts.
// - Buffers live where the backend computes: host memory for MpiCommunicator, device memory of the
//   current CUDA device for NcclCommunicator (see on_device()).
// - Reductions are in place. `average` is the sum divided by size() (float and double only; an integer
//   average would silently truncate, so it is an error).
// - Errors throw std::runtime_error naming the call and the rank; they never return a status.
#include <cstddef>
#include <cstdint>
#include <memory>

namespace ladder::parallel {

enum class ReduceOp { sum, average };

// A non-blocking collective in flight. wait() blocks until the result is in the caller's buffer (for an
// average: already divided); it is idempotent. Destroying a handle that was never waited waits first, so a
// buffer is never released under a running collective. Move-only.
class CommHandle {
 public:
  // What a backend supplies: finish the operation (wait) and poll it without blocking (test).
  struct Pending {
    virtual ~Pending() = default;
    virtual void wait() = 0;
    virtual bool test() = 0;  // true when complete; also drives MPI's progress engine
  };
  CommHandle() = default;
  explicit CommHandle(std::unique_ptr<Pending> p) : p_(std::move(p)) {}
  CommHandle(CommHandle&&) noexcept = default;
  CommHandle& operator=(CommHandle&& o) noexcept;
  ~CommHandle();

  void wait();
  // True when the operation has completed (or there is none); never blocks.
  bool test();
  bool active() const { return p_ != nullptr; }

 private:
  std::unique_ptr<Pending> p_;
};

class Communicator {
 public:
  virtual ~Communicator() = default;

  virtual int rank() const = 0;
  virtual int size() const = 0;
  // "mpi" or "nccl".
  virtual const char* backend() const = 0;
  virtual bool on_device() const = 0;

  // In-place all-reduce of `count` elements.
  virtual void all_reduce(float* data, size_t count, ReduceOp op) = 0;
  virtual void all_reduce(double* data, size_t count, ReduceOp op) = 0;
  virtual void all_reduce(int64_t* data, size_t count, ReduceOp op) = 0;  // sum only
  // Starts an in-place float all-reduce and returns at once; `data` must stay untouched until wait().
  virtual CommHandle all_reduce_async(float* data, size_t count, ReduceOp op) = 0;

  // recv[r*count .. (r+1)*count) = rank r's send[0..count). recv holds size()*count floats.
  virtual void all_gather(const float* send, float* recv, size_t count) = 0;
  // send holds size()*count floats; recv[0..count) = reduction over ranks of send[rank()*count ..).
  virtual void reduce_scatter(const float* send, float* recv, size_t count, ReduceOp op) = 0;
  // Every rank's data becomes root's.
  virtual void broadcast(float* data, size_t count, int root) = 0;
  virtual void barrier() = 0;

  // Ranks that pass the same color form a new communicator, ordered by key (ties by rank in this one).
  // Collective over this communicator. The result is independent of this one (it may outlive it).
  virtual std::unique_ptr<Communicator> split(int color, int key) = 0;
};

}  // namespace ladder::parallel
