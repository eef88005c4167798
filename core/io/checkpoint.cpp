#include "core/io/checkpoint.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <charconv>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <regex>
#include <set>
#include <stdexcept>
#include <system_error>

#include "core/io/hdf5_file.h"

namespace ladder::core {

namespace fs = std::filesystem;

namespace {

const std::set<std::string>& reserved_attrs() {
  static const std::set<std::string> r = {"format", "version", "step", "epoch", "samples_seen", "config", "method",
                                          "layout", "dp", "tp", "backbone_id", "backbone_hash",
                                          "optimizer_kind"};
  return r;
}

std::runtime_error ckpt_error(const std::string& path, const std::string& what) {
  return std::runtime_error(path + ": " + what);
}

// One HDF5 link name: non-empty, no '/', not "." or "..".
void check_component(const std::string& path, const std::string& kind, const std::string& full,
                     const std::string& c) {
  if (c.empty() || c == "." || c == ".." || c.find('/') != std::string::npos)
    throw ckpt_error(path, "invalid " + kind + " name '" + full + "' (names are non-empty and have no '/')");
}

std::vector<std::string> split_slash(const std::string& s) {
  std::vector<std::string> out;
  size_t pos = 0;
  for (;;) {
    size_t next = s.find('/', pos);
    out.push_back(s.substr(pos, next == std::string::npos ? std::string::npos : next - pos));
    if (next == std::string::npos) break;
    pos = next + 1;
  }
  return out;
}

// Chunks of about 1 MiB: few chunks for big tensors, no waste for small ones.
uint64_t chunk_rows_for(const Tensor& t) {
  if (t.ndim() == 0 || t.dim(0) == 0) return 1;
  const uint64_t row_bytes = std::max<uint64_t>(1, t.nbytes() / uint64_t(t.dim(0)));
  return std::max<uint64_t>(1, (uint64_t(1) << 20) / row_bytes);
}

void write_tensor(Hdf5File& f, const std::string& name, const Tensor& t) {
  if (t.dtype() == DType::u4) throw ckpt_error(f.path(), "'" + name + "' is a packed 4-bit tensor; checkpoints store f32, f16, bf16, i32 or i8");
  std::vector<uint64_t> dims(t.shape().begin(), t.shape().end());
  auto ds = f.create_dataset(name, t.dtype(), dims, chunk_rows_for(t));
  ds.write_all(t.raw());
}

Tensor read_tensor(const Hdf5File& f, const std::string& name, MemCategory cat) {
  auto ds = f.open_dataset(name);
  Shape shape(ds.dims().begin(), ds.dims().end());
  Tensor t = Tensor::empty(shape, ds.dtype(), cat);
  ds.read_all(t.raw());
  return t;
}

// Creates every missing group on the way to (and including) `group`, remembering creation order.
void ensure_group(Hdf5File& f, const std::string& group) {
  std::string prefix;
  for (const auto& c : split_slash(group.substr(1))) {
    prefix += "/" + c;
    if (!f.exists(prefix)) f.create_group(prefix, /*track_order=*/true);
  }
}

// Every dataset under `group`, depth first in creation order, as paths relative to `group`.
void collect_datasets(const Hdf5File& f, const std::string& group, const std::string& rel,
                      std::vector<std::string>& out) {
  for (const auto& m : f.list_group(group)) {
    const std::string abs = group + "/" + m, r = rel.empty() ? m : rel + "/" + m;
    if (f.is_group(abs)) collect_datasets(f, abs, r, out);
    else out.push_back(r);
  }
}

std::string number_text(double v) {
  char buf[64];
  auto res = std::to_chars(buf, buf + sizeof buf, v);  // shortest text that reads back to the same double
  return std::string(buf, res.ptr);
}

Hdf5File open_checkpoint_file(const std::string& path) {
  std::error_code ec;
  if (!fs::exists(path, ec)) throw ckpt_error(path, "no such checkpoint file");
  if (fs::is_directory(path, ec)) throw ckpt_error(path, "is a directory, not a checkpoint file");
  try {
    return Hdf5File::open_read(path);
  } catch (const std::exception&) {
    throw ckpt_error(path, "not a readable HDF5 file (not HDF5, truncated or corrupt); expected a ladder checkpoint");
  }
}

// Checks the format and version attributes; returns "" or the problem.
std::string format_problem(const Hdf5File& f) {
  if (!f.has_attr("format")) return "not a ladder checkpoint: the HDF5 file has no 'format' attribute";
  if (!f.attr_is_string("format")) return "not a ladder checkpoint: the 'format' attribute is not a string";
  const std::string format = f.get_attr_string("format");
  if (format != kCheckpointFormat)
    return "not a ladder checkpoint: format is '" + format + "', expected '" + kCheckpointFormat + "'";
  if (!f.has_attr("version")) return "checkpoint has no 'version' attribute";
  int64_t version = 0;
  try {
    version = f.get_attr_int("version");
  } catch (const std::exception&) {
    return "checkpoint attribute 'version' is not an integer";
  }
  if (version != kCheckpointVersion)
    return "unsupported checkpoint version " + std::to_string(version) + " (this ladder reads version " +
           std::to_string(kCheckpointVersion) + ")";
  return "";
}

void write_checkpoint_impl(const std::string& path, const CheckpointData& d, std::optional<double> selection_metric) {
  for (const auto& [k, v] : d.extra_attrs) {
    if (k.empty() || reserved_attrs().count(k) || (selection_metric && k == "selection_metric"))
      throw ckpt_error(path, "extra attribute '" + k + "' is empty or reserved");
  }
  if (d.optimizer_kind.empty()) throw ckpt_error(path, "optimizer kind is empty (set CheckpointData::optimizer_kind)");
  if (d.dp < 1 || d.tp < 1) throw ckpt_error(path, "layout dp=" + std::to_string(d.dp) + ",tp=" + std::to_string(d.tp) + " is invalid");
  auto f = Hdf5File::create(path);
  f.set_attr("format", std::string(kCheckpointFormat));
  f.set_attr("version", kCheckpointVersion);
  f.set_attr("step", d.step);
  f.set_attr("epoch", d.epoch);
  f.set_attr("samples_seen", d.samples_seen);
  f.set_attr("config", d.config);
  f.set_attr("method", d.method);
  f.set_attr("layout", "dp=" + std::to_string(d.dp) + ",tp=" + std::to_string(d.tp));
  f.set_attr("dp", int64_t(d.dp));
  f.set_attr("tp", int64_t(d.tp));
  f.set_attr("backbone_id", d.backbone_id);
  f.set_attr("backbone_hash", d.backbone_hash);
  f.set_attr("optimizer_kind", d.optimizer_kind);
  for (const auto& [k, v] : d.extra_attrs) f.set_attr(k, v);
  if (selection_metric) f.set_attr_f64("selection_metric", *selection_metric);

  for (const char* g : {"/params", "/optimizer", "/rng", "/sampler", "/recipe", "/metrics"}) f.create_group(g, true);
  for (const auto& [name, t] : d.params) {
    check_component(path, "parameter", name, name);
    if (!t.defined()) throw ckpt_error(path, "parameter '" + name + "' has no tensor");
    if (f.exists("/params/" + name)) throw ckpt_error(path, "parameter '" + name + "' given twice");
    write_tensor(f, "/params/" + name, t.dtype() == DType::f32 ? t : t.to(DType::f32, MemCategory::workspace));
  }
  for (const auto& [name, t] : d.optimizer) {
    const auto parts = split_slash(name);
    if (parts.size() < 2) throw ckpt_error(path, "optimizer state '" + name + "' is not named '<param>/<state>'");
    for (const auto& c : parts) check_component(path, "optimizer state", name, c);
    if (!t.defined()) throw ckpt_error(path, "optimizer state '" + name + "' has no tensor");
    const std::string full = "/optimizer/" + name;
    if (f.exists(full)) throw ckpt_error(path, "optimizer state '" + name + "' given twice");
    ensure_group(f, full.substr(0, full.rfind('/')));
    write_tensor(f, full, t);
  }
  for (const auto& [name, v] : d.rng) {
    check_component(path, "rng", name, name);
    f.write_vector("/rng/" + name, v);
  }
  for (const auto& [name, v] : d.sampler) {
    check_component(path, "sampler", name, name);
    f.write_vector("/sampler/" + name, v);
  }
  for (const auto& [name, v] : d.recipe_state) {
    check_component(path, "recipe", name, name);
    f.write_vector("/recipe/" + name, v);
  }
  for (const auto& [name, v] : d.metrics) {
    check_component(path, "metric", name, name);
    f.write_vector("/metrics/" + name, v);
  }
  f.commit(/*durable=*/true);
}

void warn(const std::string& msg) { std::fprintf(stderr, "ladder: warning: %s\n", msg.c_str()); }

std::optional<int64_t> step_of_file_name(const std::string& name) {
  static const std::regex re(R"(^step-([0-9]{8,})\.h5$)");
  std::smatch m;
  if (!std::regex_match(name, m, re)) return std::nullopt;
  return std::stoll(m[1].str());
}

}  // namespace

void write_checkpoint(const std::string& path, const CheckpointData& data) { write_checkpoint_impl(path, data, std::nullopt); }

CheckpointData read_checkpoint(const std::string& path) {
  auto f = open_checkpoint_file(path);
  const std::string problem = format_problem(f);
  if (!problem.empty()) throw ckpt_error(path, problem);
  CheckpointData d;
  d.step = f.get_attr_int("step");
  d.epoch = f.get_attr_int("epoch");
  d.samples_seen = f.get_attr_int("samples_seen");
  d.config = f.get_attr_string("config");
  d.method = f.get_attr_string("method");
  d.dp = int(f.get_attr_int("dp"));
  d.tp = int(f.get_attr_int("tp"));
  d.backbone_id = f.get_attr_string("backbone_id");
  d.backbone_hash = f.get_attr_string("backbone_hash");
  // Checkpoints written before the kind was recorded all hold AdamW state.
  d.optimizer_kind = f.has_attr("optimizer_kind") ? f.get_attr_string("optimizer_kind") : "adamw";
  for (const auto& k : f.attr_names()) {
    if (reserved_attrs().count(k)) continue;
    d.extra_attrs[k] = f.attr_is_string(k) ? f.get_attr_string(k) : number_text(f.get_attr_f64(k));
  }
  if (!f.is_group("/params")) throw ckpt_error(path, "checkpoint has no '/params' group");
  for (const auto& name : f.list_group("/params"))
    d.params.emplace_back(name, read_tensor(f, "/params/" + name, MemCategory::trainable_weights));
  if (f.is_group("/optimizer")) {
    std::vector<std::string> names;
    collect_datasets(f, "/optimizer", "", names);
    for (const auto& name : names)
      d.optimizer.emplace_back(name, read_tensor(f, "/optimizer/" + name, MemCategory::optimizer_state));
  }
  if (f.is_group("/rng"))
    for (const auto& name : f.list_group("/rng")) d.rng[name] = f.read_u8_vector("/rng/" + name);
  if (f.is_group("/sampler"))
    for (const auto& name : f.list_group("/sampler")) d.sampler[name] = f.read_i64_vector("/sampler/" + name);
  if (f.is_group("/recipe"))
    for (const auto& name : f.list_group("/recipe")) d.recipe_state[name] = f.read_i64_vector("/recipe/" + name);
  if (f.is_group("/metrics"))
    for (const auto& name : f.list_group("/metrics")) d.metrics[name] = f.read_f64_vector("/metrics/" + name);
  return d;
}

std::string checkpoint_problem(const std::string& path) {
  try {
    auto f = open_checkpoint_file(path);
    const std::string problem = format_problem(f);
    return problem.empty() ? problem : path + ": " + problem;
  } catch (const std::exception& e) {
    return e.what();
  }
}

// ---- CheckpointDirectory ----

std::string CheckpointDirectory::file_name(int64_t step) {
  if (step < 0) throw std::invalid_argument("checkpoint step " + std::to_string(step) + " is negative");
  char buf[40];
  std::snprintf(buf, sizeof buf, "step-%08lld.h5", static_cast<long long>(step));
  return buf;
}

CheckpointDirectory::CheckpointDirectory(std::string dir, int keep_last, Better better)
    : dir_(std::move(dir)), keep_last_(keep_last), better_(better) {
  while (dir_.size() > 1 && dir_.back() == '/') dir_.pop_back();
  if (keep_last_ < 1) throw std::invalid_argument(dir_ + ": keep_last must be at least 1 (got " + std::to_string(keep_last_) + ")");
  std::error_code ec;
  fs::create_directories(dir_, ec);
  if (ec || !fs::is_directory(dir_)) throw std::runtime_error(dir_ + ": cannot create the checkpoint directory: " + ec.message());
  const std::string best = dir_ + "/best.h5";
  if (fs::exists(best)) {
    const std::string problem = checkpoint_problem(best);
    if (!problem.empty()) {
      warn(best + ": ignoring the recorded best: " + problem);
      return;
    }
    auto f = Hdf5File::open_read(best);
    if (f.has_attr("selection_metric")) {
      best_metric_ = f.get_attr_f64("selection_metric");
      best_step_ = f.get_attr_int("step");
    }
  }
}

bool CheckpointDirectory::beats(double metric) const {
  if (metric != metric) return false;  // NaN never wins
  if (!best_metric_) return true;
  return better_ == Better::higher ? metric > *best_metric_ : metric < *best_metric_;
}

std::string CheckpointDirectory::save(const CheckpointData& data, std::optional<double> metric) {
  const std::string name = file_name(data.step);
  const std::string path = dir_ + "/" + name;
  write_checkpoint_impl(path, data, metric);

  if (metric && beats(*metric)) {
    // best.h5: a hard link (no extra space), or a copy where the filesystem has none; renamed into place.
    const std::string best = dir_ + "/best.h5", tmp = best + ".tmp";
    std::error_code ec;
    fs::remove(tmp, ec);
    fs::create_hard_link(path, tmp, ec);
    if (ec) {
      ec.clear();
      fs::copy_file(path, tmp, fs::copy_options::overwrite_existing, ec);
      if (ec) throw std::runtime_error(tmp + ": cannot link or copy " + path + ": " + ec.message());
    }
    fs::rename(tmp, best, ec);
    if (ec) throw std::runtime_error(best + ": cannot rename from " + tmp + ": " + ec.message());
    best_metric_ = *metric;
    best_step_ = data.step;
  }

  {
    const std::string latest = dir_ + "/latest", tmp = latest + ".tmp";
    {
      std::ofstream out(tmp, std::ios::trunc);
      out << name << "\n";
      out.flush();
      if (!out) throw std::runtime_error(tmp + ": cannot write");
    }
    if (const int fd = ::open(tmp.c_str(), O_RDONLY); fd >= 0) {  // the pointer must not outlive its target's data
      ::fsync(fd);
      ::close(fd);
    }
    std::error_code ec;
    fs::rename(tmp, latest, ec);
    if (ec) throw std::runtime_error(latest + ": cannot rename from " + tmp + ": " + ec.message());
  }

  // Rotation: the newest keep_last step files, the one just written and the best stay; stale temporaries go
  // (this process is the folder's only writer, and its own writes are complete).
  std::vector<int64_t> steps;
  for (const auto& p : list()) steps.push_back(*step_of_file_name(fs::path(p).filename().string()));
  std::sort(steps.rbegin(), steps.rend());
  std::error_code ec;
  for (size_t i = 0; i < steps.size(); ++i) {
    const bool keep = int(i) < keep_last_ || steps[i] == data.step || (best_step_ && steps[i] == *best_step_);
    if (!keep) fs::remove(dir_ + "/" + file_name(steps[i]), ec);
  }
  for (const auto& e : fs::directory_iterator(dir_, ec)) {
    const std::string fname = e.path().filename().string();
    if (fname.size() > 4 && fname.compare(fname.size() - 4, 4, ".tmp") == 0 &&
        step_of_file_name(fname.substr(0, fname.size() - 4)))
      fs::remove(e.path(), ec);
  }
  return path;
}

std::optional<std::string> CheckpointDirectory::latest(std::vector<std::string>* unreadable) const {
  auto skip = [&](const std::string& why) {
    warn("skipping " + why);
    if (unreadable) unreadable->push_back(why);
  };
  // The `latest` pointer first (it names the newest save even after a resume from an older step), then the
  // step files newest first.
  std::set<std::string> tried;
  std::ifstream in(dir_ + "/latest");
  std::string name;
  if (in && std::getline(in, name)) {
    while (!name.empty() && (name.back() == '\r' || name.back() == ' ')) name.pop_back();
    if (step_of_file_name(name)) {
      const std::string p = dir_ + "/" + name;
      tried.insert(p);
      if (!fs::exists(p)) {
        skip(dir_ + "/latest names " + name + ", which is missing");
      } else {
        const std::string problem = checkpoint_problem(p);
        if (problem.empty()) return p;
        skip(problem);
      }
    } else {
      warn(dir_ + "/latest does not name a step file ('" + name + "'); looking at the step files");
    }
  }
  auto files = list();
  for (auto it = files.rbegin(); it != files.rend(); ++it) {
    if (tried.count(*it)) continue;
    const std::string problem = checkpoint_problem(*it);
    if (problem.empty()) return *it;
    skip(problem);
  }
  return std::nullopt;
}

std::optional<std::string> CheckpointDirectory::best() const {
  const std::string p = dir_ + "/best.h5";
  if (fs::exists(p)) return p;
  return std::nullopt;
}

std::vector<std::string> CheckpointDirectory::list() const {
  std::vector<std::pair<int64_t, std::string>> found;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(dir_, ec)) {
    if (!e.is_regular_file(ec)) continue;
    if (auto s = step_of_file_name(e.path().filename().string())) found.emplace_back(*s, e.path().string());
  }
  std::sort(found.begin(), found.end());
  std::vector<std::string> out;
  for (auto& [s, p] : found) out.push_back(p);
  return out;
}

}  // namespace ladder::core
