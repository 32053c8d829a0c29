//! Candidates as genomes: the mixed-radix id of a point, its genome (one value index per
//! axis), the model a genome stands for (`decode`, with the stack axes applied), and the
//! genome of a given spec (`find`).

use super::{AXES, ffn_from_ratio, position_of};
use super::{
    FfnSize, Genome, Heads, Kv, LocalMixer, Placement, SearchSpace, SkipReason, StackAxes,
};
use tailor_spec::ModelSpec;

impl SearchSpace {
    /// Mixed-radix id of a genome (axis 0 varies slowest).
    pub fn id_of(&self, g: &Genome) -> u64 {
        self.lens
            .iter()
            .zip(g)
            .fold(0u64, |acc, (&len, &gi)| acc * len + gi as u64)
    }

    /// Genome of a mixed-radix id (`id < size()`).
    pub fn genome(&self, mut id: u64) -> Genome {
        let mut g = [0u32; AXES];
        for axis in (0..AXES).rev() {
            let len = self.lens[axis];
            g[axis] = (id % len) as u32;
            id /= len;
        }
        g
    }

    /// The model a genome stands for, or why it is not a buildable model.
    pub fn decode(&self, g: &Genome) -> Result<ModelSpec, SkipReason> {
        let hidden = self.hidden[g[1] as usize];
        let (num_heads, head_dim) = match &self.heads {
            Heads::Count(h) => (h[g[3] as usize], None),
            Heads::Dim(d) => {
                let d = d[g[4] as usize];
                if !hidden.is_multiple_of(d) {
                    return Err("head_dim does not divide hidden_size");
                }
                (hidden / d, None)
            }
            Heads::Both(h, d) => (h[g[3] as usize], Some(d[g[4] as usize])),
        };
        let num_kv_heads = match &self.kv {
            Kv::Count(k) => k[g[5] as usize],
            Kv::Group(groups) => {
                let group = groups[g[5] as usize];
                if !num_heads.is_multiple_of(group) {
                    return Err("kv_group does not divide num_heads");
                }
                num_heads / group
            }
        };
        let intermediate_size = match &self.ffn_size {
            FfnSize::Size(s) => s[g[6] as usize],
            FfnSize::Ratio(ratios, multiple) => {
                let size = ffn_from_ratio(ratios[g[6] as usize], hidden, *multiple);
                // Two ratios may round to one size: keep the first, so no model appears twice.
                if ratios[..g[6] as usize]
                    .iter()
                    .any(|&r| ffn_from_ratio(r, hidden, *multiple) == size)
                {
                    return Err(
                        "ffn_ratio rounds to the same intermediate_size as a smaller ratio",
                    );
                }
                size
            }
        };
        let m = &self.file.model;
        let spec = ModelSpec {
            vocab_size: self.vocab[g[0] as usize],
            hidden_size: hidden,
            num_layers: self.layers[g[2] as usize],
            num_heads,
            num_kv_heads,
            head_dim,
            intermediate_size,
            ffn: self.ffn[g[7] as usize],
            activation: self.activation[g[8] as usize],
            norm: self.norm[g[9] as usize],
            norm_bias: self.norm_bias[g[10] as usize],
            norm_eps: m.norm_eps.unwrap_or(1e-5),
            qkv_bias: self.qkv_bias[g[11] as usize],
            o_bias: self.o_bias[g[12] as usize],
            mlp_bias: self.mlp_bias[g[13] as usize],
            tie_embeddings: self.tie[g[14] as usize],
            rope_theta: m.rope_theta.unwrap_or(10_000.0),
            max_position_embeddings: m.max_position_embeddings.unwrap_or(2048),
            stack: None,
        };
        let spec = match &m.stack {
            None => spec,
            Some(st) => self.stacked(spec, st, g)?,
        };
        spec.validate().map_err(|e| match e.key.as_str() {
            "num_heads" => "num_heads does not divide hidden_size",
            "num_kv_heads" => "num_kv_heads does not divide num_heads",
            "head_dim" => "head_dim is odd or too large",
            "norm_bias" => "norm_bias needs layernorm",
            k if k.starts_with("stack") => "a layer kind of the stack is not buildable",
            _ => "a size is zero or above the supported maximum",
        })?;
        Ok(spec)
    }

    /// The dense spec of a genome with the stack axes applied.
    fn stacked(
        &self,
        mut spec: ModelSpec,
        st: &StackAxes,
        g: &Genome,
    ) -> Result<ModelSpec, SkipReason> {
        use tailor_spec::{LayerKind, MixerKind, Stack};
        let local = self.local[g[15] as usize];
        let placement = &st.global[g[16] as usize];
        let window = self.window[g[17] as usize];
        // Axes that do not apply keep their first value, so no model appears twice.
        if local != LocalMixer::Sliding && g[17] > 0 {
            return Err("the window applies to sliding layers only");
        }
        if local == LocalMixer::Attention {
            if g[16] > 0 {
                return Err("global placement applies to a mixed stack only");
            }
            if st.layout == tailor_spec::Layout::Llama && !st.qk_norm {
                return Ok(spec);
            }
        }
        let attention = |window: Option<u64>, gate: bool| LayerKind {
            mixer: Some(MixerKind::Attention),
            qk_norm: st.qk_norm.then_some(true),
            output_gate: gate.then_some(true),
            window,
            ..LayerKind::default()
        };
        let local_kind = match local {
            LocalMixer::Attention => attention(None, st.output_gate),
            LocalMixer::Sliding => attention(Some(window), false),
            LocalMixer::ShortConv => LayerKind {
                mixer: Some(MixerKind::ShortConv),
                kernel: Some(st.conv_kernel),
                ..LayerKind::default()
            },
            LocalMixer::LinearAttention => {
                let l = st
                    .linear
                    .ok_or("linear_attention needs [model.stack.linear]")?;
                LayerKind {
                    mixer: Some(MixerKind::LinearAttention),
                    key_heads: Some(l.key_heads),
                    value_heads: Some(l.value_heads),
                    key_head_dim: Some(l.key_head_dim),
                    value_head_dim: Some(l.value_head_dim),
                    conv_kernel: Some(l.conv_kernel),
                    ..LayerKind::default()
                }
            }
            LocalMixer::None => LayerKind {
                mixer: Some(MixerKind::None),
                ..LayerKind::default()
            },
        };
        let n = spec.num_layers;
        let mut stack = Stack {
            layout: st.layout,
            pattern: vec![],
            at: Default::default(),
            kinds: Default::default(),
        };
        if local == LocalMixer::Attention {
            stack.pattern = vec!["global".into()];
            stack
                .kinds
                .insert("global".into(), attention(None, st.output_gate));
        } else {
            match placement {
                Placement::Every(every) => {
                    if *every > n {
                        return Err("global placement puts no global layer within num_layers");
                    }
                    stack.pattern = vec!["local".into(); *every as usize - 1];
                    stack.pattern.push("global".into());
                }
                Placement::At(at) => {
                    if at.iter().any(|&i| i >= n) {
                        return Err("a global layer index is beyond num_layers");
                    }
                    stack.pattern = vec!["local".into()];
                    stack.at.insert("global".into(), at.clone());
                }
            }
            stack.kinds.insert("local".into(), local_kind);
            stack
                .kinds
                .insert("global".into(), attention(None, st.output_gate));
            if !stack.kind_names(n).contains(&"local") {
                return Err("global placement leaves no local layer");
            }
        }
        spec.stack = Some(stack);
        Ok(spec)
    }

    /// The genome of a spec, if the space contains it (ignoring norm_eps, rope_theta and
    /// max_position_embeddings, which are not dimensions).
    pub fn find(&self, spec: &ModelSpec) -> Option<Genome> {
        let pos = |v: &[u64], x: u64| v.iter().position(|&y| y == x).map(|i| i as u32);
        let mut g = [0u32; AXES];
        g[0] = pos(&self.vocab, spec.vocab_size)?;
        g[1] = pos(&self.hidden, spec.hidden_size)?;
        g[2] = pos(&self.layers, spec.num_layers)?;
        match &self.heads {
            Heads::Count(h) => g[3] = pos(h, spec.num_heads)?,
            Heads::Dim(d) => g[4] = pos(d, spec.head_dim())?,
            Heads::Both(h, d) => {
                g[3] = pos(h, spec.num_heads)?;
                g[4] = pos(d, spec.head_dim())?;
            }
        }
        g[5] = match &self.kv {
            Kv::Count(k) => pos(k, spec.num_kv_heads)?,
            Kv::Group(groups) => pos(groups, spec.num_heads / spec.num_kv_heads)?,
        };
        g[6] = match &self.ffn_size {
            FfnSize::Size(s) => pos(s, spec.intermediate_size)?,
            FfnSize::Ratio(ratios, multiple) => ratios.iter().position(|&r| {
                ffn_from_ratio(r, spec.hidden_size, *multiple) == spec.intermediate_size
            })? as u32,
        };
        g[7] = position_of(&self.ffn, spec.ffn)?;
        g[8] = position_of(&self.activation, spec.activation)?;
        g[9] = position_of(&self.norm, spec.norm)?;
        g[10] = position_of(&self.norm_bias, spec.norm_bias)?;
        g[11] = position_of(&self.qkv_bias, spec.qkv_bias)?;
        g[12] = position_of(&self.o_bias, spec.o_bias)?;
        g[13] = position_of(&self.mlp_bias, spec.mlp_bias)?;
        g[14] = position_of(&self.tie, spec.tie_embeddings)?;
        if spec.stack.is_some() {
            // A mixed stack is found by decoding the candidates with its dense genes.
            let lens = self.lens;
            for local in 0..lens[15] as u32 {
                for global in 0..lens[16] as u32 {
                    for window in 0..lens[17] as u32 {
                        (g[15], g[16], g[17]) = (local, global, window);
                        if self.decode(&g).is_ok_and(|d| d.layers() == spec.layers()) {
                            return Some(g);
                        }
                    }
                }
            }
            return None;
        }
        g[15] = position_of(&self.local, LocalMixer::Attention)?;
        let decoded = self.decode(&g).ok()?;
        (decoded.num_heads == spec.num_heads
            && decoded.head_dim() == spec.head_dim()
            && decoded.num_kv_heads == spec.num_kv_heads
            && decoded.stack.is_none())
        .then_some(g)
    }
}
