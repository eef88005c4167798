// `ladder encode`: the first real job: run a pretrained backbone over text and write its final hidden
// states (and a pooled sentence vector) to HDF5 in input row order.
#include <chrono>
#include <cstdio>
#include <iostream>
#include <sstream>
#include <stdexcept>

#include "apps/commands.h"
#include "apps/options.h"
#include "apps/progress.h"
#include "apps/report.h"
#include "core/backbones/backbone.h"
#include "core/io/hdf5_file.h"
#include "core/kernels/threading.h"
#include "data/padded_batch.h"
#include "data/text_encoder.h"
#include "data/text_rows.h"

namespace ladder::apps {

namespace {

std::vector<int> parse_columns(const std::string& s) {
  std::vector<int> out;
  if (s.empty()) return out;
  std::stringstream ss(s);
  std::string item;
  while (std::getline(ss, item, ',')) {
    try {
      size_t used = 0;
      int v = std::stoi(item, &used);
      if (used != item.size() || v < 0) throw std::invalid_argument(item);
      out.push_back(v);
    } catch (const std::exception&) {
      throw std::runtime_error("--columns: '" + s + "' is not a comma-separated list of column indices (e.g. 0 or 7,8)");
    }
  }
  return out;
}

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

}  // namespace

int encode_command(const std::vector<std::string>& args) {
  std::string model_dir, input, output, columns_s, pooling, dtype_s, report_path;
  int threads = 0, batch_size = 0, max_len = 0;
  bool header = false, normalize = false, no_hidden = false;
  po::options_description desc("ladder encode");
  desc.add_options()("model", po::value<std::string>(&model_dir)->required(), "Hugging Face model directory (config.json, model.safetensors, tokenizer files)")(
      "input", po::value<std::string>(&input)->required(), "text file: one text, or a tab-separated pair, per line; or a TSV with --columns")(
      "output", po::value<std::string>(&output)->required(), "HDF5 file to write")(
      "columns", po::value<std::string>(&columns_s)->default_value(""), "TSV columns (0-based) holding the text, or two for a pair: e.g. 0 or 7,8")(
      "header", po::bool_switch(&header), "skip the input's first line")(
      "max-length", po::value<int>(&max_len)->default_value(128), "truncate to this many tokens (special tokens included)")(
      "batch-size", po::value<int>(&batch_size)->default_value(32), "sequences per forward pass")(
      "pooling", po::value<std::string>(&pooling)->default_value("auto"),
      "sentence vector: pooler (BERT's tanh pooler), mean (sentence-transformers mean pooling), none; auto = pooler for BERT with a pooler, none otherwise")(
      "normalize", po::bool_switch(&normalize), "L2-normalise the sentence vector (sentence-transformers' Normalize)")(
      "dtype", po::value<std::string>(&dtype_s)->default_value("f32"), "hidden-state dtype in the file: f32, f16 or bf16")(
      "no-hidden", po::bool_switch(&no_hidden), "write only the sentence vectors, not the per-token hidden states");
  add_common_options(desc, threads, report_path);
  po::variables_map vm;
  if (!parse_options("encode", args, desc, vm)) return 0;
  RunReport report("encode", args);
  report.set_config(effective_options(vm));
  core::set_num_threads(threads);
  const core::DType hidden_dtype = core::parse_dtype(dtype_s);
  if (hidden_dtype != core::DType::f32 && hidden_dtype != core::DType::f16 && hidden_dtype != core::DType::bf16)
    throw std::runtime_error("--dtype must be f32, f16 or bf16");
  if (batch_size <= 0) throw std::runtime_error("--batch-size must be positive");

  auto t_load = std::chrono::steady_clock::now();
  auto backbone = core::load_backbone(model_dir);
  const core::TransformerConfig& cfg = backbone->config();
  if (pooling == "auto") pooling = backbone->has_pooler() ? "pooler" : "none";
  if (pooling != "pooler" && pooling != "mean" && pooling != "none")
    throw std::runtime_error("--pooling must be pooler, mean, none or auto (got '" + pooling + "')");
  if (pooling == "pooler" && !backbone->has_pooler())
    throw std::runtime_error("--pooling pooler needs a BERT checkpoint with pooler.dense weights; use mean");
  if (normalize && pooling == "none") throw std::runtime_error("--normalize needs --pooling pooler or mean");
  if (max_len <= 0 || max_len > cfg.max_positions)
    throw std::runtime_error("--max-length must be in [1, " + std::to_string(cfg.max_positions) + "] for this model");
  auto tokenizer = data::TextEncoder::for_model(model_dir, cfg.arch);
  const double load_s = seconds_since(t_load);

  auto t_tok = std::chrono::steady_clock::now();
  const auto rows = data::read_text_rows(input, parse_columns(columns_s), header);
  if (rows.empty()) throw std::runtime_error(input + ": no rows to encode");
  std::vector<data::Encoding> encs(rows.size());
#pragma omp parallel for schedule(dynamic, 64)
  for (size_t i = 0; i < rows.size(); ++i)
    encs[i] = tokenizer.encode(rows[i].a, rows[i].has_b ? &rows[i].b : nullptr, max_len);
  const double tok_s = seconds_since(t_tok);
  int T_file = 0;
  long total_tokens = 0;
  for (auto& e : encs) {
    T_file = std::max(T_file, int(e.input_ids.size()));
    total_tokens += long(e.input_ids.size());
  }
  const uint64_t N = rows.size();
  const int C = cfg.hidden;
  std::printf("ladder encode: %s (%s, %d layers, d=%d) over %llu rows of %s, %ld tokens (longest %d), %d threads\n",
              model_dir.c_str(), cfg.model_type.c_str(), cfg.layers, C, (unsigned long long)N, input.c_str(),
              total_tokens, T_file, core::num_threads());

  auto file = core::Hdf5File::create(output);
  file.set_attr("format", std::string("ladder-encodings"));
  file.set_attr("version", int64_t(1));
  file.set_attr("model", model_dir);
  file.set_attr("model_type", cfg.model_type);
  file.set_attr("tokenizer", tokenizer.source());
  file.set_attr("input", input);
  file.set_attr("max_len", int64_t(max_len));
  file.set_attr("pooling", pooling + (normalize ? "+normalize" : ""));
  auto ds_ids = file.create_dataset("input_ids", core::DType::i32, {N, uint64_t(T_file)}, 256);
  auto ds_mask = file.create_dataset("attention_mask", core::DType::i8, {N, uint64_t(T_file)}, 256);
  core::Hdf5Dataset ds_hidden, ds_pooled;
  if (!no_hidden) {
    // One row per chunk: rows arrive in length order, and readers fetch whole rows.
    ds_hidden = file.create_dataset("last_hidden_state", hidden_dtype, {N, uint64_t(T_file), uint64_t(C)}, 1);
    ds_hidden.set_attr("description", "final hidden states [row, token, d]; padded positions are 0");
  }
  if (pooling != "none") {
    ds_pooled = file.create_dataset(pooling == "pooler" ? "pooler_output" : "sentence_embedding", core::DType::f32,
                                    {N, uint64_t(C)}, 256);
    ds_pooled.set_attr("description", pooling == "pooler" ? "BERT pooler: tanh(W h[CLS] + b)" : "mean of real-token hidden states");
  }

  const auto order = data::order_by_length(encs);
  data::PaddedBatch batch;
  std::vector<int32_t> row_ids(static_cast<size_t>(T_file));
  std::vector<int8_t> row_mask(static_cast<size_t>(T_file));
  std::vector<float> row_hidden(size_t(T_file) * C), pooled(size_t(batch_size) * C);
  std::vector<double> batch_ms;
  core::StepOptions opt;  // inference: nothing saved, no dropout
  Progress progress("encode", N, "rows");
  auto t_run = std::chrono::steady_clock::now();
  double forward_s = 0;
  for (size_t start = 0; start < order.size(); start += size_t(batch_size)) {
    std::vector<size_t> idx(order.begin() + long(start), order.begin() + long(std::min(order.size(), start + size_t(batch_size))));
    data::pad_batch(batch, encs, idx, tokenizer.pad_id());
    const core::TokenBatch tb = batch.view();
    auto t0 = std::chrono::steady_clock::now();
    backbone->forward(tb, opt);
    const float* last = backbone->last_hidden().data<float>();
    if (pooling == "pooler") {
      const core::Tensor p = backbone->pooled();
      std::copy(p.data<float>(), p.data<float>() + size_t(tb.B) * C, pooled.begin());
    } else if (pooling == "mean") {
      core::mean_pool(pooled.data(), last, batch.mask.data(), tb.B, tb.T, C);
    }
    if (normalize) core::l2_normalize_rows(pooled.data(), tb.B, C);
    const double ms = 1e3 * seconds_since(t0);
    batch_ms.push_back(ms);
    forward_s += ms / 1e3;
    for (int b = 0; b < tb.B; ++b) {
      const uint64_t row = idx[size_t(b)];
      const int len = batch.lengths[size_t(b)];
      std::fill(row_ids.begin(), row_ids.end(), tokenizer.pad_id());
      std::fill(row_mask.begin(), row_mask.end(), int8_t(0));
      std::copy(encs[row].input_ids.begin(), encs[row].input_ids.end(), row_ids.begin());
      std::fill(row_mask.begin(), row_mask.begin() + len, int8_t(1));
      ds_ids.write_rows(row, 1, row_ids.data());
      ds_mask.write_rows(row, 1, row_mask.data());
      if (!no_hidden) {
        std::fill(row_hidden.begin(), row_hidden.end(), 0.0f);
        std::copy(last + size_t(b) * tb.T * C, last + (size_t(b) * tb.T + size_t(len)) * C, row_hidden.begin());
        ds_hidden.write_rows_from_f32(row, 1, row_hidden.data());
      }
      if (pooling != "none") ds_pooled.write_rows(row, 1, pooled.data() + size_t(b) * C);
    }
    char tail[96];
    std::snprintf(tail, sizeof tail, "%.0f tokens/s", double(total_tokens) * double(start + idx.size()) / double(N) / std::max(forward_s, 1e-9));
    progress.update(start + idx.size(), tail);
  }
  file.commit();
  const double run_s = seconds_since(t_run);
  const double tokens_per_s = double(total_tokens) / forward_s;
  char tail[160];
  std::snprintf(tail, sizeof tail, "forward %.2fs: %.0f tokens/s, %.1f rows/s; median batch %.1f ms", forward_s,
                tokens_per_s, double(N) / forward_s, median(batch_ms));
  progress.finish(tail);
  std::printf("wrote %s (load %.2fs, tokenize %.2fs, encode+write %.2fs)\n\n%s", output.c_str(), load_s, tok_s, run_s,
              core::memory_table().c_str());

  report.metrics()["rows"] = N;
  report.metrics()["tokens"] = total_tokens;
  report.metrics()["longest"] = T_file;
  report.timings()["load_s"] = load_s;
  report.timings()["tokenize_s"] = tok_s;
  report.timings()["forward_s"] = forward_s;
  report.timings()["encode_and_write_s"] = run_s;
  report.timings()["median_step_ms"] = median(batch_ms);
  report.timings()["tokens_per_s"] = tokens_per_s;
  report.timings()["rows_per_s"] = double(N) / forward_s;
  report.write(report_path);
  return 0;
}

}  // namespace ladder::apps
