#include "apps/commands.h"

#include <cstdio>
#include <cstring>
#include <exception>
#include <functional>
#include <map>
#include <string>

#include "apps/options.h"
#include "parallel/launch_env.h"

namespace ladder::apps {

namespace {
struct Command {
  std::function<int(const std::vector<std::string>&)> run;
  const char* summary;
};

const std::map<std::string, Command>& commands() {
  static const std::map<std::string, Command> c = {
      {"encode", {encode_command, "run a backbone over text and write hidden states / sentence embeddings to HDF5"}},
      {"bench-comm", {bench_comm_command, "all-reduce bus bandwidth: our communicator, bucketed gradients, raw MPI (under mpirun)"}},
      {"bench", {bench_command, "time the backbone's forward pass and full training step against the BLAS ceiling and the CPU's peak"}},
      {"generate", {generate_command, "continue a prompt with a decoder from a GGUF file (greedy or top-p, KV cache, tokens/s)"}},
      {"perplexity", {perplexity_command, "a decoder's perplexity on a text file (windows of --ctx tokens, the protocol of scripts/hf_decoder_reference.py)"}},
      {"inspect", {inspect_command, "print a checkpoint: attributes, parameters with norms, optimizer state, metrics, config"}},
      {"eval", {eval_command, "evaluate a checkpoint on its task's dev split(s), DyLoRA at every rank, AdvGLUE drop"}},
      {"export", {export_command, "write a checkpoint as a PEFT LoRA adapter or a merged Hugging Face model directory"}},
      {"cache", {cache_command, "run the frozen backbone once over a task's splits and store its hidden states in HDF5 (for LST)"}},
      {"train", {train_command, "fine-tune a backbone on a GLUE task with any parameter-efficient method (--config run.ini)"}},
  };
  return c;
}

void usage(FILE* out) {
  std::fprintf(out, "usage: ladder <command> [options]    (ladder <command> --help for its options)\n\ncommands:\n");
  for (const auto& [name, c] : commands()) std::fprintf(out, "  %-8s %s\n", name.c_str(), c.summary);
}
}  // namespace

std::string error_line(const std::string& command, const std::string& message) {
  // Parsers name the command in their messages for callers that are not this one; the prefix here
  // names it already.
  const std::string prefix = "ladder " + command + ": ";
  const bool named = message.compare(0, prefix.size(), prefix) == 0;
  return prefix + "error: " + (named ? message.substr(prefix.size()) : message);
}

int run_command_line(int argc, char** argv) {
  if (argc < 2) {
    usage(stderr);
    return 2;
  }
  const std::string cmd = argv[1];
  if (cmd == "--help" || cmd == "-h" || cmd == "help") {
    usage(stdout);
    return 0;
  }
  std::string tag;
  try {
    tag = parallel::rank_tag(parallel::detect_launch_env());
  } catch (const std::exception&) {
  }
  auto it = commands().find(cmd);
  if (it == commands().end()) {
    std::vector<std::string> known;
    for (const auto& [name, c] : commands()) known.push_back(name);
    std::string hint = closest_match(cmd, known);
    std::fprintf(stderr, "%sladder: unknown command '%s'%s\n", tag.c_str(), cmd.c_str(),
                 hint.empty() ? "" : (" (did you mean '" + hint + "'?)").c_str());
    usage(stderr);
    return 2;
  }
  try {
    return it->second.run(std::vector<std::string>(argv + 2, argv + argc));
  } catch (const std::exception& e) {
    std::fflush(stdout);
    std::fprintf(stderr, "%s%s\n", tag.c_str(), error_line(cmd, e.what()).c_str());
    return 1;
  }
}

}  // namespace ladder::apps
