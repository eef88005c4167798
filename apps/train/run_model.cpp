#include "apps/train/run_model.h"

#include <algorithm>
#include <set>
#include <cstdio>
#include <stdexcept>

#include "adapters/lst/lst_method.h"
#include "adapters/method_registry.h"
#include "apps/train/fisher_init.h"
#include "data/glue/metrics.h"
#include "data/padded_batch.h"

namespace ladder::apps {

namespace {

// The frozen Linear weights (the ones a WeightView multiplies by) in `dtype`; embeddings, norms and
// anything trainable stay as they are.
void hold_frozen_linears(core::Backbone& backbone, core::DType dtype) {
  if (dtype == core::DType::f32) return;
  std::set<const core::Parameter*> weights;
  for (auto& [name, lin] : backbone.linear_modules()) weights.insert(lin->weight);
  backbone.params().store_frozen_as(dtype, [&](const core::Parameter& p) { return weights.count(&p) > 0; });
}

}  // namespace

RunModel build_run_model(const TrainConfig& cfg, core::TensorParallelGroup* tp) {
  RunModel m;
  const bool lm = cfg.task == "lm";
  if (!lm) m.task = data::parse_glue_task(cfg.task);
  // From an activation store the backbone never runs: its weights only seed the side network's pruned
  // initialisation, which reads them one tensor at a time, so it holds none of them (Fisher importances
  // need it to run, so that init maps them as usual; the trainer releases them afterwards).
  const bool side_tuning = adapters::method_recipe(cfg.method) == "lst";
  const adapters::LstOptions lst = adapters::lst_options(cfg.method_config);
  const bool deferred = cfg.cache_use && side_tuning && lst.init != "fisher";
  m.backbone = core::load_backbone(cfg.model_dir, tp, deferred ? core::WeightValues::deferred : core::WeightValues::mapped);
  const auto& mc = m.backbone->config();
  if (cfg.max_length > mc.max_positions)
    throw std::runtime_error("task.max_length " + std::to_string(cfg.max_length) + " exceeds the model's " +
                             std::to_string(mc.max_positions) + " positions");
  if (lm && !m.backbone->has_lm_head())
    throw std::runtime_error("task.name lm needs a decoder with a language-model head; " + m.backbone->name() + " has none");
  if (!lm)
    m.head = std::make_unique<adapters::SequenceClassificationHead>(*m.backbone, data::glue_task_info(m.task).num_labels, cfg.seed);
  if (side_tuning) {
    // Fisher importances come from the task loss through the head, so the head exists first.
    const adapters::ImportanceMap importance = lst.init == "fisher" ? lst_fisher_importance(cfg, m) : adapters::ImportanceMap{};
    m.side = std::make_unique<adapters::LstSideNetwork>(*m.backbone, lst, importance);
    // From a store the step is all side network, where recomputing whole blocks costs most: keep them, and
    // recompute only the attention probabilities, half of what they would keep (docs/LST.md).
    if (cfg.cache_use && lst.recompute == "auto") m.side->set_recompute(adapters::LstRecompute::softmax);
    m.tap_dtype = core::parse_dtype(cfg.cache_dtype);
  } else
    m.methods = adapters::apply_methods(*m.backbone, cfg.method, cfg.method_config);
  hold_frozen_linears(*m.backbone, core::parse_dtype(cfg.frozen_dtype));
  m.backbone->params().allocate_gradients();
  m.pad_to = cfg.pad_to_max_length ? cfg.max_length : 0;
  return m;
}

const core::Tensor& model_forward(RunModel& m, const core::TokenBatch& b, const core::StepOptions& opt) {
  if (!m.side) {
    core::StepOptions o = opt;
    o.first_token_only = m.head->reads_first_token_only();
    m.backbone->forward(b, o);
    return m.head->forward(b, o);
  }
  // The frozen backbone runs as in inference (no dropout, nothing saved): its taps are then a pure
  // function of the input, which is also what an activation store holds.
  core::StepOptions bo;
  bo.keep_hidden_states = true;
  bo.samples = opt.samples;
  const std::vector<int> tap_ids = m.side->taps();
  // The backbone saves nothing for backward, so it runs a few sequences at a time: its workspace (Q/K/V,
  // attention probabilities, FFN activations, every layer's output) then scales with the chunk, not the
  // batch. Only the taps, the side network's inputs, are kept for the whole batch, rounded to the store's
  // precision as `ladder cache` would write them.
  const int chunk = std::max(1, m.lst_chunk_rows / std::max(1, b.T));
  const int C = m.backbone->config().hidden;
  if (m.taps.size() < tap_ids.size()) m.taps.resize(tap_ids.size());
  for (size_t j = 0; j < tap_ids.size(); ++j)
    core::Tensor::ensure(m.taps[j], {b.rows(), C}, m.tap_dtype,
                         opt.save_for_backward ? core::MemCategory::activations : core::MemCategory::workspace);
  const size_t elem = core::dtype_bytes(m.tap_dtype, 1);
  for (int b0 = 0; b0 < b.B; b0 += chunk) {
    const int nb = std::min(chunk, b.B - b0);
    const size_t off = size_t(b0) * b.T;
    core::TokenBatch sub{nb, b.T, b.input_ids + off, b.token_type_ids ? b.token_type_ids + off : nullptr,
                         b.attention_mask ? b.attention_mask + off : nullptr};
    core::StepOptions so = bo;
    so.samples = opt.samples.ids ? core::SampleKeys{opt.samples.ids + b0, 0} : core::SampleKeys{nullptr, opt.samples.first + b0};
    m.backbone->forward(sub, so);
    for (size_t j = 0; j < tap_ids.size(); ++j)
      core::convert_from_f32(m.tap_dtype, m.backbone->hidden_state(tap_ids[j]).data<float>(),
                             static_cast<char*>(m.taps[j].raw()) + off * C * elem, size_t(nb) * b.T * C);
  }
  std::vector<adapters::TapRows> taps;
  for (size_t j = 0; j < tap_ids.size(); ++j) taps.push_back({m.taps[j].raw(), m.tap_dtype});
  return model_forward_taps(m, b, opt, taps);
}

std::vector<int> cache_taps(const RunModel& m) {
  if (m.side) return m.side->taps();
  std::vector<int> all;
  for (int i = 0; i <= m.backbone->config().layers; ++i) all.push_back(i);
  return all;
}

const core::Tensor& model_forward_taps(RunModel& m, const core::TokenBatch& b, const core::StepOptions& opt,
                                       const std::vector<adapters::TapRows>& taps) {
  if (!m.side) throw std::logic_error("model_forward_taps needs a side network (method lst)");
  std::vector<int> rows;  // a last-token head: the last real token of each row; a pooler: [CLS]
  if (!m.backbone->classifier_layout().from_pooler)
    for (int r = 0; r < b.B; ++r) {
      int t = b.T - 1;
      if (b.attention_mask)
        while (t > 0 && b.attention_mask[r * b.T + t] == 0.0f) --t;
      rows.push_back(t);
    }
  const core::Tensor& features = m.side->forward(taps, b, opt, rows);
  return m.head->forward_on(features.data<float>(), b, opt);
}

void model_backward(RunModel& m, const int32_t* labels, const float* scores, float grad_scale) {
  if (!m.side) return m.head->backward(labels, scores, grad_scale);
  const int B = int(m.head->logits().shape()[0]);
  core::Tensor::ensure(m.d_features, {B, m.backbone->config().hidden}, core::DType::f32, core::MemCategory::workspace);
  m.head->backward_to(labels, scores, grad_scale, m.d_features.data<float>());
  m.side->backward(m.d_features.data<float>());
}

data::GlueSplit tokenize_for_run(const TrainConfig& cfg, const RunModel& m, data::GlueTask task,
                                 const std::vector<data::GlueExample>& rows, int max_examples) {
  auto tok = data::TextEncoder::for_model(cfg.model_dir, m.backbone->config().arch);
  const int n_prompt = adapters::total_prompt_tokens(m.methods);
  if (cfg.max_length - n_prompt < 4)
    throw std::runtime_error("task.max_length leaves no room for the text after the prompt tokens");
  data::GlueSplit s = data::tokenize_glue(task, rows, tok, cfg.max_length - n_prompt, max_examples);
  for (auto& e : s.enc)
    adapters::insert_prompt_tokens(m.methods, *m.backbone, e.input_ids, e.token_type_ids, e.attention_mask);
  return s;
}

void load_glue_splits(const TrainConfig& cfg, const RunModel& m, bool with_train, data::GlueSplit& train,
                      data::GlueSplit& dev) {
  const data::GlueTaskInfo& info = data::glue_task_info(m.task);
  if (with_train)
    train = tokenize_for_run(cfg, m, m.task, data::read_glue_tsv(m.task, cfg.data_dir + "/train.tsv"), cfg.max_train_examples);
  dev = tokenize_for_run(cfg, m, m.task, data::read_glue_tsv(m.task, cfg.data_dir + "/" + info.dev_files[0]),
                         cfg.max_eval_examples);
}

void load_trainable_params(RunModel& m, const core::CheckpointData& ck, const std::string& path) {
  auto& params = m.backbone->params();
  size_t loaded = 0;
  for (auto& [name, t] : ck.params) {
    core::Parameter* p = params.find(name);
    if (!p || !p->trainable) throw std::runtime_error(path + ": parameter '" + name + "' is not trainable in this run");
    // Checkpoints hold whole tensors; a tensor-parallel rank takes its part.
    const core::Shape& whole = p->shard.sharded() ? p->shard.full : p->value.shape();
    if (whole != t.shape())
      throw std::runtime_error(path + ": parameter '" + name + "' has shape " + core::shape_str(t.shape()) +
                               ", the model needs " + core::shape_str(whole));
    if (p->shard.sharded()) p->value.copy_from(core::shard_of(t, p->shard, core::MemCategory::workspace));
    else p->value.copy_from(t);
    ++loaded;
  }
  if (loaded != params.trainable().size())
    for (auto* p : params.trainable()) {
      bool found = false;
      for (auto& [name, t] : ck.params) found = found || name == p->name;
      if (!found) throw std::runtime_error(path + ": no parameter '" + p->name + "' in the checkpoint");
    }
}

EvalResult evaluate(RunModel& m, const data::GlueSplit& split, int batch_size, int32_t pad_id) {
  EvalResult r;
  auto& head = *m.head;
  const auto order = data::order_by_length(split.enc);
  std::vector<int> pred_labels(split.size());
  std::vector<float> pred_scores(split.size());
  data::PaddedBatch batch;
  double loss_sum = 0;
  std::vector<int32_t> labels;
  std::vector<float> scores;
  for (size_t s = 0; s < order.size(); s += size_t(batch_size)) {
    std::vector<size_t> idx(order.begin() + long(s), order.begin() + long(std::min(order.size(), s + size_t(batch_size))));
    data::pad_batch(batch, split.enc, idx, pad_id, m.pad_to);
    const core::Tensor& logits = model_forward(m, batch.view(), core::StepOptions{});
    labels.clear();
    scores.clear();
    for (size_t i : idx) {
      labels.push_back(split.labels[i]);
      scores.push_back(split.scores[i]);
    }
    loss_sum += double(head.loss(labels.data(), scores.data())) * double(idx.size());
    const float* lg = logits.data<float>();
    const int L = head.num_labels();
    for (size_t b = 0; b < idx.size(); ++b) {
      if (head.regression()) {
        pred_scores[idx[b]] = lg[b];
      } else {
        int best = 0;
        for (int k = 1; k < L; ++k)
          if (lg[b * size_t(L) + size_t(k)] > lg[b * size_t(L) + size_t(best)]) best = k;
        pred_labels[idx[b]] = best;
      }
    }
  }
  r.loss = loss_sum / double(std::max<size_t>(1, split.size()));
  if (head.regression()) {
    r.metrics = data::glue_metrics(split.task, pred_scores, split.scores);
  } else {
    std::vector<int> ref(split.labels.begin(), split.labels.end());
    r.metrics = data::glue_metrics(split.task, pred_labels, ref);
  }
  return r;
}

std::string format_metrics(const std::map<std::string, double>& m) {
  std::string s;
  char buf[64];
  for (auto& [k, v] : m) {
    std::snprintf(buf, sizeof buf, "%s%s %.4f", s.empty() ? "" : ", ", k.c_str(), v);
    s += buf;
  }
  return s;
}

}  // namespace ladder::apps
