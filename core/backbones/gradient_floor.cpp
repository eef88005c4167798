#include "core/backbones/gradient_floor.h"

#include <algorithm>

namespace ladder::core {

int gradient_floor(const ParameterRegistry& params, const std::string& layer_prefix,
                   const std::vector<std::string>& embedding_prefixes, int layers) {
  int floor = layers;
  for (const auto& p : params.all()) {
    if (!p->trainable) continue;
    const std::string& n = p->name;
    for (const auto& e : embedding_prefixes)
      if (n.compare(0, e.size(), e) == 0) return -1;
    if (n.compare(0, layer_prefix.size(), layer_prefix) == 0) {
      const int k = std::stoi(n.substr(layer_prefix.size()));
      floor = std::min(floor, k);
    }
  }
  return floor;
}

}  // namespace ladder::core
