#include "apps/train/activation_cache.h"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <stdexcept>

#include "apps/progress.h"
#include "apps/train/base_weights.h"
#include "data/activation_store/store_writer.h"
#include "data/glue/metrics.h"
#include "data/padded_batch.h"
#include "parallel/mpi_communicator.h"

namespace ladder::apps {

namespace fs = std::filesystem;

namespace {

// The files that define the backbone's weights and the tokenizer's vocabulary, in a fixed order.
std::vector<std::string> files_matching(const std::string& dir, const std::vector<std::string>& names, const std::string& ext) {
  std::vector<std::string> out;
  for (const auto& n : names)
    if (fs::exists(dir + "/" + n)) out.push_back(dir + "/" + n);
  if (!ext.empty() && out.empty()) {
    for (const auto& e : fs::directory_iterator(dir))
      if (e.path().extension() == ext) out.push_back(e.path().string());
    std::sort(out.begin(), out.end());
  }
  if (out.empty()) throw std::runtime_error("no " + (ext.empty() ? names.front() : "*" + ext) + " in " + dir);
  return out;
}

std::string weights_hash(const TrainConfig& cfg) { return base_weights_hash(cfg.model_dir); }
std::string tokenizer_hash(const TrainConfig& cfg) {
  return data::hash_files(files_matching(cfg.model_dir, {"vocab.txt", "vocab.json", "merges.txt"}, ""));
}

std::vector<int64_t> taps64(const RunModel& m) {
  std::vector<int64_t> t;
  for (int i : cache_taps(m)) t.push_back(i);
  return t;
}

}  // namespace

std::string store_path(const TrainConfig& cfg, const std::string& split) { return cfg.cache_dir + "/" + split + ".h5"; }

data::StoreExpectation store_expectation(const TrainConfig& cfg, const RunModel& m, const std::string& split) {
  data::StoreExpectation e;
  e.backbone_hash = weights_hash(cfg);
  e.tokenizer_hash = tokenizer_hash(cfg);
  e.task = data::glue_task_info(m.task).name;
  e.split = split;
  e.max_len = cfg.max_length;
  e.hidden_size = m.backbone->config().hidden;
  e.layers = taps64(m);
  e.label_kind = m.head->regression() ? data::LabelKind::real : data::LabelKind::integer;
  return e;
}

CacheStats write_split_store(const TrainConfig& cfg, RunModel& m, const data::GlueSplit& rows, const std::string& split,
                             parallel::MpiCommunicator* world, bool lead) {
  const auto t0 = std::chrono::steady_clock::now();
  const std::string path = store_path(cfg, split);
  if (lead) fs::create_directories(cfg.cache_dir);
  if (world) world->barrier();
  data::StoreIdentity id;
  id.backbone_id = cfg.model_dir;
  id.backbone_hash = weights_hash(cfg);
  id.tokenizer_hash = tokenizer_hash(cfg);
  id.task = data::glue_task_info(m.task).name;
  id.split = split;
  id.max_len = cfg.max_length;
  id.dtype = core::parse_dtype(cfg.cache_dtype);
  id.layers = taps64(m);
  id.hidden_size = m.backbone->config().hidden;
  id.num_rows = int64_t(rows.size());
  id.label_kind = m.head->regression() ? data::LabelKind::real : data::LabelKind::integer;
  id.token_types = true;
  data::StoreWriterOptions wo;
  wo.checksum = cfg.cache_checksum;
  if (world) wo.comm = world->native();
  data::ActivationStoreWriter writer(path, id, wo);

  // Contiguous chunks of rows in dataset order (the store keeps dataset order, so a stored row's index is
  // the example's index, which also keys its dropout masks); rank r writes chunks r, r + world, ...
  const int rank = world ? world->rank() : 0, size = world ? world->size() : 1;
  const size_t chunk = size_t(std::max(1, cfg.eval_batch_size));
  const size_t chunks = (rows.size() + chunk - 1) / chunk;
  const auto taps = cache_taps(m);
  const int32_t pad = 0;
  data::PaddedBatch batch;
  std::vector<size_t> idx;
  std::vector<int32_t> labels;
  std::vector<float> scores;
  Progress progress("cache " + split, rows.size(), "rows", kPlainLineInterval_s, /*redraw=*/world == nullptr);
  for (size_t c = size_t(rank); c < chunks; c += size_t(size)) {
    const size_t first = c * chunk, count = std::min(chunk, rows.size() - first);
    idx.resize(count);
    for (size_t i = 0; i < count; ++i) idx[i] = first + i;
    data::pad_batch(batch, rows.enc, idx, pad);
    core::StepOptions bo;  // inference: no dropout, nothing saved
    bo.keep_hidden_states = true;
    m.backbone->forward(batch.view(), bo);
    data::StoreRows r = data::store_rows_from(batch);
    labels.assign(rows.labels.begin() + long(first), rows.labels.begin() + long(first + count));
    scores.assign(rows.scores.begin() + long(first), rows.scores.begin() + long(first + count));
    if (m.head->regression()) r.scores = scores.data();
    else r.labels = labels.data();
    std::vector<core::Tensor> keep;  // hold the hidden states while they are written
    for (int t : taps) {
      keep.push_back(m.backbone->hidden_state(t));
      r.hidden.push_back(keep.back().data<float>());
    }
    writer.write_rows(first, count, r);
    if (lead) progress.update(std::min(rows.size(), (c + 1) * chunk));
  }
  writer.finish();
  if (lead) progress.finish("done");
  CacheStats s;
  s.rows = rows.size();
  s.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  s.bytes = fs::file_size(path);
  return s;
}

std::vector<adapters::TapRows> store_taps(const data::StoreBatch& b) {
  std::vector<adapters::TapRows> taps;
  for (const auto& h : b.hidden) taps.push_back({h.data(), core::DType::f32});
  for (const auto& h : b.hidden_bits) taps.push_back({h.data(), b.hidden_dtype});
  return taps;
}

EvalResult evaluate_from_store(RunModel& m, const data::ActivationStoreReader& store, data::GlueTask task, int batch_size) {
  EvalResult r;
  auto& head = *m.head;
  const size_t N = store.num_rows();
  std::vector<int> pred_labels(N), ref_labels(N);
  std::vector<float> pred_scores(N), ref_scores(N);
  std::vector<int64_t> layers;
  for (int t : m.side->taps()) layers.push_back(t);
  double loss_sum = 0;
  for (size_t s = 0; s < N; s += size_t(batch_size)) {
    std::vector<uint64_t> rows;
    for (size_t i = s; i < std::min(N, s + size_t(batch_size)); ++i) rows.push_back(i);
    const data::StoreBatch b = store.read_batch(rows, layers, /*keep_16bit=*/true);
    const auto taps = store_taps(b);
    core::StepOptions opt;
    std::vector<int64_t> ids(rows.begin(), rows.end());
    opt.samples.ids = ids.data();
    const core::Tensor& logits = model_forward_taps(m, b.tokens.view(), opt, taps);
    loss_sum += double(head.loss(b.labels.empty() ? nullptr : b.labels.data(), b.scores.empty() ? nullptr : b.scores.data())) *
                double(rows.size());
    const float* lg = logits.data<float>();
    const int L = head.num_labels();
    for (size_t k = 0; k < rows.size(); ++k) {
      const size_t i = rows[k];
      if (head.regression()) {
        pred_scores[i] = lg[k];
        ref_scores[i] = b.scores[k];
      } else {
        int best = 0;
        for (int c = 1; c < L; ++c)
          if (lg[k * size_t(L) + size_t(c)] > lg[k * size_t(L) + size_t(best)]) best = c;
        pred_labels[i] = best;
        ref_labels[i] = b.labels[k];
      }
    }
  }
  r.loss = loss_sum / double(std::max<size_t>(1, N));
  r.metrics = head.regression() ? data::glue_metrics(task, pred_scores, ref_scores) : data::glue_metrics(task, pred_labels, ref_labels);
  return r;
}

}  // namespace ladder::apps
