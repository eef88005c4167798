#pragma once
// All-reduce bandwidth, measured the way nccl-tests reports it, for our MpiCommunicator next to a raw
// MPI_Allreduce on the same buffer (the baseline: our layer should cost nothing on top) and the bucketed
// gradient path (GradientBuckets over the buffer cut into layer-sized spans).
//
//   algbw = bytes / time            busbw = algbw * 2(n-1)/n
//
// busbw is the per-link traffic of a ring all-reduce, comparable across rank counts (nccl-tests'
// PERFORMANCE.md). Times are the mean over `iters` back-to-back calls after a barrier, the slowest rank's.
#include <cstddef>
#include <vector>

#include "parallel/mpi_communicator.h"

namespace ladder::parallel {

struct AllReduceBenchOptions {
  size_t min_bytes = size_t(4) << 10;
  size_t max_bytes = size_t(64) << 20;
  int warmup = 2;
  int iters = 20;                       // upper bound; large sizes use fewer (see max_bytes_per_size)
  size_t max_bytes_per_size = size_t(512) << 20;  // caps iters * bytes so a sweep stays within seconds
  size_t bucket_bytes = size_t(4) << 20;
  size_t span_bytes = size_t(256) << 10;  // the "layer" size for the bucketed path
};

struct AllReduceTiming {
  double ms = 0;      // mean per call
  double algbw = 0;   // GB/s (1e9 bytes)
  double busbw = 0;   // GB/s
};

struct AllReduceBenchRow {
  size_t bytes = 0;
  int iters = 0;
  AllReduceTiming raw_mpi, ours, bucketed;
  bool correct = false;  // our all_reduce produced the exact expected sum on this rank
};

// Collective over `comm`: sizes min_bytes, 2*min_bytes, ... up to max_bytes. Every rank gets the rows.
std::vector<AllReduceBenchRow> run_allreduce_benchmark(MpiCommunicator& comm, const AllReduceBenchOptions& opt);

// busbw from algbw for n ranks (0 ranks or 1 rank: 0, as nccl-tests reports).
double bus_bandwidth(double algbw, int n);

}  // namespace ladder::parallel
