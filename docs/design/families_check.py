#!/usr/bin/env python3
"""Exact parameter counts for the LFM2, Gemma 3 (text), Qwen3, Qwen3.5 and SmolLM3 families.

Research companion to docs/design/families.md (issue 28, "layers as blocks").

Every tensor that `transformers` (read at 5.25.0) creates when it instantiates the
`*ForCausalLM` class of each family is listed here by name and shape, from the
published `config.json` values, and summed. The sum is what
`sum(p.numel() for p in model.parameters())` returns: a tied LM head shares the
embedding's Parameter and is counted once, buffers (rotary inv_freq, Gemma's
embed_scale) are not parameters.

    python3 docs/design/families_check.py            # totals against the published ones
    python3 docs/design/families_check.py --tables   # also every tensor of one layer per kind
    python3 docs/design/families_check.py --transformers
        # also resolve each fixture through transformers' own config classes (no torch needed)
        # and, only if torch is importable, instantiate each model on the meta device and
        # compare the real count.

Pure standard library; exits 1 if any total with a published figure disagrees.
"""

from __future__ import annotations

import argparse
import json
import sys
from math import prod

# --------------------------------------------------------------------------- fixtures
# `config` is the published config.json (or the closest copy found; see `provenance`).
# `published` is the figure the count is checked against; `source` says where it is from.

LFM2_350M = {
    "architectures": ["Lfm2ForCausalLM"],
    "block_auto_adjust_ff_dim": True,
    "block_dim": 1024,
    "block_ff_dim": 6656,
    "block_ffn_dim_multiplier": 1.0,
    "block_mlp_init_scale": 1.0,
    "block_multiple_of": 256,
    "block_norm_eps": 1e-05,
    "block_out_init_scale": 1.0,
    "block_use_swiglu": True,
    "block_use_xavier_init": True,
    "bos_token_id": 1,
    "conv_L_cache": 3,
    "conv_bias": False,
    "conv_dim": 1024,
    "conv_dim_out": 1024,
    "conv_use_xavier_init": True,
    "eos_token_id": 7,
    "full_attn_idxs": [2, 5, 8, 10, 12, 14],
    "hidden_size": 1024,
    "initializer_range": 0.02,
    "max_position_embeddings": 128000,
    "model_type": "lfm2",
    "norm_eps": 1e-05,
    "num_attention_heads": 16,
    "num_heads": 16,
    "num_hidden_layers": 16,
    "num_key_value_heads": 8,
    "pad_token_id": 0,
    "rope_theta": 1000000.0,
    "torch_dtype": "bfloat16",
    "use_cache": True,
    "use_pos_enc": True,
    "vocab_size": 65536,
}

# Third-party copy said to be "config.json, verbatim" of an LFM2-1.2B container.
LFM2_1_2B = {
    "architectures": ["Lfm2ForCausalLM"],
    "block_auto_adjust_ff_dim": True,
    "block_dim": 2048,
    "block_ff_dim": 12288,
    "block_ffn_dim_multiplier": 1.0,
    "block_mlp_init_scale": 1.0,
    "block_multiple_of": 256,
    "block_norm_eps": 1e-05,
    "block_out_init_scale": 1.0,
    "block_use_swiglu": True,
    "block_use_xavier_init": True,
    "bos_token_id": 1,
    "conv_L_cache": 3,
    "conv_bias": False,
    "conv_dim": 2048,
    "conv_dim_out": 2048,
    "conv_use_xavier_init": True,
    "eos_token_id": 7,
    "intermediate_size": 8192,
    "full_attn_idxs": [2, 5, 8, 10, 12, 14],
    "hidden_size": 2048,
    "initializer_range": 0.02,
    "max_position_embeddings": 128000,
    "model_type": "lfm2",
    "norm_eps": 1e-05,
    "num_attention_heads": 32,
    "head_dim": 64,
    "num_heads": 32,
    "num_hidden_layers": 16,
    "num_key_value_heads": 8,
    "pad_token_id": 0,
    "rope_theta": 1000000.0,
    "torch_dtype": "bfloat16",
    "use_cache": True,
    "use_pos_enc": True,
    "vocab_size": 65536,
}

# Transcribed field by field from a third-party C++ header that embeds LFM2-2.6B's config.
LFM2_2_6B = {
    "architectures": ["Lfm2ForCausalLM"],
    "block_auto_adjust_ff_dim": False,
    "block_dim": 2048,
    "block_ff_dim": 10752,
    "block_ffn_dim_multiplier": 1.0,
    "block_mlp_init_scale": 1.0,
    "block_multiple_of": 256,
    "block_norm_eps": 1e-05,
    "block_out_init_scale": 1.0,
    "block_use_swiglu": True,
    "block_use_xavier_init": True,
    "bos_token_id": 1,
    "conv_L_cache": 3,
    "conv_bias": False,
    "conv_dim": 2048,
    "conv_dim_out": 2048,
    "conv_use_xavier_init": True,
    "eos_token_id": 7,
    "hidden_size": 2048,
    "initializer_range": 0.02,
    "intermediate_size": 10752,
    "layer_types": [
        "conv", "conv", "full_attention", "conv", "conv", "full_attention",
        "conv", "conv", "conv", "full_attention", "conv", "conv",
        "conv", "full_attention", "conv", "conv", "conv", "full_attention",
        "conv", "conv", "conv", "full_attention", "conv", "conv",
        "full_attention", "conv", "conv", "full_attention", "conv", "conv",
    ],
    "max_position_embeddings": 128000,
    "model_type": "lfm2",
    "norm_eps": 1e-05,
    "num_attention_heads": 32,
    "num_heads": 32,
    "num_hidden_layers": 30,
    "num_key_value_heads": 8,
    "pad_token_id": 0,
    "rope_theta": 1000000.0,
    "theta": 1000000.0,
    "tie_embedding": True,
    "torch_dtype": "bfloat16",
    "transformers_version": "4.55.0.dev0",
    "use_cache": True,
    "use_pos_enc": True,
    "vocab_size": 65536,
}

# Verbatim as copied into safety-research/circuit-tracer's Gemma 3 test (it only adds
# "_name_or_path", left out here).
GEMMA3_270M = {
    "_sliding_window_pattern": 6,
    "architectures": ["Gemma3ForCausalLM"],
    "attention_bias": False,
    "attention_dropout": 0.0,
    "attn_logit_softcapping": None,
    "bos_token_id": 2,
    "eos_token_id": 1,
    "final_logit_softcapping": None,
    "head_dim": 256,
    "hidden_activation": "gelu_pytorch_tanh",
    "hidden_size": 640,
    "initializer_range": 0.02,
    "intermediate_size": 2048,
    "layer_types": [
        "sliding_attention", "sliding_attention", "sliding_attention",
        "sliding_attention", "sliding_attention", "full_attention",
        "sliding_attention", "sliding_attention", "sliding_attention",
        "sliding_attention", "sliding_attention", "full_attention",
        "sliding_attention", "sliding_attention", "sliding_attention",
        "sliding_attention", "sliding_attention", "full_attention",
    ],
    "max_position_embeddings": 32768,
    "model_type": "gemma3_text",
    "num_attention_heads": 4,
    "num_hidden_layers": 18,
    "num_key_value_heads": 1,
    "pad_token_id": 0,
    "query_pre_attn_scalar": 256,
    "rms_norm_eps": 1e-06,
    "rope_local_base_freq": 10000.0,
    "rope_scaling": None,
    "rope_theta": 1000000.0,
    "sliding_window": 512,
    "torch_dtype": "bfloat16",
    "transformers_version": "4.55.0.dev0",
    "use_bidirectional_attention": False,
    "use_cache": True,
    "vocab_size": 262144,
}

# Trimmed third-party fixture of google/gemma-3-1b-pt (only what the count needs).
GEMMA3_1B = {
    "model_type": "gemma3_text",
    "hidden_size": 1152,
    "vocab_size": 262144,
    "num_hidden_layers": 26,
    "num_attention_heads": 4,
    "num_key_value_heads": 1,
    "head_dim": 256,
    "intermediate_size": 6912,
    "sliding_window_pattern": 6,
    "rope_local_base_freq": 10000.0,
    "rope_theta": 1000000.0,
    "sliding_window": 512,
    "max_position_embeddings": 32768,
    "query_pre_attn_scalar": 256,
}

QWEN3_0_6B = {
    "architectures": ["Qwen3ForCausalLM"],
    "attention_bias": False,
    "attention_dropout": 0.0,
    "bos_token_id": 151643,
    "eos_token_id": 151645,
    "head_dim": 128,
    "hidden_act": "silu",
    "hidden_size": 1024,
    "initializer_range": 0.02,
    "intermediate_size": 3072,
    "max_position_embeddings": 40960,
    "max_window_layers": 28,
    "model_type": "qwen3",
    "num_attention_heads": 16,
    "num_hidden_layers": 28,
    "num_key_value_heads": 8,
    "rms_norm_eps": 1e-06,
    "rope_scaling": None,
    "rope_theta": 1000000,
    "sliding_window": None,
    "tie_word_embeddings": True,
    "torch_dtype": "bfloat16",
    "transformers_version": "4.51.0",
    "use_cache": True,
    "use_sliding_window": False,
    "vocab_size": 151936,
}

_QWEN35_LAYER_TYPES_24 = (["linear_attention"] * 3 + ["full_attention"]) * 6

QWEN3_5_0_8B = {
    "architectures": ["Qwen3_5ForConditionalGeneration"],
    "model_type": "qwen3_5",
    "image_token_id": 248056,
    "video_token_id": 248057,
    "vision_start_token_id": 248053,
    "vision_end_token_id": 248054,
    "tie_word_embeddings": True,
    "text_config": {
        "model_type": "qwen3_5_text",
        "vocab_size": 248320,
        "hidden_size": 1024,
        "intermediate_size": 3584,
        "num_hidden_layers": 24,
        "num_attention_heads": 8,
        "num_key_value_heads": 2,
        "head_dim": 256,
        "hidden_act": "silu",
        "attention_bias": False,
        "attn_output_gate": True,
        "linear_num_key_heads": 16,
        "linear_num_value_heads": 16,
        "linear_key_head_dim": 128,
        "linear_value_head_dim": 128,
        "linear_conv_kernel_dim": 4,
        "rms_norm_eps": 1e-06,
        "full_attention_interval": 4,
        "max_position_embeddings": 262144,
        "tie_word_embeddings": True,
        "mtp_num_hidden_layers": 1,
        "mtp_use_dedicated_embeddings": False,
        "mamba_ssm_dtype": "float32",
        "eos_token_id": 248044,
        "layer_types": list(_QWEN35_LAYER_TYPES_24),
        "rope_parameters": {
            "mrope_interleaved": True,
            "mrope_section": [11, 11, 10],
            "rope_type": "default",
            "rope_theta": 10000000,
            "partial_rotary_factor": 0.25,
        },
    },
    "vision_config": {
        "model_type": "qwen3_5",
        "depth": 12,
        "hidden_size": 768,
        "hidden_act": "gelu_pytorch_tanh",
        "num_heads": 12,
        "intermediate_size": 3072,
        "in_channels": 3,
        "patch_size": 16,
        "temporal_patch_size": 2,
        "spatial_merge_size": 2,
        "out_hidden_size": 1024,
        "num_position_embeddings": 2304,
        "deepstack_visual_indexes": [],
    },
}

QWEN3_5_2B_TEXT = {
    "model_type": "qwen3_5_text",
    "attn_output_gate": True,
    "eos_token_id": 248044,
    "full_attention_interval": 4,
    "head_dim": 256,
    "hidden_size": 2048,
    "intermediate_size": 6144,
    "layer_types": list(_QWEN35_LAYER_TYPES_24),
    "linear_conv_kernel_dim": 4,
    "linear_key_head_dim": 128,
    "linear_num_key_heads": 16,
    "linear_num_value_heads": 16,
    "linear_value_head_dim": 128,
    "max_position_embeddings": 262144,
    "num_attention_heads": 8,
    "num_hidden_layers": 24,
    "num_key_value_heads": 2,
    "rms_norm_eps": 1e-06,
    "tie_word_embeddings": True,
    "vocab_size": 248320,
    "rope_parameters": {
        "mrope_interleaved": True,
        "mrope_section": [11, 11, 10],
        "rope_type": "default",
        "rope_theta": 10000000,
        "partial_rotary_factor": 0.25,
    },
}

SMOLLM3_3B = {
    "architectures": ["SmolLM3ForCausalLM"],
    "attention_bias": False,
    "attention_dropout": 0.0,
    "bos_token_id": None,
    "eos_token_id": 128012,
    "hidden_act": "silu",
    "hidden_size": 2048,
    "initializer_range": 0.02,
    "intermediate_size": 11008,
    "max_position_embeddings": 65536,
    "max_window_layers": 28,
    "mlp_bias": False,
    "model_type": "smollm3",
    "no_rope_layer_interval": 4,
    "no_rope_layers": [int((i + 1) % 4 != 0) for i in range(36)],
    "num_attention_heads": 16,
    "num_hidden_layers": 36,
    "num_key_value_heads": 4,
    "pad_token_id": 128004,
    "pretraining_tp": 2,
    "rms_norm_eps": 1e-06,
    "rope_scaling": None,
    "rope_theta": 5000000.0,
    "sliding_window": None,
    "tie_word_embeddings": True,
    "torch_dtype": "bfloat16",
    "use_cache": False,
    "use_sliding_window": False,
    "vocab_size": 128256,
}

# name -> (config, what is counted, published total or None, source of that figure,
#          provenance of the config dict, required to match?)
CASES = [
    ("LiquidAI/LFM2-350M", LFM2_350M, "causal_lm", 354_483_968,
     "LiquidAI model card table ('Parameters 354,483,968')",
     "reconstructed: key set of LiquidAI's LFM2 configs, values from trimmed third-party fixtures", True),
    ("LiquidAI/LFM2-1.2B", LFM2_1_2B, "causal_lm", 1_170_340_608,
     "LiquidAI model card table ('Parameters 1,170,340,608')",
     "third-party copy labelled verbatim", True),
    ("LiquidAI/LFM2-2.6B", LFM2_2_6B, "causal_lm", 2_569_272_320,
     "LiquidAI model card table ('Parameters 2,569,272,320')",
     "transcribed from a third-party C++ header", True),
    ("google/gemma-3-270m", GEMMA3_270M, "causal_lm", 268_098_176,
     "issue 28 brief / design.md (transformers count)",
     "verbatim copy in safety-research/circuit-tracer tests", True),
    ("google/gemma-3-1b-pt", GEMMA3_1B, "causal_lm", 999_885_952,
     "several third-party loads of google/gemma-3-1b-it / -pt (transformers, KerasHub, GGUF): 999,885,952",
     "trimmed third-party fixture", True),
    ("Qwen/Qwen3-0.6B", QWEN3_0_6B, "causal_lm", 596_049_920,
     "issue 28 brief / design.md; also a third-party 'Params 596,049,920' table",
     "reconstructed from printed AutoConfig + third-party fixtures", True),
    ("Qwen/Qwen3.5-0.8B (text: Qwen3_5ForCausalLM)", QWEN3_5_0_8B, "qwen3_5_text", 752_393_024,
     "several third-party loads of Qwen3_5ForCausalLM / the 320 text tensors: 752,393,024",
     "third-party 'compact mirror' of the config + field-by-field fixtures", True),
    ("Qwen/Qwen3.5-0.8B (whole: Qwen3_5ForConditionalGeneration)", QWEN3_5_0_8B, "qwen3_5_vlm", 852_985_920,
     "several third-party loads of the checkpoint ('852,985,920'; 'frozen 100,592,896' vision)",
     "as above", True),
    ("Qwen/Qwen3.5-2B (text)", QWEN3_5_2B_TEXT, "qwen3_5_text_only", 1_881_825_088,
     "one third-party table ('text tower 1,881,825,088')",
     "third-party fixture of text_config", False),
    ("HuggingFaceTB/SmolLM3-3B", SMOLLM3_3B, "causal_lm", 3_075_098_624,
     "several third-party counts (safetensors index, config-instantiated, GGUF header): 3,075,098,624",
     "reconstructed from several third-party fixtures", True),
]

# --------------------------------------------------------------------------- helpers


def linear(name, d_in, d_out, bias):
    """nn.Linear(d_in, d_out): weight (d_out, d_in) [+ bias (d_out,)]."""
    out = [(f"{name}.weight", (d_out, d_in))]
    if bias:
        out.append((f"{name}.bias", (d_out,)))
    return out


def norm(name, dim):
    return [(f"{name}.weight", (dim,))]


def gated_mlp(prefix, hidden, inter, bias, names=("gate_proj", "up_proj", "down_proj")):
    g, u, d = names
    return (linear(f"{prefix}.{g}", hidden, inter, bias) + linear(f"{prefix}.{u}", hidden, inter, bias)
            + linear(f"{prefix}.{d}", inter, hidden, bias))


def numel(tensors):
    return sum(prod(shape) for _, shape in tensors)


# --------------------------------------------------------------------------- LFM2


def lfm2_resolve(c):
    """Lfm2Config.__post_init__ (transformers 5.25.0) plus the MLP width rule of Lfm2MLP."""
    n = c.get("num_hidden_layers", 32)
    layer_types = c.get("layer_types")
    if layer_types is None:
        idxs = c.get("full_attn_idxs")
        if idxs is None:
            idxs = list(range(n))  # default: EVERY layer is attention
        layer_types = ["full_attention" if i in idxs else "conv" for i in range(n)]
    hidden = c.get("hidden_size", 2560)
    heads = c.get("num_attention_heads", 32)
    inter = c.get("block_ff_dim", c.get("intermediate_size", 12288))  # block_ff_dim wins
    ff = inter
    if c.get("block_auto_adjust_ff_dim", True):
        ff = int(2 * ff / 3)
        mult = c.get("block_ffn_dim_multiplier", 1.0)
        if mult is not None:  # rounding happens ONLY inside this branch in transformers
            ff = int(mult * ff)
            m = c.get("block_multiple_of", 256)
            ff = m * ((ff + m - 1) // m)
    return {
        "vocab": c.get("vocab_size", 65536),
        "hidden": hidden,
        "heads": heads,
        "kv_heads": c.get("num_key_value_heads", 8),
        "head_dim": c.get("head_dim") or hidden // heads,  # an extra "head_dim" key is honoured
        "ffn": ff,
        "conv_bias": c.get("conv_bias", False),
        "l_cache": c.get("conv_L_cache", 3),
        "layer_types": layer_types,
        "tied": c.get("tie_embedding", c.get("tie_word_embeddings", True)),
    }


def lfm2_layer(r, i, kind):
    p, h, hd = f"model.layers.{i}", r["hidden"], r["head_dim"]
    t = []
    if kind == "conv":
        b = r["conv_bias"]
        t += [(f"{p}.conv.conv.weight", (h, 1, r["l_cache"]))]
        if b:
            t += [(f"{p}.conv.conv.bias", (h,))]
        t += linear(f"{p}.conv.in_proj", h, 3 * h, b) + linear(f"{p}.conv.out_proj", h, h, b)
    else:
        t += (linear(f"{p}.self_attn.q_proj", h, r["heads"] * hd, False)
              + linear(f"{p}.self_attn.k_proj", h, r["kv_heads"] * hd, False)
              + linear(f"{p}.self_attn.v_proj", h, r["kv_heads"] * hd, False)
              + linear(f"{p}.self_attn.out_proj", r["heads"] * hd, h, False)
              + norm(f"{p}.self_attn.q_layernorm", hd) + norm(f"{p}.self_attn.k_layernorm", hd))
    t += gated_mlp(f"{p}.feed_forward", h, r["ffn"], False, ("w1", "w3", "w2"))
    t += norm(f"{p}.operator_norm", h) + norm(f"{p}.ffn_norm", h)
    return t


def lfm2_model(c):
    r = lfm2_resolve(c)
    t = [("model.embed_tokens.weight", (r["vocab"], r["hidden"]))]
    for i, kind in enumerate(r["layer_types"]):
        t += lfm2_layer(r, i, kind)
    t += norm("model.embedding_norm", r["hidden"])  # the FINAL norm, despite its name
    if not r["tied"]:
        t += linear("lm_head", r["hidden"], r["vocab"], False)
    return r, t


# --------------------------------------------------------------------------- Gemma 3 text


def gemma3_resolve(c):
    n = c.get("num_hidden_layers", 26)
    layer_types = c.get("layer_types")
    if layer_types is None:
        pattern = c.get("sliding_window_pattern", 6)  # "_sliding_window_pattern" is NOT read
        layer_types = ["sliding_attention" if (i + 1) % pattern else "full_attention" for i in range(n)]
    hidden, heads = c.get("hidden_size", 2304), c.get("num_attention_heads", 8)
    if hidden % heads:
        raise ValueError("Gemma3TextConfig refuses hidden_size % num_attention_heads != 0")
    return {
        "vocab": c.get("vocab_size", 262_208),
        "hidden": hidden,
        "heads": heads,
        "kv_heads": c.get("num_key_value_heads", 4),
        "head_dim": c.get("head_dim", 256),
        "ffn": c.get("intermediate_size", 9216),
        "bias": c.get("attention_bias", False),
        "layer_types": layer_types,
        "tied": c.get("tie_word_embeddings", True),
    }


def gemma3_layer(r, i, kind):
    p, h, hd, b = f"model.layers.{i}", r["hidden"], r["head_dim"], r["bias"]
    return (linear(f"{p}.self_attn.q_proj", h, r["heads"] * hd, b)
            + linear(f"{p}.self_attn.k_proj", h, r["kv_heads"] * hd, b)
            + linear(f"{p}.self_attn.v_proj", h, r["kv_heads"] * hd, b)
            + linear(f"{p}.self_attn.o_proj", r["heads"] * hd, h, b)
            + norm(f"{p}.self_attn.q_norm", hd) + norm(f"{p}.self_attn.k_norm", hd)
            + gated_mlp(f"{p}.mlp", h, r["ffn"], False)
            + norm(f"{p}.input_layernorm", h) + norm(f"{p}.post_attention_layernorm", h)
            + norm(f"{p}.pre_feedforward_layernorm", h) + norm(f"{p}.post_feedforward_layernorm", h))


def gemma3_model(c):
    r = gemma3_resolve(c)
    t = [("model.embed_tokens.weight", (r["vocab"], r["hidden"]))]  # embed_scale is a buffer
    for i, kind in enumerate(r["layer_types"]):
        t += gemma3_layer(r, i, kind)
    t += norm("model.norm", r["hidden"])
    if not r["tied"]:
        t += linear("lm_head", r["hidden"], r["vocab"], False)
    return r, t


# --------------------------------------------------------------------------- Qwen3


def qwen3_resolve(c):
    n = c.get("num_hidden_layers", 32)
    heads = c.get("num_attention_heads", 32)
    kv = c.get("num_key_value_heads", 32)
    return {
        "vocab": c.get("vocab_size", 151936),
        "hidden": c.get("hidden_size", 4096),
        "heads": heads,
        "kv_heads": heads if kv is None else kv,
        "head_dim": c.get("head_dim", 128),  # a declared field: default 128, NOT hidden/heads
        "ffn": c.get("intermediate_size", 22016),
        "bias": c.get("attention_bias", False),
        "layer_types": ["full_attention"] * n,  # sliding layers (if any) have the same tensors
        "tied": c.get("tie_word_embeddings", False),
    }


def qwen3_layer(r, i, kind):
    p, h, hd, b = f"model.layers.{i}", r["hidden"], r["head_dim"], r["bias"]
    return (linear(f"{p}.self_attn.q_proj", h, r["heads"] * hd, b)
            + linear(f"{p}.self_attn.k_proj", h, r["kv_heads"] * hd, b)
            + linear(f"{p}.self_attn.v_proj", h, r["kv_heads"] * hd, b)
            + linear(f"{p}.self_attn.o_proj", r["heads"] * hd, h, b)
            + norm(f"{p}.self_attn.q_norm", hd) + norm(f"{p}.self_attn.k_norm", hd)
            + gated_mlp(f"{p}.mlp", h, r["ffn"], False)
            + norm(f"{p}.input_layernorm", h) + norm(f"{p}.post_attention_layernorm", h))


def qwen3_model(c):
    r = qwen3_resolve(c)
    t = [("model.embed_tokens.weight", (r["vocab"], r["hidden"]))]
    for i, kind in enumerate(r["layer_types"]):
        t += qwen3_layer(r, i, kind)
    t += norm("model.norm", r["hidden"])
    if not r["tied"]:
        t += linear("lm_head", r["hidden"], r["vocab"], False)
    return r, t


# --------------------------------------------------------------------------- Qwen3.5


def qwen3_5_resolve(tc):
    n = tc.get("num_hidden_layers", 32)
    layer_types = tc.get("layer_types")
    if layer_types is None:
        interval = tc.get("full_attention_interval", 4)
        layer_types = ["linear_attention" if (i + 1) % interval else "full_attention" for i in range(n)]
    return {
        "vocab": tc.get("vocab_size", 248320),
        "hidden": tc.get("hidden_size", 4096),
        "heads": tc.get("num_attention_heads", 16),
        "kv_heads": tc.get("num_key_value_heads", 4),
        "head_dim": tc.get("head_dim", 256),
        "ffn": tc.get("intermediate_size", 12288),
        "bias": tc.get("attention_bias", False),
        "conv_k": tc.get("linear_conv_kernel_dim", 4),
        "lin_k_heads": tc.get("linear_num_key_heads", 16),
        "lin_v_heads": tc.get("linear_num_value_heads", 32),
        "lin_k_dim": tc.get("linear_key_head_dim", 128),
        "lin_v_dim": tc.get("linear_value_head_dim", 128),
        "layer_types": layer_types,
        "tied": tc.get("tie_word_embeddings", False),  # text default is False
    }


def qwen3_5_layer(r, i, kind, prefix="model"):
    p, h, b = f"{prefix}.layers.{i}", r["hidden"], r["bias"]
    t = []
    if kind == "linear_attention":
        key_dim = r["lin_k_heads"] * r["lin_k_dim"]
        value_dim = r["lin_v_heads"] * r["lin_v_dim"]
        conv_dim = 2 * key_dim + value_dim
        nv = r["lin_v_heads"]
        a = f"{p}.linear_attn"
        t += [(f"{a}.conv1d.weight", (conv_dim, 1, r["conv_k"])),  # depthwise, no bias
              (f"{a}.dt_bias", (nv,)),
              (f"{a}.A_log", (nv,))]
        t += norm(f"{a}.norm", r["lin_v_dim"])  # RMSNormGated over one head, shared by all heads
        t += linear(f"{a}.out_proj", value_dim, h, False)
        t += linear(f"{a}.in_proj_qkv", h, conv_dim, False)
        t += linear(f"{a}.in_proj_z", h, value_dim, False)
        t += linear(f"{a}.in_proj_b", h, nv, False)
        t += linear(f"{a}.in_proj_a", h, nv, False)
    else:
        hd = r["head_dim"]
        a = f"{p}.self_attn"
        t += (linear(f"{a}.q_proj", h, r["heads"] * hd * 2, b)  # query + output gate, always
              + linear(f"{a}.k_proj", h, r["kv_heads"] * hd, b)
              + linear(f"{a}.v_proj", h, r["kv_heads"] * hd, b)
              + linear(f"{a}.o_proj", r["heads"] * hd, h, b)
              + norm(f"{a}.q_norm", hd) + norm(f"{a}.k_norm", hd))
    t += gated_mlp(f"{p}.mlp", h, r["ffn"], False)
    t += norm(f"{p}.input_layernorm", h) + norm(f"{p}.post_attention_layernorm", h)
    return t


def qwen3_5_text_model(tc, prefix="model", lm_head=True, tied=None):
    r = qwen3_5_resolve(tc)
    if tied is not None:
        r["tied"] = tied
    t = [(f"{prefix}.embed_tokens.weight", (r["vocab"], r["hidden"]))]
    for i, kind in enumerate(r["layer_types"]):
        t += qwen3_5_layer(r, i, kind, prefix)
    t += norm(f"{prefix}.norm", r["hidden"])
    if lm_head and not r["tied"]:
        t += linear("lm_head", r["hidden"], r["vocab"], False)
    return r, t


def qwen3_5_vision(vc, prefix="model.visual"):
    d = vc.get("hidden_size", 1152)
    inter = vc.get("intermediate_size", 4304)
    k = (vc.get("temporal_patch_size", 2), vc.get("patch_size", 16), vc.get("patch_size", 16))
    cin = vc.get("in_channels", 3)
    merged = d * vc.get("spatial_merge_size", 2) ** 2
    t = [(f"{prefix}.patch_embed.proj.weight", (d, cin) + k), (f"{prefix}.patch_embed.proj.bias", (d,)),
         (f"{prefix}.pos_embed.weight", (vc.get("num_position_embeddings", 2304), d))]
    for i in range(vc.get("depth", 27)):
        p = f"{prefix}.blocks.{i}"
        t += [(f"{p}.norm1.weight", (d,)), (f"{p}.norm1.bias", (d,)),
              (f"{p}.norm2.weight", (d,)), (f"{p}.norm2.bias", (d,))]
        t += linear(f"{p}.attn.qkv", d, 3 * d, True) + linear(f"{p}.attn.proj", d, d, True)
        t += linear(f"{p}.mlp.linear_fc1", d, inter, True) + linear(f"{p}.mlp.linear_fc2", inter, d, True)
    t += [(f"{prefix}.merger.norm.weight", (d,)), (f"{prefix}.merger.norm.bias", (d,))]
    t += linear(f"{prefix}.merger.linear_fc1", merged, merged, True)
    t += linear(f"{prefix}.merger.linear_fc2", merged, vc.get("out_hidden_size", 3584), True)
    return t


# --------------------------------------------------------------------------- SmolLM3


def smollm3_resolve(c):
    n = c.get("num_hidden_layers", 36)
    hidden, heads = c.get("hidden_size", 2048), c.get("num_attention_heads", 16)
    kv = c.get("num_key_value_heads", 4)
    return {
        "vocab": c.get("vocab_size", 128256),
        "hidden": hidden,
        "heads": heads,
        "kv_heads": heads if kv is None else kv,
        "head_dim": c.get("head_dim", hidden // heads),  # no declared field; a JSON key is honoured
        "ffn": c.get("intermediate_size", 11008),
        "attn_bias": c.get("attention_bias", False),
        "mlp_bias": c.get("mlp_bias", False),
        "layer_types": ["full_attention"] * n,  # NoPE layers have the same tensors
        "tied": c.get("tie_word_embeddings", True),
    }


def smollm3_layer(r, i, kind):
    p, h, hd, b = f"model.layers.{i}", r["hidden"], r["head_dim"], r["attn_bias"]
    return (linear(f"{p}.self_attn.q_proj", h, r["heads"] * hd, b)
            + linear(f"{p}.self_attn.k_proj", h, r["kv_heads"] * hd, b)
            + linear(f"{p}.self_attn.v_proj", h, r["kv_heads"] * hd, b)
            + linear(f"{p}.self_attn.o_proj", r["heads"] * hd, h, b)
            + gated_mlp(f"{p}.mlp", h, r["ffn"], r["mlp_bias"])
            + norm(f"{p}.input_layernorm", h) + norm(f"{p}.post_attention_layernorm", h))


def smollm3_model(c):
    r = smollm3_resolve(c)
    t = [("model.embed_tokens.weight", (r["vocab"], r["hidden"]))]
    for i, kind in enumerate(r["layer_types"]):
        t += smollm3_layer(r, i, kind)
    t += norm("model.norm", r["hidden"])
    if not r["tied"]:
        t += linear("lm_head", r["hidden"], r["vocab"], False)
    return r, t


# --------------------------------------------------------------------------- dispatch

FAMILY = {
    "lfm2": (lfm2_model, lfm2_layer),
    "gemma3_text": (gemma3_model, gemma3_layer),
    "qwen3": (qwen3_model, qwen3_layer),
    "smollm3": (smollm3_model, smollm3_layer),
}


def model_tensors(cfg, what):
    if what == "qwen3_5_text":
        return qwen3_5_text_model(cfg["text_config"])
    if what == "qwen3_5_text_only":
        return qwen3_5_text_model(cfg)
    if what == "qwen3_5_vlm":
        tc = cfg["text_config"]
        r, t = qwen3_5_text_model(tc, prefix="model.language_model", lm_head=False)
        t += qwen3_5_vision(cfg["vision_config"])
        if not cfg.get("tie_word_embeddings", False):  # the TOP-LEVEL flag decides for the VLM
            t += linear("lm_head", r["hidden"], r["vocab"], False)
        return r, t
    return FAMILY[cfg["model_type"]][0](cfg)


def layer_tables(cfg, what):
    if what.startswith("qwen3_5"):
        tc = cfg.get("text_config", cfg)
        r = qwen3_5_resolve(tc)
        fn = qwen3_5_layer
    else:
        model_fn, fn = FAMILY[cfg["model_type"]]
        r, _ = model_fn(cfg)
    seen = {}
    for i, kind in enumerate(r["layer_types"]):
        seen.setdefault(kind, i)
    return {kind: fn(r, i, kind) for kind, i in seen.items()}


# --------------------------------------------------------------------------- optional transformers check


def transformers_check(name, cfg, what, total):
    try:
        import transformers  # noqa: F401
        from transformers import AutoConfig
    except Exception as e:  # pragma: no cover
        print(f"  transformers: not importable ({e.__class__.__name__})")
        return
    conf = AutoConfig.for_model(**json.loads(json.dumps(cfg)))
    text = conf.get_text_config() if what.startswith("qwen3_5_text") or what == "qwen3_5_vlm" else conf
    lt = list(getattr(text, "layer_types", []) or [])
    mine = layer_tables_kinds(cfg, what)
    msg = [f"layer_types {'same' if lt == mine else 'DIFFER'}"]
    if cfg.get("model_type") == "lfm2":
        msg.append(f"intermediate_size(before MLP rule)={text.intermediate_size}")
    msg.append(f"tie={getattr(conf, 'tie_word_embeddings', None)}")
    try:
        import torch
        from transformers import AutoModelForCausalLM, AutoModelForImageTextToText
        with torch.device("meta"):
            if what == "qwen3_5_vlm":
                m = AutoModelForImageTextToText.from_config(conf)
            else:
                m = AutoModelForCausalLM.from_config(text if what == "qwen3_5_text" else conf)
        n = sum(p.numel() for p in m.parameters())
        msg.append(f"meta count {n:,} ({'same' if n == total else 'DIFFERS'})")
    except ImportError:
        msg.append("torch absent: no meta instantiation")
    print("  transformers: " + ", ".join(msg))


def layer_tables_kinds(cfg, what):
    if what.startswith("qwen3_5"):
        return qwen3_5_resolve(cfg.get("text_config", cfg))["layer_types"]
    return FAMILY[cfg["model_type"]][0](cfg)[0]["layer_types"]


# --------------------------------------------------------------------------- main


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--tables", action="store_true", help="print every tensor of one layer per kind")
    ap.add_argument("--transformers", action="store_true", help="cross-check with transformers' config classes")
    args = ap.parse_args()
    failed = 0
    for name, cfg, what, published, source, provenance, required in CASES:
        r, tensors = model_tensors(cfg, what)
        total = numel(tensors)
        names = [n for n, _ in tensors]
        assert len(names) == len(set(names)), f"duplicate tensor names in {name}"
        if published is None:
            verdict = "no published figure"
        elif total == published:
            verdict = "MATCH"
        else:
            verdict = f"DIFF {total - published:+,}"
            failed += required
        print(f"{name}: {total:,} vs published {published:,}  [{verdict}]  "
              f"({len(tensors)} tensors; tied={r['tied']})")
        print(f"  published: {source}\n  config: {provenance}")
        if args.tables:
            for kind, layer in layer_tables(cfg, what).items():
                print(f"  one '{kind}' layer: {numel(layer):,}")
                for n, s in layer:
                    print(f"    {n.split('.', 3)[-1]:<40} {str(s):<22} {prod(s):>12,}")
        if args.transformers:
            transformers_check(name, cfg, what, total)
    print("all required totals match" if not failed else f"{failed} required total(s) differ")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
