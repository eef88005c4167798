#include "adapters/lst/lst_method.h"

namespace ladder::adapters {

MethodInfo lst_method_info() {
  const LstOptions d;
  MethodInfo m;
  m.name = "lst";
  m.summary = "Ladder Side-Tuning: a small side network on the frozen backbone's layer outputs";
  m.options = {
      {"lst_reduction", OptionType::integer, d.reduction, "LST: side width = hidden / reduction (heads unchanged)", positive()},
      {"lst_layers", OptionType::list, std::vector<std::string>{},
       "LST: backbone layers with a side block and a ladder, e.g. 1,2,4,5 (empty = all)",
       [](const OptionValue& v) -> std::string {
         for (const auto& w : std::get<std::vector<std::string>>(v))
           if (w.empty() || w.find_first_not_of("0123456789") != std::string::npos) return "'" + w + "' is not a layer index";
         return "";
       }},
      {"lst_gate_T", OptionType::real, d.gate_T, "LST: gate temperature, g = sigmoid(alpha / T)", positive()},
      {"lst_init", OptionType::text, d.init,
       "LST: side blocks from the backbone pruned by weight magnitude or by Fisher importance (fisher), or random",
       one_of({"magnitude", "fisher", "random"})},
      {"lst_recompute", OptionType::text, d.recompute,
       "LST: what backward recomputes instead of keeping: blocks (least memory, one more side forward per step), softmax "
       "(only the attention probabilities), none (fastest, most memory), or auto (blocks online, softmax from an activation store)",
       one_of({"auto", "blocks", "softmax", "none"})},
      {"lst_fisher_samples", OptionType::integer, d.fisher_samples,
       "LST, lst_init = fisher: training examples whose squared gradients are summed (one at a time)", positive()}};
  m.conflicts = {"*"};
  m.conflict_reason = "lst (Ladder Side-Tuning) replaces the backbone's training and combines with no other method";
  m.recipe = "lst";
  m.merge_note = "an LST side network is a second model beside the backbone and cannot be folded into its weights";
  return m;
}

LstOptions lst_options(const MethodConfig& o) {
  LstOptions l;
  l.reduction = o.integer("lst_reduction");
  for (const auto& w : o.list("lst_layers")) l.layers.push_back(std::stoi(w));
  l.gate_T = o.real("lst_gate_T");
  l.init = o.text("lst_init");
  l.fisher_samples = o.integer("lst_fisher_samples");
  l.recompute = o.text("lst_recompute");
  l.seed = o.seed;
  return l;
}

}  // namespace ladder::adapters
