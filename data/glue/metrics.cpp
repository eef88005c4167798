#include "data/glue/metrics.h"

#include <algorithm>
#include <cmath>
#include <numeric>
#include <stdexcept>

namespace ladder::data {

namespace {

template <class T>
void check_sizes(const std::vector<T>& a, const std::vector<T>& b, const char* what) {
  if (a.size() != b.size())
    throw std::invalid_argument(std::string(what) + ": " + std::to_string(a.size()) + " predictions but " +
                                std::to_string(b.size()) + " references");
  if (a.empty()) throw std::invalid_argument(std::string(what) + ": no examples");
}

// 1-based ranks, ties given their average rank (scipy.stats.rankdata method="average").
std::vector<double> average_ranks(const std::vector<float>& v) {
  std::vector<size_t> order(v.size());
  std::iota(order.begin(), order.end(), size_t(0));
  std::stable_sort(order.begin(), order.end(), [&](size_t i, size_t j) { return v[i] < v[j]; });
  std::vector<double> rank(v.size());
  for (size_t i = 0; i < order.size();) {
    size_t j = i;
    while (j + 1 < order.size() && v[order[j + 1]] == v[order[i]]) ++j;
    const double r = 0.5 * double(i + j) + 1.0;  // mean of ranks i+1 .. j+1
    for (size_t k = i; k <= j; ++k) rank[order[k]] = r;
    i = j + 1;
  }
  return rank;
}

double pearson_d(const std::vector<double>& x, const std::vector<double>& y) {
  const double n = double(x.size());
  const double mx = std::accumulate(x.begin(), x.end(), 0.0) / n;
  const double my = std::accumulate(y.begin(), y.end(), 0.0) / n;
  double sxy = 0, sxx = 0, syy = 0;
  for (size_t i = 0; i < x.size(); ++i) {
    const double dx = x[i] - mx, dy = y[i] - my;
    sxy += dx * dy, sxx += dx * dx, syy += dy * dy;
  }
  if (sxx == 0 || syy == 0) return 0.0;
  return std::clamp(sxy / std::sqrt(sxx * syy), -1.0, 1.0);
}

}  // namespace

double accuracy(const std::vector<int>& pred, const std::vector<int>& ref) {
  check_sizes(pred, ref, "accuracy");
  size_t hit = 0;
  for (size_t i = 0; i < pred.size(); ++i) hit += pred[i] == ref[i];
  return double(hit) / double(pred.size());
}

double binary_f1(const std::vector<int>& pred, const std::vector<int>& ref) {
  check_sizes(pred, ref, "f1");
  double tp = 0, fp = 0, fn = 0;
  for (size_t i = 0; i < pred.size(); ++i) {
    tp += pred[i] == 1 && ref[i] == 1;
    fp += pred[i] == 1 && ref[i] != 1;
    fn += pred[i] != 1 && ref[i] == 1;
  }
  return tp == 0 ? 0.0 : 2 * tp / (2 * tp + fp + fn);
}

// Gorodkin's multiclass form (what sklearn computes); for two classes it is the usual phi coefficient.
double matthews_corrcoef(const std::vector<int>& pred, const std::vector<int>& ref) {
  check_sizes(pred, ref, "mcc");
  const int k = 1 + std::max(*std::max_element(pred.begin(), pred.end()), *std::max_element(ref.begin(), ref.end()));
  if (*std::min_element(pred.begin(), pred.end()) < 0 || *std::min_element(ref.begin(), ref.end()) < 0)
    throw std::invalid_argument("mcc: labels must be non-negative class ids");
  std::vector<double> t(size_t(k), 0), p(size_t(k), 0);  // true / predicted counts per class
  double correct = 0, n = double(pred.size());
  for (size_t i = 0; i < pred.size(); ++i) {
    t[size_t(ref[i])] += 1, p[size_t(pred[i])] += 1;
    correct += pred[i] == ref[i];
  }
  double tp = 0, pp = 0, tt = 0;
  for (int c = 0; c < k; ++c) tp += t[size_t(c)] * p[size_t(c)], pp += p[size_t(c)] * p[size_t(c)], tt += t[size_t(c)] * t[size_t(c)];
  const double denom = std::sqrt((n * n - pp) * (n * n - tt));
  return denom == 0 ? 0.0 : (correct * n - tp) / denom;
}

double pearson(const std::vector<float>& x, const std::vector<float>& y) {
  check_sizes(x, y, "pearson");
  return pearson_d(std::vector<double>(x.begin(), x.end()), std::vector<double>(y.begin(), y.end()));
}

double spearman(const std::vector<float>& x, const std::vector<float>& y) {
  check_sizes(x, y, "spearman");
  return pearson_d(average_ranks(x), average_ranks(y));
}

std::map<std::string, double> glue_metrics(GlueTask task, const std::vector<int>& pred, const std::vector<int>& ref) {
  const auto& info = glue_task_info(task);
  if (info.regression) throw std::invalid_argument(info.name + " is scored on float predictions, not labels");
  switch (task) {
    case GlueTask::cola: return {{"mcc", matthews_corrcoef(pred, ref)}};
    case GlueTask::mrpc:
    case GlueTask::qqp: return {{"accuracy", accuracy(pred, ref)}, {"f1", binary_f1(pred, ref)}};
    default: return {{"accuracy", accuracy(pred, ref)}};
  }
}

std::map<std::string, double> glue_metrics(GlueTask task, const std::vector<float>& pred,
                                           const std::vector<float>& ref) {
  const auto& info = glue_task_info(task);
  if (!info.regression) throw std::invalid_argument(info.name + " is scored on label predictions, not floats");
  return {{"pearson", pearson(pred, ref)}, {"spearman", spearman(pred, ref)}};
}

}  // namespace ladder::data
