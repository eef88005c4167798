#pragma once
// GLUE evaluation metrics, computed in double. Degenerate inputs give 0, never NaN: Matthews correlation
// with a constant prediction or reference (as sklearn), F1 with no positive prediction and no positive
// reference (sklearn's zero_division=0), Pearson/Spearman with a constant side (scipy would say NaN).
// Spearman ranks ties by their average rank. Every function requires equal, non-zero lengths
// (std::invalid_argument otherwise).
#include <map>
#include <string>
#include <vector>

#include "data/glue/glue_task.h"

namespace ladder::data {

double accuracy(const std::vector<int>& pred, const std::vector<int>& ref);
double binary_f1(const std::vector<int>& pred, const std::vector<int>& ref);  // positive class = 1
double matthews_corrcoef(const std::vector<int>& pred, const std::vector<int>& ref);  // binary or multiclass
double pearson(const std::vector<float>& x, const std::vector<float>& y);
double spearman(const std::vector<float>& x, const std::vector<float>& y);

// What GLUE reports for a task: CoLA {"mcc"}; SST-2, MNLI, QNLI, RTE, WNLI {"accuracy"}; MRPC, QQP
// {"accuracy", "f1"}. The label overload rejects STS-B, the score overload accepts only STS-B
// ({"pearson", "spearman"}). Values are fractions (0.9), not percentages.
std::map<std::string, double> glue_metrics(GlueTask task, const std::vector<int>& pred, const std::vector<int>& ref);
std::map<std::string, double> glue_metrics(GlueTask task, const std::vector<float>& pred,
                                           const std::vector<float>& ref);

}  // namespace ladder::data
