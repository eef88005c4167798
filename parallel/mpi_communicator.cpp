#include "parallel/mpi_communicator.h"

#include <climits>
#include <stdexcept>
#include <string>

namespace ladder::parallel {

void mpi_check(int err, const char* what, int rank) {
  if (err == MPI_SUCCESS) return;
  char text[MPI_MAX_ERROR_STRING];
  int len = 0;
  MPI_Error_string(err, text, &len);
  throw std::runtime_error(std::string("MPI error in ") + what + " on rank " + std::to_string(rank) + ": " +
                           std::string(text, size_t(len)));
}

namespace {

int checked_count(size_t count, const char* what) {
  if (count > size_t(INT_MAX))
    throw std::invalid_argument(std::string(what) + ": " + std::to_string(count) +
                                " elements exceed MPI's int count; split the buffer");
  return int(count);
}

template <class T>
void scale(T* data, size_t count, T factor) {
  for (size_t i = 0; i < count; ++i) data[i] *= factor;
}

// An MPI_Iallreduce in flight; an average is scaled once the sum has arrived.
struct MpiPending final : CommHandle::Pending {
  MPI_Request request = MPI_REQUEST_NULL;
  float* data = nullptr;
  size_t count = 0;
  float factor = 1.0f;
  int rank = 0;

  void wait() override {
    mpi_check(MPI_Wait(&request, MPI_STATUS_IGNORE), "MPI_Wait (all_reduce_async)", rank);
    if (factor != 1.0f) scale(data, count, factor);
  }
  bool test() override {
    int done = 0;
    mpi_check(MPI_Test(&request, &done, MPI_STATUS_IGNORE), "MPI_Test (all_reduce_async)", rank);
    return done != 0;
  }
};

}  // namespace

std::unique_ptr<MpiCommunicator> MpiCommunicator::world() {
  MPI_Comm dup = MPI_COMM_NULL;
  int rank = 0;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  // A duplicate keeps our error handler and our messages apart from anything else using MPI_COMM_WORLD.
  mpi_check(MPI_Comm_dup(MPI_COMM_WORLD, &dup), "MPI_Comm_dup(MPI_COMM_WORLD)", rank);
  return std::make_unique<MpiCommunicator>(dup);
}

MpiCommunicator::MpiCommunicator(MPI_Comm comm) : comm_(comm) {
  if (comm == MPI_COMM_NULL) throw std::invalid_argument("MpiCommunicator: MPI_COMM_NULL");
  MPI_Comm_set_errhandler(comm_, MPI_ERRORS_RETURN);
  MPI_Comm_rank(comm_, &rank_);
  MPI_Comm_size(comm_, &size_);
}

MpiCommunicator::~MpiCommunicator() {
  int fin = 0;
  MPI_Finalized(&fin);
  if (!fin && comm_ != MPI_COMM_NULL) MPI_Comm_free(&comm_);
}

void MpiCommunicator::all_reduce(float* data, size_t count, ReduceOp op) {
  mpi_check(MPI_Allreduce(MPI_IN_PLACE, data, checked_count(count, "all_reduce"), MPI_FLOAT, MPI_SUM, comm_),
            "MPI_Allreduce(float)", rank_);
  if (op == ReduceOp::average && size_ > 1) scale(data, count, 1.0f / float(size_));
}

void MpiCommunicator::all_reduce(double* data, size_t count, ReduceOp op) {
  mpi_check(MPI_Allreduce(MPI_IN_PLACE, data, checked_count(count, "all_reduce"), MPI_DOUBLE, MPI_SUM, comm_),
            "MPI_Allreduce(double)", rank_);
  if (op == ReduceOp::average && size_ > 1) scale(data, count, 1.0 / double(size_));
}

void MpiCommunicator::all_reduce(int64_t* data, size_t count, ReduceOp op) {
  if (op != ReduceOp::sum)
    throw std::invalid_argument("all_reduce(int64): only sum is defined (an integer average would truncate)");
  mpi_check(MPI_Allreduce(MPI_IN_PLACE, data, checked_count(count, "all_reduce"), MPI_INT64_T, MPI_SUM, comm_),
            "MPI_Allreduce(int64)", rank_);
}

CommHandle MpiCommunicator::all_reduce_async(float* data, size_t count, ReduceOp op) {
  auto p = std::make_unique<MpiPending>();
  p->data = data;
  p->count = count;
  p->factor = (op == ReduceOp::average && size_ > 1) ? 1.0f / float(size_) : 1.0f;
  p->rank = rank_;
  mpi_check(MPI_Iallreduce(MPI_IN_PLACE, data, checked_count(count, "all_reduce_async"), MPI_FLOAT, MPI_SUM, comm_,
                           &p->request),
            "MPI_Iallreduce(float)", rank_);
  return CommHandle(std::move(p));
}

void MpiCommunicator::all_gather(const float* send, float* recv, size_t count) {
  const int n = checked_count(count, "all_gather");
  mpi_check(MPI_Allgather(send, n, MPI_FLOAT, recv, n, MPI_FLOAT, comm_), "MPI_Allgather(float)", rank_);
}

void MpiCommunicator::reduce_scatter(const float* send, float* recv, size_t count, ReduceOp op) {
  checked_count(count * size_t(size_), "reduce_scatter");
  mpi_check(MPI_Reduce_scatter_block(send, recv, int(count), MPI_FLOAT, MPI_SUM, comm_),
            "MPI_Reduce_scatter_block(float)", rank_);
  if (op == ReduceOp::average && size_ > 1) scale(recv, count, 1.0f / float(size_));
}

void MpiCommunicator::broadcast(float* data, size_t count, int root) {
  mpi_check(MPI_Bcast(data, checked_count(count, "broadcast"), MPI_FLOAT, root, comm_), "MPI_Bcast(float)", rank_);
}

void MpiCommunicator::broadcast_bytes(void* data, size_t bytes, int root) {
  mpi_check(MPI_Bcast(data, checked_count(bytes, "broadcast_bytes"), MPI_BYTE, root, comm_), "MPI_Bcast(bytes)", rank_);
}

void MpiCommunicator::barrier() { mpi_check(MPI_Barrier(comm_), "MPI_Barrier", rank_); }

std::unique_ptr<MpiCommunicator> MpiCommunicator::split_mpi(int color, int key) {
  // MPI reserves negative colors (MPI_UNDEFINED); every rank must land in some group here.
  if (color < 0) throw std::invalid_argument("split: color " + std::to_string(color) + " on rank " + std::to_string(rank_) + " is negative");
  MPI_Comm out = MPI_COMM_NULL;
  mpi_check(MPI_Comm_split(comm_, color, key, &out), "MPI_Comm_split", rank_);
  return std::make_unique<MpiCommunicator>(out);
}

std::unique_ptr<Communicator> MpiCommunicator::split(int color, int key) { return split_mpi(color, key); }

}  // namespace ladder::parallel
