#pragma once
// A GGUF model file (llama.cpp's format) as ladder loads it: the architecture hyper-parameters from its
// metadata, and its tensors dequantized to f32 under their Hugging Face names, as an in-memory safetensors
// checkpoint, so the backbone loads it with the same code as a Hugging Face directory. What llama.cpp's
// converter changed is undone here, as transformers' GGUF loader undoes it: Llama's q/k rows are permuted
// back to the rotate-half order, Gemma's norm weights (stored as 1 + w) lose their 1.
// Architectures: "llama" and "gemma3"; another is an error naming the file and the architecture.
#include <string>

#include "core/backbones/transformer_config.h"
#include "core/io/gguf.h"
#include "core/io/safetensors.h"

namespace ladder::core {

// Errors name the file and the missing or invalid key.
TransformerConfig config_from_gguf(const GgufFile& f);
// Every tensor the config needs, named as in the Hugging Face causal-LM checkpoint ("model.layers.0...",
// "lm_head.weight" when the file has an untied output). Errors name the file and the tensor.
SafetensorsCheckpoint checkpoint_from_gguf(const GgufFile& f, const TransformerConfig& cfg);
// The Hugging Face name of a GGUF tensor name ("blk.3.attn_q.weight" -> "model.layers.3.self_attn.q_proj.weight");
// empty when the tensor is not part of the model ladder builds (e.g. rope_freqs).
std::string hf_name_of_gguf_tensor(const std::string& gguf_name, Architecture arch);

// Whether `path` names a GGUF file (by its magic), for loaders that accept a directory or a file.
bool is_gguf_file(const std::string& path);

}  // namespace ladder::core
