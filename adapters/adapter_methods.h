#pragma once
// Bottleneck-adapter and Kronecker methods as Methods (adapters/method.h). Each owns its modules,
// installs them at the backbone's layer seams when constructed and never uninstalls them: a method lives
// as long as its backbone. Any backbone that declares its seams (core/backbones/backbone.h) gets them.
//   houlsby      dense adapters after attention and after the FFN of every layer (AdapterHub DoubleSeqBn
//                placement), m = d / adapter_reduction, adapter_activation
//   pfeiffer     dense adapter after the FFN only (AdapterHub's SeqBnConfig placement; the Compacter repo's
//                "pfeiffer" config instead keeps the attention one, METHODS.md §3.1)
//   compacter    LPHM adapters (adapters/phm.h, n = compacter_n) after attention and after the FFN, one
//                rule "phm_rule" shared by every PHM layer
//   compacter++  LPHM adapters after the FFN only
//   krona        KronA branches beside the krona_targets Linears (names as lora_targets), mergeable
//   krona_b      one KronA branch d -> d parallel to each layer's whole FFN (the block's ffn_parallel)
//   krona_b_res  krona_b plus a learnable residual scale: FFN(X) + s X (A (x) B) + s_res X
// train_layer_norms (all four adapter methods) also unfreezes every backbone LayerNorm (the Compacter
// repo's configs do so; METHODS.md §3.2 counts them in Compacter's 0.047%).
// Adapter parameter names start with the layer prefix ("encoder.layer.K.attention.output.adapter...",
// "encoder.layer.K.output.adapter...", "h.K.attn.adapter...", "h.K.mlp.adapter...", "encoder.layer.K.krona_b",
// "h.K.mlp.krona_b"), so the gradient floor sees them; the shared rule is "phm_rule".
// A seam already taken (houlsby + compacter both hook after attention; krona + lora on one Linear;
// krona_b + krona_b_res on ffn_parallel) is an error naming the seam; nothing is installed then.
#include <memory>
#include <string>
#include <vector>

#include "adapters/method_registry.h"

namespace ladder::adapters {

// The registry entries of the seven methods above, in this order.
std::vector<MethodInfo> adapter_method_infos();

}  // namespace ladder::adapters
