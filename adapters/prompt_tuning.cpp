#include "adapters/prompt_tuning.h"

#include <random>
#include <stdexcept>

#include "core/modules/tensor_parallel_regions.h"

namespace ladder::adapters {

namespace {

class PromptMethod : public Method {
 public:
  PromptMethod(core::Backbone& b, const MethodConfig& opt) : P_(opt.integer("prompt_tokens")) {
    if (P_ <= 0) throw std::invalid_argument("prompt: method.prompt_tokens must be positive");
    const int C = b.config().hidden, V = b.config().vocab_size;
    const core::Parameter& vocab = b.token_embeddings();
    std::vector<float> rows(size_t(P_) * C);
    std::mt19937_64 g(opt.seed ^ 0x9e0417ull);
    // Under tensor parallelism each rank holds some vocabulary rows: read the whole table (once, at start-up).
    const auto table = core::gather_from_region(vocab.value, vocab.shard, b.tensor_parallel(), core::MemCategory::workspace).to_floats();
    for (int p = 0; p < P_; ++p) {
      const size_t id = size_t(g() % uint64_t(V));
      std::copy(table.begin() + long(id * C), table.begin() + long((id + 1) * C), rows.begin() + long(size_t(p) * C));
    }
    auto& prm = b.params().add("prompt_embeddings.weight",
                               core::Tensor::from_floats(rows, {P_, C}, core::MemCategory::trainable_weights));
    prm.trainable = true;
    b.set_prompt_embeddings(&prm);
  }
  std::string name() const override { return "prompt"; }
  int prompt_tokens() const override { return P_; }

 private:
  int P_;
};

}  // namespace

MethodInfo prompt_method_info() {
  MethodInfo m;
  m.name = "prompt";
  m.summary = "prompt tuning: trainable soft tokens before the text";
  m.options = {{"prompt_tokens", OptionType::integer, 20, "prompt tuning: soft tokens", nullptr}};
  m.make = [](core::Backbone& b, const MethodConfig& o) { return std::make_unique<PromptMethod>(b, o); };
  return m;
}

}  // namespace ladder::adapters
