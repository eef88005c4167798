// `ladder train --config run.ini [--section.key value ...]`: fine-tune a backbone on a GLUE task.
#include "apps/commands.h"
#include "apps/train/train_config.h"
#include "apps/train/trainer.h"

namespace ladder::apps {

int train_command(const std::vector<std::string>& args) {
  TrainConfig cfg;
  if (!parse_train_config(args, cfg)) return 0;
  return run_training(cfg, args);
}

}  // namespace ladder::apps
