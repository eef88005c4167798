#pragma once
// The base model's identity by content: the XXH64 of its weight files (every *.safetensors in the model
// directory, by name, memory-mapped; data::hash_files; a GGUF file's whole bytes), the same hash activation stores carry as their
// backbone_hash. Checkpoints record it as backbone_hash; resume, `ladder eval` and `ladder export` refuse a
// model directory whose weights are not the ones the checkpoint was trained on.
#include <string>

namespace ladder::apps {

// "xxh64:<16 hex digits>". Throws naming the directory when it holds no *.safetensors.
std::string base_weights_hash(const std::string& model_dir);

// Throws, naming the checkpoint, both model directories and both hashes, when `ckpt_hash` is a content hash
// that differs from `dir_hash` (the hash of `model_dir`'s weights). A checkpoint from before content hashes
// (its backbone_hash is the model type, e.g. "bert") cannot be checked: a warning on stderr says so, and it
// is accepted.
void check_base_weights(const std::string& ckpt_path, const std::string& ckpt_hash, const std::string& ckpt_model_dir,
                        const std::string& model_dir, const std::string& dir_hash);

}  // namespace ladder::apps
