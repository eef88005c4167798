#pragma once
// Training checkpoints in HDF5, readable by h5py and h5dump without ladder:
//
//   /                 attrs: format="ladder-checkpoint", version=1, step, epoch, samples_seen, config (the full
//                     effective INI text), method, layout="dp=D,tp=T" plus dp and tp integers, backbone_id,
//                     backbone_hash, optimizer_kind (core::Optimizer::kind(); absent in files written before
//                     it was recorded, which read as "adamw"), and any extra string attributes (best_metric, ...)
//   /params/<name>    trainable parameters by their Hugging Face dotted names, full (unsharded) shapes, float32
//   /optimizer/<param>/<state>   optimizer state (exp_avg, exp_avg_sq, or 8-bit blocks + scales), each in the
//                     dtype the optimizer holds it in (the dataset's HDF5 type)
//   /rng/<name>       opaque generator states, uint8
//   /sampler/<name>   sampler positions and permutations, int64
//   /recipe/<name>    the training recipe's own state (apps/train/recipe.h extra_state), int64
//   /metrics/<name>   1-D float64 series over steps: the training curve
//
// A file is written under NAME.tmp and renamed into place once complete (and fsynced), so a killed writer
// never leaves a half file under a checkpoint name. CheckpointDirectory adds rotation, best tracking and a
// `latest` pointer on top.
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "core/tensor/tensor.h"

namespace ladder::core {

inline constexpr const char* kCheckpointFormat = "ladder-checkpoint";
inline constexpr int64_t kCheckpointVersion = 1;

struct CheckpointData {
  // root attributes
  int64_t step = 0, epoch = 0, samples_seen = 0;
  std::string config;  // the full effective config text (INI)
  std::string method;  // e.g. "lora+bitfit"
  int dp = 1, tp = 1;  // layout it was written from
  std::string backbone_id, backbone_hash;
  // /params/<name>: full f32 tensors under their dotted names ("encoder.layer.0.attention.self.query.lora_A").
  std::vector<std::pair<std::string, Tensor>> params;
  // The optimizer that wrote `optimizer` (make_optimizer's kind); "adamw" for files that predate the attribute.
  std::string optimizer_kind = "adamw";
  // /optimizer/<param>/<state>, named "<param>/<state>" (e.g. "...query.lora_A/exp_avg"). f32, or i8/f16/bf16
  // for quantized states, read back in the dtype written. Grouped by parameter, in the order parameters first
  // appeared.
  std::vector<std::pair<std::string, Tensor>> optimizer;
  std::map<std::string, std::vector<uint8_t>> rng;       // /rng/<name> opaque bytes
  std::map<std::string, std::vector<int64_t>> sampler;   // /sampler/<name>
  std::map<std::string, std::vector<int64_t>> recipe_state;  // /recipe/<name>
  std::map<std::string, std::vector<double>> metrics;    // /metrics/<name> 1-D series (loss, lr, eval_accuracy...)
  std::map<std::string, std::string> extra_attrs;        // more root attributes (e.g. best_metric)
};

// Writes `path` atomically: NAME.tmp, fsync, rename. Parameters that are not f32 are converted to f32.
// Throws (naming the file and the object) on invalid names, an empty optimizer kind, unsupported dtypes and
// I/O errors.
void write_checkpoint(const std::string& path, const CheckpointData& data);
// Reads a whole checkpoint. Errors name the file and the object: a missing file, a file that is not HDF5
// (or is truncated), a missing or wrong format attribute, an unsupported version, a missing dataset.
CheckpointData read_checkpoint(const std::string& path);
// Cheap check used to skip damaged files: opens `path` and reads only the format and version attributes.
// Returns "" when it is a readable ladder checkpoint, else the reason (naming the file).
std::string checkpoint_problem(const std::string& path);

// A run's checkpoint folder:
//   <dir>/step-00000100.h5   one file per save (8+ digits)
//   <dir>/best.h5            hard link to (or, where links fail, a copy of) the best checkpoint by a metric
//   <dir>/latest             one line: the file name of the newest complete checkpoint (written tmp + rename)
// Keeps the newest `keep_last` step files plus the best one. One writer per folder (rank 0).
class CheckpointDirectory {
 public:
  enum class Better { higher, lower };
  // Creates `dir` if needed and picks up the best so far from an existing best.h5 (a resumed run).
  explicit CheckpointDirectory(std::string dir, int keep_last = 3, Better better = Better::higher);

  // Writes step-<data.step>.h5, updates best.h5 when `metric` beats the best so far (the metric is stored in
  // the file as the attribute "selection_metric"), rewrites `latest`, then deletes step files beyond the
  // newest keep_last (never the best) and stale *.tmp files. Returns the checkpoint's path.
  std::string save(const CheckpointData& data, std::optional<double> metric = std::nullopt);
  // The newest complete, readable checkpoint: the file `latest` names, else the step files newest first.
  // *.tmp files are never considered; a file that fails to open as HDF5 or lacks the format attribute is
  // skipped with a warning on stderr, and its reason (naming the file) appended to `unreadable` when given,
  // as is a `latest` pointer naming a missing file. nullopt when there is none: with `unreadable` empty, the
  // folder holds no checkpoint at all.
  std::optional<std::string> latest(std::vector<std::string>* unreadable = nullptr) const;
  // <dir>/best.h5 when a best has been recorded.
  std::optional<std::string> best() const;
  std::optional<double> best_metric() const { return best_metric_; }
  // Step files present (complete names only, no *.tmp), oldest first. Not validated.
  std::vector<std::string> list() const;

  const std::string& dir() const { return dir_; }
  static std::string file_name(int64_t step);  // "step-00000100.h5"

 private:
  bool beats(double metric) const;
  std::string dir_;
  int keep_last_;
  Better better_;
  std::optional<double> best_metric_;
  std::optional<int64_t> best_step_;
};

}  // namespace ladder::core
