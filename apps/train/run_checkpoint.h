#pragma once
// Rebuilding a run from one of its checkpoints (`ladder eval`, `ladder export`): find the checkpoint file,
// recover the run's config from it (with --section.key overrides), and split a command's argv into its own
// options and those overrides.
#include <boost/program_options.hpp>
#include <string>
#include <vector>

#include "apps/train/train_config.h"
#include "core/io/checkpoint.h"

namespace ladder::apps {

// CKPT may be a checkpoint file, a run's checkpoint folder (step-*.h5, best.h5, latest) or a run directory
// holding checkpoints/. In a folder, pick "latest" takes the newest complete checkpoint, "best" best.h5.
std::string resolve_checkpoint(const std::string& given, const std::string& pick);

// The run's effective config as stored in the checkpoint, with command-line overrides applied. The
// parameters come from the checkpoint, so LST's lst_init = fisher reads as magnitude (no Fisher pass).
// Throws naming both hashes and both model directories when model.dir's weights are not the checkpoint's.
TrainConfig config_from_checkpoint(const core::CheckpointData& ck, const std::string& path,
                                   const std::vector<std::string>& overrides);

// Splits argv into the command's own options and --section.key overrides (anything with a dot). An unknown
// option without a dot is an error naming the closest known option. help: --help was given.
std::vector<std::string> parse_with_overrides(const std::string& command, const std::vector<std::string>& args,
                                              const boost::program_options::options_description& desc,
                                              boost::program_options::variables_map& vm, bool& help);

}  // namespace ladder::apps
