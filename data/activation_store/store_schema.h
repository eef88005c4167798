#pragma once
// What an activation store is: the identity written as root attributes of the HDF5 file (format, version,
// the backbone and its weight hash, the tokenizer's hash, task, split, max_len, dtype, the tapped layers,
// hidden size, row count, label kind) and the check that a store matches what a run expects, so that
// training never silently consumes hidden states of another model, tokenizer or sequence length.
// The schema itself is documented in docs/ACTIVATION_STORE.md.
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "core/tensor/dtype.h"

namespace ladder::core {
class Hdf5File;
}

namespace ladder::data {

inline constexpr const char* kActivationStoreFormat = "ladder-activations";
inline constexpr int64_t kActivationStoreVersion = 1;

// Class ids (int32 /labels, -1 = unlabeled) or regression targets (float32 /labels, e.g. STS-B scores).
enum class LabelKind { integer, real };
const char* label_kind_name(LabelKind k);  // "int" / "float"

struct StoreIdentity {
  std::string format = kActivationStoreFormat;
  int64_t version = kActivationStoreVersion;
  std::string backbone_id;     // e.g. "sentence-transformers/all-MiniLM-L6-v2"
  std::string backbone_hash;   // hash_files() of the weight files, "xxh64:<16 hex>"
  std::string tokenizer_hash;  // hash_files() of the vocabulary files
  std::string task, split;     // "sst2", "train"
  int64_t max_len = 0;         // T: every row is padded to it
  core::DType dtype = core::DType::f16;  // of /hidden/<layer>: f16, bf16 or f32
  std::vector<int64_t> layers;           // tapped layers, in the order /hidden lists them
  int64_t hidden_size = 0;               // H
  int64_t num_rows = 0;                  // N
  LabelKind label_kind = LabelKind::integer;
  int64_t num_logits = 0;      // C of /logits (teacher outputs); 0 = no /logits
  bool token_types = false;    // whether /token_type_ids [N,T] int8 is present (BERT sentence pairs)
};

// What a run asks of a store. Empty strings, zero numbers and empty optionals are not checked; every listed
// layer must be present (the store may hold more).
struct StoreExpectation {
  std::string backbone_id, backbone_hash, tokenizer_hash, task, split;
  int64_t max_len = 0;
  int64_t hidden_size = 0;
  std::vector<int64_t> layers;
  std::optional<core::DType> dtype;
  std::optional<LabelKind> label_kind;
  int64_t num_logits = 0;  // > 0: the store must hold teacher logits with this many classes
};

// Throws std::runtime_error naming the store, the first mismatching field and both values, e.g.
// "activation store runs/x.h5 was written for max_length 128 but the config asks for 64".
void check_matches(const StoreIdentity& found, const StoreExpectation& expected, const std::string& path);

// Root attributes <-> identity. read_identity checks format and version (not `complete`; the reader does).
void write_identity(core::Hdf5File& f, const StoreIdentity& id);
StoreIdentity read_identity(const core::Hdf5File& f);

// Hashes for identities: XXH64 (seed 0) of the bytes, written "xxh64:" + 16 lowercase hex digits. Fast
// (several GB/s, memory-mapped), stable across machines and runs, not cryptographic: it tells files apart,
// it does not defend against forgery. Files are hashed in the given order; for more than one file the
// result is the XXH64 of their hex digests joined by '\n', so file names and mtimes do not matter.
uint64_t xxh64(const void* data, size_t size, uint64_t seed = 0);
std::string hash_file(const std::string& path);
std::string hash_files(const std::vector<std::string>& paths);

}  // namespace ladder::data
