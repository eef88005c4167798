#include "parallel/nccl_communicator.h"

#include <stdexcept>
#include <string>

#include "core/cuda/cuda_device.h"
#include "core/cuda/cuda_nccl.h"

namespace ladder::parallel {

namespace {

ncclRedOp_t nccl_op(ReduceOp op) { return op == ReduceOp::average ? ncclAvg : ncclSum; }

// An all-reduce enqueued on the communicator's stream, finished when its event has fired.
struct NcclPending final : CommHandle::Pending {
  cudaEvent_t event = nullptr;
  ~NcclPending() override {
    if (event) (void)cudaEventDestroy(event);
  }
  void wait() override { LADDER_CUDA_CHECK(cudaEventSynchronize(event)); }
  bool test() override {
    cudaError_t e = cudaEventQuery(event);
    if (e == cudaErrorNotReady) return false;
    LADDER_CUDA_CHECK(e);
    return true;
  }
};

}  // namespace

NcclCommunicator::NcclCommunicator(std::unique_ptr<MpiCommunicator> bootstrap) : bootstrap_(std::move(bootstrap)) {
  if (!bootstrap_) throw std::invalid_argument("NcclCommunicator: null bootstrap communicator");
  device_ = core::cuda_current_device();
  ncclUniqueId id{};
  if (bootstrap_->rank() == 0) LADDER_NCCL_CHECK(ncclGetUniqueId(&id));
  bootstrap_->broadcast_bytes(&id, sizeof(id), 0);
  LADDER_CUDA_CHECK(cudaStreamCreate(&stream_));
  LADDER_NCCL_CHECK(ncclCommInitRank(&comm_, bootstrap_->size(), id, bootstrap_->rank()));
}

NcclCommunicator::~NcclCommunicator() {
  if (comm_) (void)ncclCommDestroy(comm_);
  if (stream_) (void)cudaStreamDestroy(stream_);
}

void NcclCommunicator::sync(const char* what) {
  cudaError_t e = cudaStreamSynchronize(stream_);
  if (e != cudaSuccess) core::cuda_check(e, what, __FILE__, __LINE__);
}

void NcclCommunicator::all_reduce_typed(void* data, size_t count, ncclDataType_t type, ReduceOp op, const char* what) {
  if (count == 0) return;
  LADDER_NCCL_CHECK(ncclAllReduce(data, data, count, type, nccl_op(op), comm_, stream_));
  sync(what);
}

void NcclCommunicator::all_reduce(float* data, size_t count, ReduceOp op) {
  all_reduce_typed(data, count, ncclFloat32, op, "ncclAllReduce(float)");
}

void NcclCommunicator::all_reduce(double* data, size_t count, ReduceOp op) {
  all_reduce_typed(data, count, ncclFloat64, op, "ncclAllReduce(double)");
}

void NcclCommunicator::all_reduce(int64_t* data, size_t count, ReduceOp op) {
  if (op != ReduceOp::sum)
    throw std::invalid_argument("all_reduce(int64): only sum is defined (an integer average would truncate)");
  all_reduce_typed(data, count, ncclInt64, op, "ncclAllReduce(int64)");
}

CommHandle NcclCommunicator::all_reduce_async(float* data, size_t count, ReduceOp op) {
  auto p = std::make_unique<NcclPending>();
  LADDER_CUDA_CHECK(cudaEventCreateWithFlags(&p->event, cudaEventDisableTiming));
  if (count) LADDER_NCCL_CHECK(ncclAllReduce(data, data, count, ncclFloat32, nccl_op(op), comm_, stream_));
  LADDER_CUDA_CHECK(cudaEventRecord(p->event, stream_));
  return CommHandle(std::move(p));
}

void NcclCommunicator::all_gather(const float* send, float* recv, size_t count) {
  if (count == 0) return;
  LADDER_NCCL_CHECK(ncclAllGather(send, recv, count, ncclFloat32, comm_, stream_));
  sync("ncclAllGather(float)");
}

void NcclCommunicator::reduce_scatter(const float* send, float* recv, size_t count, ReduceOp op) {
  if (count == 0) return;
  LADDER_NCCL_CHECK(ncclReduceScatter(send, recv, count, ncclFloat32, nccl_op(op), comm_, stream_));
  sync("ncclReduceScatter(float)");
}

void NcclCommunicator::broadcast(float* data, size_t count, int root) {
  if (count == 0) return;
  LADDER_NCCL_CHECK(ncclBroadcast(data, data, count, ncclFloat32, root, comm_, stream_));
  sync("ncclBroadcast(float)");
}

void NcclCommunicator::barrier() {
  // NCCL has no barrier; finishing our stream and an MPI barrier over the same ranks is one.
  sync("barrier");
  bootstrap_->barrier();
}

std::unique_ptr<Communicator> NcclCommunicator::split(int color, int key) {
  return std::make_unique<NcclCommunicator>(bootstrap_->split_mpi(color, key));
}

}  // namespace ladder::parallel
