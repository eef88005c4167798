#include "parallel/allreduce_benchmark.h"

#include <algorithm>
#include <chrono>
#include <functional>
#include <stdexcept>

#include "parallel/gradient_buckets.h"

namespace ladder::parallel {

double bus_bandwidth(double algbw, int n) { return n > 1 ? algbw * 2.0 * double(n - 1) / double(n) : 0.0; }

namespace {

// Mean ms per call of `body` over `iters` calls after `warmup`, taken as the slowest rank's.
double time_calls(MpiCommunicator& comm, int warmup, int iters, const std::function<void()>& body) {
  for (int i = 0; i < warmup; ++i) body();
  comm.barrier();
  const auto t0 = std::chrono::steady_clock::now();
  for (int i = 0; i < iters; ++i) body();
  double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count() / iters;
  mpi_check(MPI_Allreduce(MPI_IN_PLACE, &ms, 1, MPI_DOUBLE, MPI_MAX, comm.native()), "MPI_Allreduce(max time)", comm.rank());
  return ms;
}

AllReduceTiming timing(double ms, size_t bytes, int n) {
  AllReduceTiming t;
  t.ms = ms;
  t.algbw = ms > 0 ? double(bytes) / (ms * 1e-3) / 1e9 : 0;
  t.busbw = bus_bandwidth(t.algbw, n);
  return t;
}

}  // namespace

std::vector<AllReduceBenchRow> run_allreduce_benchmark(MpiCommunicator& comm, const AllReduceBenchOptions& opt) {
  if (opt.min_bytes < sizeof(float) || opt.max_bytes < opt.min_bytes || opt.iters < 1 || opt.warmup < 0)
    throw std::invalid_argument("all-reduce benchmark: need 4 <= min_bytes <= max_bytes, iters >= 1, warmup >= 0");
  const int n = comm.size();
  std::vector<float> buf(opt.max_bytes / sizeof(float));
  std::vector<AllReduceBenchRow> rows;
  for (size_t bytes = opt.min_bytes; bytes <= opt.max_bytes; bytes *= 2) {
    const size_t count = bytes / sizeof(float);
    AllReduceBenchRow row;
    row.bytes = count * sizeof(float);
    row.iters = int(std::clamp<size_t>(opt.max_bytes_per_size / std::max<size_t>(row.bytes, 1), 3, size_t(opt.iters)));

    // Correctness on the way: rank r contributes r+1 everywhere, so the sum is n(n+1)/2 exactly.
    std::fill(buf.begin(), buf.begin() + long(count), float(comm.rank() + 1));
    comm.all_reduce(buf.data(), count, ReduceOp::sum);
    const float expect = float(n * (n + 1) / 2);
    row.correct = std::all_of(buf.begin(), buf.begin() + long(count), [&](float x) { return x == expect; });

    // Repeated raw sums multiply the values by n per call; from 1/n that stays far below FLT_MAX for any
    // sweep here (speed does not depend on the values, but infinities would make the numbers suspect).
    std::fill(buf.begin(), buf.begin() + long(count), 1.0f / float(n));
    row.raw_mpi = timing(time_calls(comm, opt.warmup, row.iters, [&] {
                           mpi_check(MPI_Allreduce(MPI_IN_PLACE, buf.data(), int(count), MPI_FLOAT, MPI_SUM, comm.native()),
                                     "MPI_Allreduce", comm.rank());
                         }),
                         row.bytes, n);
    row.ours = timing(time_calls(comm, opt.warmup, row.iters, [&] { comm.all_reduce(buf.data(), count, ReduceOp::average); }),
                      row.bytes, n);

    // Bucketed: the buffer as layer-sized spans in reverse (backward) order, all marked ready, then finish().
    std::vector<GradSpan> spans;
    const size_t span = std::max<size_t>(opt.span_bytes / sizeof(float), 1);
    for (size_t end = count; end > 0;) {
      const size_t len = std::min(span, end);
      end -= len;
      spans.push_back({"span" + std::to_string(spans.size()), buf.data() + end, len});
    }
    GradientBuckets buckets(comm, spans, opt.bucket_bytes);
    row.bucketed = timing(time_calls(comm, opt.warmup, row.iters, [&] {
                            for (size_t i = 0; i < spans.size(); ++i) buckets.mark_ready(i);
                            buckets.finish();
                          }),
                          row.bytes, n);
    rows.push_back(row);
    if (bytes > opt.max_bytes / 2) break;  // no overflow past max_bytes
  }
  return rows;
}

}  // namespace ladder::parallel
