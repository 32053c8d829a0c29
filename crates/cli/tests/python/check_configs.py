"""Loads every exported config.json with Hugging Face transformers and checks it against
the spec.toml beside it.

Usage: check_configs.py MANIFEST.json
MANIFEST: [{"dir": ".../export", "params": 15471104}, ...] where `params` is tailor's exact
count of the spec. For each folder: `AutoConfig.from_pretrained(dir)` must give the
expected config class, every architecture field must equal the spec's, and the parameter
count that follows from the *config's* fields (Llama/PhoneLM layout, computed here
independently of tailor) must equal tailor's. Configs of the mixed-layer families (lfm2,
gemma3_text, qwen3, qwen3_5_text, smollm3) are counted from the fields transformers resolves
(layer types, widths, its defaults) with the formulas of docs/design/families.md.

transformers ships no PhoneLM: mllmTeam's remote code defines a LlamaConfig copy with
model_type "phonelm"; a stand-in of that class is registered here, as
`trust_remote_code=True` would. Needs transformers only (no torch).
"""

import json
import sys
import tomllib

from transformers import AutoConfig, LlamaConfig


class PhoneLMConfig(LlamaConfig):
    model_type = "phonelm"


AutoConfig.register("phonelm", PhoneLMConfig)

ACT = {"relu": "relu", "silu": "silu", "gelu": "gelu", "gelu_tanh": "gelu_pytorch_tanh"}


def params_of(cfg):
    """Parameters of LlamaForCausalLM / PhoneLMForCausalLM built from this config."""
    h, inter, layers = cfg.hidden_size, cfg.intermediate_size, cfg.num_hidden_layers
    heads, kv = cfg.num_attention_heads, cfg.num_key_value_heads
    head_dim = getattr(cfg, "head_dim", None) or h // heads
    bias = bool(getattr(cfg, "attention_bias", False))
    mlp_bias = bool(getattr(cfg, "mlp_bias", False))
    q, k = heads * head_dim, kv * head_dim
    attn = h * q + 2 * h * k + q * h + (q + 2 * k + h if bias else 0)
    mlp = 3 * h * inter + (2 * inter + h if mlp_bias else 0)
    per_layer = attn + mlp + 2 * h
    emb = cfg.vocab_size * h
    head = 0 if cfg.tie_word_embeddings else cfg.vocab_size * h
    return emb + layers * per_layer + h + head


FAMILY_CLASS = {
    "lfm2": "Lfm2Config",
    "gemma3_text": "Gemma3TextConfig",
    "qwen3": "Qwen3Config",
    "qwen3_5_text": "Qwen3_5TextConfig",
    "smollm3": "SmolLM3Config",
}


def family_params(model_type, cfg):
    """Parameters of the family's *ForCausalLM built from this config, from the fields
    transformers resolved (layer types, widths, defaults), with the per-layer formulas of
    docs/design/families.md; independent of tailor's accounting."""
    h, V, n = cfg.hidden_size, cfg.vocab_size, cfg.num_hidden_layers
    H = cfg.num_attention_heads
    K = cfg.num_key_value_heads or H
    d = getattr(cfg, "head_dim", None) or h // H
    bias = bool(getattr(cfg, "attention_bias", False))
    attn_bias = H * d + 2 * K * d + h if bias else 0
    if model_type == "lfm2":
        F = cfg.intermediate_size
        if cfg.block_auto_adjust_ff_dim:
            F = int(2 * F / 3)
            if cfg.block_ffn_dim_multiplier is not None:
                F = int(cfg.block_ffn_dim_multiplier * F)
                m = cfg.block_multiple_of
                F = m * ((F + m - 1) // m)
        L = cfg.conv_L_cache
        conv = 4 * h * h + h * L + 3 * h * F + 2 * h + (5 * h if cfg.conv_bias else 0)
        attn = 2 * h * H * d + 2 * h * K * d + 2 * d + 3 * h * F + 2 * h
        types = cfg.layer_types
        layers = sum(conv if t == "conv" else attn for t in types)
    elif model_type == "gemma3_text":
        F = cfg.intermediate_size
        layers = n * (2 * h * H * d + 2 * h * K * d + 2 * d + 3 * h * F + 4 * h + attn_bias)
    elif model_type == "qwen3":
        F = cfg.intermediate_size
        layers = n * (2 * h * H * d + 2 * h * K * d + 2 * d + 3 * h * F + 2 * h + attn_bias)
    elif model_type == "smollm3":
        F = cfg.intermediate_size
        mlp_bias = 2 * F + h if cfg.mlp_bias else 0
        layers = n * (2 * h * H * d + 2 * h * K * d + 3 * h * F + 2 * h + attn_bias + mlp_bias)
    elif model_type == "qwen3_5_text":
        F = cfg.intermediate_size
        nk, nv = cfg.linear_num_key_heads, cfg.linear_num_value_heads
        dk, dv = cfg.linear_key_head_dim, cfg.linear_value_head_dim
        kd, vd = nk * dk, nv * dv
        C = 2 * kd + vd
        delta = h * (C + 2 * vd + 2 * nv) + C * cfg.linear_conv_kernel_dim + 2 * nv + dv
        full_bias = 2 * H * d + 2 * K * d + h if bias else 0
        full = 3 * h * H * d + 2 * h * K * d + 2 * d + full_bias
        layers = sum(
            (full if t == "full_attention" else delta) + 3 * h * F + 2 * h
            for t in cfg.layer_types
        )
    else:
        raise ValueError(model_type)
    head = 0 if cfg.tie_word_embeddings else V * h
    return V * h + layers + h + head


def check_family(entry, model_type):
    folder = entry["dir"]
    with open(f"{folder}/spec.toml", "rb") as f:
        spec = tomllib.load(f)["model"]
    cfg = AutoConfig.from_pretrained(folder)
    problems = []
    if type(cfg).__name__ != FAMILY_CLASS[model_type]:
        problems.append(f"class {type(cfg).__name__}, expected {FAMILY_CLASS[model_type]}")
    for key, value in [
        ("vocab_size", spec["vocab_size"]),
        ("hidden_size", spec["hidden_size"]),
        ("num_hidden_layers", spec["num_layers"]),
        ("tie_word_embeddings", spec["tie_embeddings"]),
    ]:
        if getattr(cfg, key, None) != value:
            problems.append(f"{key}: config {getattr(cfg, key, None)!r}, spec {value!r}")
    n = family_params(model_type, cfg)
    if n != entry["params"]:
        problems.append(f"parameters from the config {n:,}, tailor's count {entry['params']:,}")
    return problems


def check(entry):
    folder = entry["dir"]
    with open(f"{folder}/config.json") as f:
        model_type = json.load(f)["model_type"]
    if model_type in FAMILY_CLASS:
        return check_family(entry, model_type)
    with open(f"{folder}/spec.toml", "rb") as f:
        spec = tomllib.load(f)["model"]
    cfg = AutoConfig.from_pretrained(folder)
    with open(f"{folder}/config.json") as f:
        model_type = json.load(f)["model_type"]
    expected_class = {"llama": "LlamaConfig", "phonelm": "PhoneLMConfig"}[model_type]
    problems = []
    if type(cfg).__name__ != expected_class:
        problems.append(f"class {type(cfg).__name__}, expected {expected_class}")
    head_dim = spec.get("head_dim") or spec["hidden_size"] // spec["num_heads"]
    want = {
        "vocab_size": spec["vocab_size"],
        "hidden_size": spec["hidden_size"],
        "intermediate_size": spec["intermediate_size"],
        "num_hidden_layers": spec["num_layers"],
        "num_attention_heads": spec["num_heads"],
        "num_key_value_heads": spec["num_kv_heads"],
        "hidden_act": ACT[spec["activation"]],
        "rms_norm_eps": spec["norm_eps"],
        "rope_theta": spec["rope_theta"],
        "max_position_embeddings": spec["max_position_embeddings"],
        "tie_word_embeddings": spec["tie_embeddings"],
        "attention_bias": spec["o_bias"],
    }
    if model_type == "llama":
        want["head_dim"] = head_dim
        want["mlp_bias"] = spec["mlp_bias"]
    rope = getattr(cfg, "rope_parameters", None)
    for key, value in want.items():
        got = getattr(cfg, key, None)
        if key == "rope_theta" and got is None and isinstance(rope, dict):
            got = rope.get("rope_theta")  # transformers 5 keeps it in rope_parameters
        if got != value:
            problems.append(f"{key}: config {got!r}, spec {value!r}")
    if spec["ffn"] != "gated" or spec["norm"] != "rmsnorm" or spec["qkv_bias"] != spec["o_bias"]:
        problems.append("the spec is not expressible as a Llama config, yet one was exported")
    n = params_of(cfg)
    if n != entry["params"]:
        problems.append(f"parameters from the config {n:,}, tailor's count {entry['params']:,}")
    return problems


def main():
    with open(sys.argv[1]) as f:
        manifest = json.load(f)
    failed = 0
    for entry in manifest:
        problems = check(entry)
        status = "ok" if not problems else "FAILED"
        print(f"{status}: {entry['dir']} ({entry['params']:,} parameters)")
        for p in problems:
            print(f"    {p}")
        failed += bool(problems)
    print(f"{len(manifest) - failed}/{len(manifest)} exported configs load in transformers and match")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
