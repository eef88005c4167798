// `ladder bench-comm`: all-reduce bandwidth of our MPI communicator, of the bucketed gradient path and of
// a raw MPI_Allreduce on the same buffer, for buffers from 4 KiB to 64 MiB, as algorithm and bus bandwidth
// (nccl-tests' definitions). Run it under mpirun; a single process measures a 1-rank "all-reduce".
#include <cstdio>
#include <stdexcept>

#include "apps/commands.h"
#include "apps/options.h"
#include "apps/report.h"
#include "core/kernels/threading.h"
#include "core/tensor/memory.h"
#include "parallel/allreduce_benchmark.h"
#include "parallel/mpi_runtime.h"

namespace ladder::apps {

int bench_comm_command(const std::vector<std::string>& args) {
  std::string report_path;
  int threads = 0;
  parallel::AllReduceBenchOptions opt;
  po::options_description desc("ladder bench-comm (run under mpirun -np N)");
  desc.add_options()("min-bytes", po::value<size_t>(&opt.min_bytes)->default_value(opt.min_bytes), "smallest buffer (bytes)")(
      "max-bytes", po::value<size_t>(&opt.max_bytes)->default_value(opt.max_bytes), "largest buffer (bytes); sizes double from min")(
      "iters", po::value<int>(&opt.iters)->default_value(opt.iters), "timed calls per size (fewer for large sizes, at least 3)")(
      "warmup", po::value<int>(&opt.warmup)->default_value(opt.warmup), "untimed calls per size first")(
      "bucket-bytes", po::value<size_t>(&opt.bucket_bytes)->default_value(opt.bucket_bytes), "gradient bucket size of the bucketed path")(
      "span-bytes", po::value<size_t>(&opt.span_bytes)->default_value(opt.span_bytes), "per-\"layer\" gradient size of the bucketed path");
  add_common_options(desc, threads, report_path);
  po::variables_map vm;
  if (!parse_options("bench-comm", args, desc, vm)) return 0;

  parallel::MpiRuntime mpi;
  // From here on a failure on any rank must end the job (a peer may be inside a collective).
  return parallel::run_or_abort([&] {
    RunReport report("bench-comm", args);
    report.set_config(effective_options(vm));
    core::set_num_threads(threads);
    auto world = parallel::MpiCommunicator::world();
    const int n = world->size();
    const bool root = world->rank() == 0;
    if (root) std::printf("ladder bench-comm: %d ranks, MPI all-reduce of f32 buffers (GB/s = 1e9 bytes/s; busbw = algbw * 2(n-1)/n)\n\n", n);

    auto rows = parallel::run_allreduce_benchmark(*world, opt);

    bool all_correct = true;
    for (const auto& r : rows) all_correct = all_correct && r.correct;
    int64_t ok = all_correct ? 1 : 0;
    world->all_reduce(&ok, 1, parallel::ReduceOp::sum);  // every rank's check counts
    if (root) {
      std::printf("%10s %6s | %9s %8s %8s | %9s %8s %8s | %9s %8s %8s\n", "bytes", "iters", "mpi ms", "algbw", "busbw",
                  "ours ms", "algbw", "busbw", "bucket ms", "algbw", "busbw");
      for (const auto& r : rows)
        std::printf("%10s %6d | %9.3f %8.3f %8.3f | %9.3f %8.3f %8.3f | %9.3f %8.3f %8.3f\n", core::format_bytes(r.bytes).c_str(),
                    r.iters, r.raw_mpi.ms, r.raw_mpi.algbw, r.raw_mpi.busbw, r.ours.ms, r.ours.algbw, r.ours.busbw, r.bucketed.ms,
                    r.bucketed.algbw, r.bucketed.busbw);
      std::printf("\nresults checked on every rank: %s\n", ok == n ? "exact" : "WRONG");
    }
    if (ok != n) throw std::runtime_error("an all-reduce produced a wrong sum (see the table)");

    if (root) {
      auto& rows_json = report.metrics()["allreduce"] = nlohmann::json::array();
      auto tj = [](const parallel::AllReduceTiming& t) { return nlohmann::json{{"ms", t.ms}, {"algbw_gbps", t.algbw}, {"busbw_gbps", t.busbw}}; };
      for (const auto& r : rows)
        rows_json.push_back({{"bytes", r.bytes}, {"iters", r.iters}, {"raw_mpi", tj(r.raw_mpi)}, {"ours", tj(r.ours)}, {"bucketed", tj(r.bucketed)}});
      report.metrics()["ranks"] = n;
      report.metrics()["bucket_bytes"] = opt.bucket_bytes;
      report.write(report_path);
    }
    return 0;
  });
}

}  // namespace ladder::apps
