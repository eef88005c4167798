// `ladder cache --config run.ini [--section.key value ...]`: runs the frozen backbone once over the task's
// train and dev splits and writes the activation stores <cache.dir>/train.h5 and dev.h5 (the hidden states
// the run's LST side network taps, or every layer), which `ladder train --cache.use true` then trains from
// without the backbone. Same config keys as `ladder train`; under mpirun every rank writes its rows into
// the same files.
#include <algorithm>
#include <cstdio>

#include "apps/commands.h"
#include "apps/report.h"
#include "apps/train/activation_cache.h"
#include "apps/train/data_parallel.h"
#include "apps/train/train_config.h"
#include "core/kernels/threading.h"
#include "core/tensor/memory.h"

#include <stdexcept>
#include <string>

namespace ladder::apps {

int cache_command(const std::vector<std::string>& args) {
  TrainConfig cfg;
  if (!parse_train_config(args, cfg, nullptr, "cache")) return 0;
  // The stores hold backbone activations only: the side network's initialisation does not matter here.
  if (cfg.method_config.text("lst_init") == "fisher") cfg.method_config.set("lst_init", std::string("magnitude"));
  cfg.cache_use = false;  // a config that trains from the store also writes it: the backbone runs here
  DataParallel dp(cfg.tp);
  return dp.run([&] {
    // The store holds replicated hidden states, written row-parallel by every rank: a tensor-parallel group
    // would need its ranks to split rows and layers differently. Refuse instead of writing it wrongly.
    if (dp.tp() > 1)
      throw std::runtime_error("ladder cache runs data-parallel only (parallel.tp = " + std::to_string(dp.tp()) +
                               "); run it with parallel.tp = 1 — the store it writes serves any tp at training time");
    RunReport report("cache", args);
    if (cfg.threads > 0) core::set_num_threads(cfg.threads);
    RunModel rm = build_run_model(cfg);
    data::GlueSplit train, dev;
    load_glue_splits(cfg, rm, true, train, dev);
    const auto taps = cache_taps(rm);
    if (dp.lead())
      std::printf("ladder cache: %s on %s, %zu train / %zu dev rows, max length %d, %zu hidden states (%s) per row into %s\n",
                  cfg.model_dir.c_str(), cfg.task.c_str(), train.size(), dev.size(), cfg.max_length, taps.size(),
                  cfg.cache_dtype.c_str(), cfg.cache_dir.c_str());
    for (const auto& [split, rows] : {std::pair<std::string, const data::GlueSplit*>{"train", &train}, {"dev", &dev}}) {
      const CacheStats s = write_split_store(cfg, rm, *rows, split, dp.world(), dp.lead());
      if (dp.lead())
        std::printf("%s: %zu rows in %.1f s (%.0f rows/s), %s on disk: %s\n", split.c_str(), s.rows, s.seconds,
                    double(s.rows) / std::max(1e-9, s.seconds), core::format_bytes(s.bytes).c_str(), store_path(cfg, split).c_str());
      report.metrics()[split] = {{"rows", s.rows}, {"seconds", s.seconds}, {"bytes", s.bytes}, {"path", store_path(cfg, split)}};
    }
    if (dp.lead()) {
      std::printf("\n%s", core::memory_table().c_str());
      // The default report path is the training run's; a cache run writes beside its stores instead.
      report.write(cfg.report == cfg.out_dir + "/report.json" ? cfg.cache_dir + "/report.json" : cfg.report);
    }
    return 0;
  });
}

}  // namespace ladder::apps
