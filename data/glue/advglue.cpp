#include "data/glue/advglue.h"

#include <fstream>
#include <nlohmann/json.hpp>
#include <stdexcept>

namespace ladder::data {

namespace {

struct AdvKey {
  const char* key;
  GlueTask task;
  const char* a;
  const char* b;  // nullptr: single sentence
};

const AdvKey kKeys[] = {
    {"sst2", GlueTask::sst2, "sentence", nullptr},     {"qqp", GlueTask::qqp, "question1", "question2"},
    {"mnli", GlueTask::mnli, "premise", "hypothesis"}, {"mnli-mm", GlueTask::mnli, "premise", "hypothesis"},
    {"qnli", GlueTask::qnli, "question", "sentence"},  {"rte", GlueTask::rte, "sentence1", "sentence2"},
};

const AdvKey& find_key(const std::string& key, const std::string& context) {
  std::string valid;
  for (const auto& k : kKeys) {
    if (key == k.key) return k;
    valid += (valid.empty() ? "" : ", ") + std::string(k.key);
  }
  throw std::runtime_error(context + "unknown AdvGLUE key '" + key + "'; valid keys: " + valid);
}

}  // namespace

GlueTask advglue_task(const std::string& key) { return find_key(key, "").task; }

std::vector<GlueExample> read_advglue(const std::string& path, const std::string& key) {
  const AdvKey& k = find_key(key, path + ": ");
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error(path + ": cannot open AdvGLUE file");
  nlohmann::json root;
  try {
    root = nlohmann::json::parse(in);
  } catch (const nlohmann::json::exception& e) {
    throw std::runtime_error(path + ": not valid JSON: " + e.what());
  }
  if (!root.is_object() || !root.contains(key) || !root[key].is_array())
    throw std::runtime_error(path + ": no list under key '" + key + "'");

  const int num_labels = glue_task_info(k.task).num_labels;
  std::vector<GlueExample> out;
  const auto& list = root[key];
  for (size_t i = 0; i < list.size(); ++i) {
    const std::string at = path + ": " + key + "[" + std::to_string(i) + "]: ";
    const auto& o = list[i];
    auto text = [&](const char* field) -> std::string {
      if (!o.is_object() || !o.contains(field) || !o[field].is_string())
        throw std::runtime_error(at + "missing string field '" + field + "'");
      return o[field].get<std::string>();
    };
    auto integer = [&](const char* field) -> int64_t {
      if (!o.is_object() || !o.contains(field) || !o[field].is_number_integer())
        throw std::runtime_error(at + "missing integer field '" + field + "'");
      return o[field].get<int64_t>();
    };
    GlueExample ex;
    ex.a = text(k.a);
    if (k.b) ex.b = text(k.b), ex.has_b = true;
    const int64_t label = integer("label");
    if (label < 0 || label >= num_labels)
      throw std::runtime_error(at + "label " + std::to_string(label) + " outside [0, " + std::to_string(num_labels) + ")");
    ex.label = static_cast<int>(label);
    ex.idx = integer("idx");
    out.push_back(std::move(ex));
  }
  return out;
}

}  // namespace ladder::data
