#include "apps/train/base_weights.h"

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <stdexcept>
#include <vector>

#include "data/activation_store/store_schema.h"

namespace ladder::apps {

namespace fs = std::filesystem;

std::string base_weights_hash(const std::string& model_dir) {
  if (fs::is_regular_file(model_dir)) return data::hash_files({model_dir});  // a GGUF file: the whole file
  std::vector<std::string> files;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(model_dir, ec))
    if (e.path().extension() == ".safetensors") files.push_back(e.path().string());
  if (ec) throw std::runtime_error("model.dir " + model_dir + ": cannot list it to hash the base weights: " + ec.message());
  if (files.empty()) throw std::runtime_error("model.dir " + model_dir + ": no *.safetensors weight files in it");
  std::sort(files.begin(), files.end());
  return data::hash_files(files);
}

void check_base_weights(const std::string& ckpt_path, const std::string& ckpt_hash, const std::string& ckpt_model_dir,
                        const std::string& model_dir, const std::string& dir_hash) {
  if (ckpt_hash.rfind("xxh64:", 0) != 0) {
    std::fprintf(stderr,
                 "ladder: warning: %s records no hash of its base weights (backbone_hash '%s', from an older ladder); "
                 "cannot check that %s holds the weights it was trained on\n",
                 ckpt_path.c_str(), ckpt_hash.c_str(), model_dir.c_str());
    return;
  }
  if (ckpt_hash == dir_hash) return;
  throw std::runtime_error(ckpt_path + ": trained on base weights " + ckpt_hash + " (model.dir " + ckpt_model_dir +
                           " then) but model.dir " + model_dir + " now holds weights " + dir_hash +
                           "; point --model.dir at the model it was trained on");
}

}  // namespace ladder::apps
