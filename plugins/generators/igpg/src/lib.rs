//! `igpg`: IGPG (Instruction-Guided Parameter Generation, Soro et al. 2025): weights as a
//! sequence of discrete tokens, generated autoregressively for an instruction.
//!
//! 1. A VQ-VAE over fixed-size chunks of the normalised flat parameter vector (in layout
//!    order, so a sequence runs layer by layer): an MLP encoder maps each chunk to a vector,
//!    quantised to its nearest codebook entry; an MLP decoder maps it back. Loss =
//!    reconstruction + `commitment` × ‖z_e − sg(e)‖², with the straight-through estimator for
//!    the encoder's gradient; the codebook follows exponential moving averages of the encoder
//!    outputs assigned to each code (VQ-VAE's EMA variant of the codebook term, which trained
//!    far more reliably here than the codebook loss under Adam). Codes unused for
//!    `reset_every` steps are reset to random encoder outputs (dead-code reset). Logged: reconstruction,
//!    codebook perplexity exp(H(code usage)).
//! 2. A decoder-only (causal) transformer over each checkpoint's code sequence, predicting
//!    token j from a prefix token and tokens < j. The prefix is the task's instruction
//!    embedding (the host's MiniLM text embedding: what the task classifies and the network)
//!    plus an architecture embedding (a projection of the layout's shapes), so one model can in
//!    principle serve several architectures.
//! 3. Sample: tokens one at a time (temperature `temperature`, Gumbel-max), decode every code,
//!    restore. `output = "reconstruct"` instead returns the VQ-VAE's reconstruction of the
//!    training checkpoints nearest to the target's condition (a diagnostic of the tokeniser).
//!
//! Several architectures (the paper's setting; `zoos = [...]` in the manifest): rows come
//! zero-padded to the widest; weights are then scaled by one overall factor (coordinates mean
//! different things in each layout), padding tokens do not count in the transformer's loss,
//! each row's prefix carries its own architecture, and `sample` generates as many tokens as the
//! target layout (`zoo.layout`) needs, prefixed with the target's architecture.

use weightlab_sdk::conditioning::{ConditionKind, TaskCondition, nearest_rows};
use weightlab_sdk::nn::{Act, Linear, Mlp, Transformer};
use weightlab_sdk::prelude::*;
use weightlab_sdk::weights::Normalizer;

/// What `sample` returns.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
enum Output {
    /// New weights from the transformer.
    Generate,
    /// The VQ-VAE's reconstructions of the training checkpoints nearest to the target's
    /// condition (checks the tokeniser loses nothing that matters).
    Reconstruct,
}

/// Configuration of `igpg`.
#[derive(Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields)]
struct Config {
    /// Parameters per chunk (token).
    #[schemars(range(min = 1))]
    chunk: usize,
    /// Codebook entries.
    #[schemars(range(min = 2))]
    codebook: usize,
    /// Width of a code vector.
    #[schemars(range(min = 1))]
    code_dim: usize,
    /// VQ-VAE training steps.
    vq_steps: usize,
    /// Weight β of the commitment loss.
    commitment: f32,
    /// Steps between dead-code resets (0: never).
    reset_every: usize,
    /// Transformer width, depth and heads.
    #[schemars(range(min = 1))]
    dim: usize,
    depth: usize,
    heads: usize,
    /// Transformer training steps.
    ar_steps: usize,
    /// Sampling temperature (0: always the most likely code).
    temperature: f32,
    /// Which task condition forms the prefix (`instruction`, IGPG's; or `support`).
    condition: ConditionKind,
    /// `generate`, or `reconstruct` (see the module docs).
    output: Output,
    /// Learning rate (AdamW) of both stages.
    lr: f32,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            chunk: 2,
            codebook: 512,
            code_dim: 16,
            vq_steps: 2000,
            commitment: 0.25,
            reset_every: 100,
            dim: 64,
            depth: 2,
            heads: 4,
            ar_steps: 2000,
            temperature: 0.5,
            condition: ConditionKind::Instruction,
            output: Output::Generate,
            lr: 1e-3,
        }
    }
}

/// Decay of the codebook's moving averages.
const EMA_DECAY: f32 = 0.9;

/// Width of the architecture descriptor: log-sizes of up to this many parameter tensors.
const ARCH_FEATURES: usize = 16;

/// The VQ-VAE tokeniser.
struct Tokenizer {
    encoder: Mlp,
    decoder: Mlp,
    codebook: Tensor,
    chunk: usize,
    /// Tokens per model.
    tokens: usize,
}

impl Tokenizer {
    /// Chunks of normalised weights (rows × varying) as (rows · tokens) × chunk, zero-padded.
    fn chunks(&self, x: &Tensor) -> Tensor {
        let (rows, p) = (x.shape()[0], x.shape()[1]);
        let padded = self.tokens * self.chunk;
        let x = if padded > p { Tensor::cat(&[x, &Tensor::zeros(&[rows, padded - p])], 1) } else { x.detach() };
        x.reshape(&[(rows * self.tokens) as i64, self.chunk as i64])
    }

    /// Index of the nearest code of every row of `ze` (N × code_dim).
    fn nearest(&self, ze: &Tensor) -> Tensor {
        let cross = ze.matmul(&self.codebook.transpose(0, 1));
        let norms = self.codebook.square().sum(1, false).unsqueeze(0);
        // argmin ‖z − e‖² = argmax (2 z·e − ‖e‖²)
        (&cross.affine(2.0, 0.0) - &norms).argmax(1)
    }

    /// Flat normalised weights (rows × p) from codes (rows × tokens).
    fn decode(&self, codes: &Tensor, p: usize) -> Tensor {
        let (rows, len) = (codes.shape()[0], codes.shape()[1]);
        let e = self.codebook.index_select(0, &codes.reshape(&[-1]));
        self.decoder.forward(&e).reshape(&[rows as i64, (len * self.chunk) as i64]).narrow(1, 0, p)
    }
}

/// exp(entropy) of how often each code is used: 1 (one code) to the codebook size (uniform).
fn perplexity(codes: &[f32], size: usize) -> f32 {
    let mut counts = vec![0usize; size];
    for &c in codes {
        if let Some(n) = counts.get_mut(c as usize) {
            *n += 1;
        }
    }
    let total = codes.len().max(1) as f32;
    let h: f32 = counts.iter().filter(|&&n| n > 0).map(|&n| n as f32 / total).map(|p| -p * p.ln()).sum();
    h.exp()
}

/// Trains the tokeniser on normalised weights `x`; returns it and every row's codes.
fn train_tokenizer(x: &Tensor, c: &Config, seed: u64, total: usize) -> Result<(Tokenizer, Tensor), String> {
    let (rows, p) = (x.shape()[0], x.shape()[1]);
    let tokens = p.div_ceil(c.chunk);
    let mut tk = Tokenizer {
        encoder: Mlp::new(&[c.chunk, 64, c.code_dim], Act::Silu, seed.wrapping_mul(53)),
        decoder: Mlp::new(&[c.code_dim, 64, c.chunk], Act::Silu, seed.wrapping_mul(59)),
        codebook: Tensor::zeros(&[c.codebook, c.code_dim]),
        chunk: c.chunk,
        tokens,
    };
    let xc = tk.chunks(x);
    let n = rows * tokens;
    // The codebook starts at encoder outputs of random chunks, where the data is.
    let picks = Tensor::randint(n, c.codebook, seed.wrapping_add(97));
    tk.codebook = tk.encoder.forward(&xc).detach().index_select(0, &picks);
    let nets: Vec<&Tensor> = tk.encoder.params().into_iter().chain(tk.decoder.params()).collect();
    let opt = Optimizer::new(OptimizerKind::Adamw, &nets, c.lr, 0.0);
    drop(nets);
    let identity = Tensor::eye(c.codebook);
    let mut used = vec![false; c.codebook];
    for step in 0..c.vq_steps {
        let ze = tk.encoder.forward(&xc);
        let idx = tk.nearest(&ze);
        let zq = tk.codebook.index_select(0, &idx);
        // Straight-through: the decoder sees the quantised vector, the encoder gets its gradient.
        let st = &ze + &(&zq - &ze).detach();
        let recon = tk.decoder.forward(&st).mse(&xc);
        let commit = ze.mse(&zq);
        let loss = &recon + &commit.affine(c.commitment, 0.0);
        opt.step_on(&loss);
        // The codebook moves by an exponential moving average towards the mean of the encoder
        // outputs assigned to each code (VQ-VAE's EMA update, in place of a codebook loss).
        let onehot = identity.index_select(0, &idx);
        let counts = onehot.sum(0, false).unsqueeze(1);
        let means = &onehot.transpose(0, 1).matmul(&ze.detach()) / &counts.clamp(1.0, f32::MAX);
        let assigned = counts.clamp(0.0, 1.0);
        tk.codebook = &tk.codebook - &(&(&tk.codebook - &means) * &assigned.affine(1.0 - EMA_DECAY, 0.0));
        let codes = idx.to_vec();
        for &k in &codes {
            if let Some(u) = used.get_mut(k as usize) {
                *u = true;
            }
        }
        if c.reset_every > 0 && (step + 1) % c.reset_every == 0 && step + 1 < c.vq_steps {
            // Dead codes restart at random encoder outputs, where the data is.
            let dead: Vec<usize> = (0..c.codebook).filter(|&k| !used[k]).collect();
            if !dead.is_empty() {
                let picks = Tensor::randint(n, c.codebook, seed.wrapping_add(step as u64 * 13 + 3));
                let fresh = ze.detach().index_select(0, &picks);
                let mask: Vec<f32> = (0..c.codebook).map(|k| if used[k] { 1.0 } else { 0.0 }).collect();
                let keep = Tensor::from_slice(&mask, &[c.codebook, 1]);
                tk.codebook = &(&tk.codebook * &keep) + &(&fresh * &keep.affine(-1.0, 1.0));
                log::metric("vq-dead-codes-reset", step, dead.len() as f32);
            }
            used = vec![false; c.codebook];
        }
        if step % 100 == 0 || step + 1 == c.vq_steps {
            log::metric("vq-reconstruction", step, recon.item());
            log::metric("vq-perplexity", step, perplexity(&codes, c.codebook));
            log::progress(step, total);
        }
    }
    let codes = tk.nearest(&tk.encoder.forward(&xc)).reshape(&[rows as i64, tokens as i64]).detach();
    let final_recon = tk.decode(&codes, p).mse(x).item();
    let perp = perplexity(&codes.to_vec(), c.codebook);
    log::message(&format!("VQ-VAE: {tokens} tokens of {} parameters per model, codebook {} (perplexity {perp:.1}), reconstruction MSE {final_recon:.5} (normalised weights)", c.chunk, c.codebook));
    if !final_recon.is_finite() {
        return Err("VQ-VAE training diverged (non-finite reconstruction)".into());
    }
    Ok((tk, codes))
}

/// The architecture descriptor of a layout: log2 of every dimension of its first parameter
/// tensors (1 × ARCH_FEATURES).
fn architecture(layout: &[Param]) -> Vec<f32> {
    let mut f: Vec<f32> = layout.iter().flat_map(|p| p.shape.iter().map(|&d| (d as f32).log2())).take(ARCH_FEATURES).collect();
    f.resize(ARCH_FEATURES, 0.0);
    f
}

/// How weights are scaled for the tokeniser.
enum Scaling {
    /// One architecture: varying coordinates, centred per coordinate, one overall scale.
    Coordinates(Normalizer),
    /// Several architectures: coordinates mean different things in each, so only one overall
    /// scale (padding stays 0).
    Global(f32),
}

impl Scaling {
    fn restore(&self, x: &Tensor) -> Tensor {
        match self {
            Scaling::Coordinates(n) => n.restore(x),
            Scaling::Global(scale) => x * *scale,
        }
    }
}

struct Igpg {
    config: Config,
    scaling: Scaling,
    /// Scaled values per sampled model (the target architecture's varying coordinates, or its
    /// parameters).
    width: usize,
    tokenizer: Tokenizer,
    condition: TaskCondition,
    /// Standardised training conditions (rows × dim) and codes (rows × tokens), for `reconstruct`.
    train_conditions: Tensor,
    train_codes: Tensor,
    prefix_cond: Linear,
    prefix_arch: Linear,
    /// Architecture descriptors of the training rows (rows × ARCH_FEATURES) and of the target.
    train_arch: Tensor,
    target_arch: Tensor,
    token_embedding: Tensor,
    positions: Tensor,
    transformer: Transformer,
    head: Linear,
}

impl Igpg {
    /// Logits (n × len × codebook) for prefix + `codes` (n × len − 1 tokens, or none).
    fn logits(&self, cond: &Tensor, arch: &Tensor, codes: Option<&Tensor>) -> Tensor {
        let n = cond.shape()[0];
        let prefix = (&self.prefix_cond.forward(cond) + &self.prefix_arch.forward(arch)).unsqueeze(1);
        let seq = match codes {
            Some(c) => Tensor::cat(&[&prefix, &self.token_embedding.embedding(c)], 1),
            None => prefix,
        };
        let len = seq.shape()[1];
        let h = &seq + &self.positions.narrow(0, 0, len).unsqueeze(0).expand(&[n, len, self.config.dim]);
        self.head.forward(&self.transformer.forward(&h))
    }
}

impl Method for Igpg {
    type Config = Config;
    const MIXED_ARCHITECTURES: bool = true;

    fn describe() -> About {
        About::generator(
            "igpg",
            env!("CARGO_PKG_VERSION"),
            "IGPG (Soro et al. 2025): a VQ-VAE tokenises chunks of the flat weights (codebook, commitment loss, straight-through estimator, dead-code reset) and a causal transformer generates the tokens layer by layer, conditioned on the task's instruction embedding and an architecture embedding.",
        )
    }

    fn check(zoo: &ZooPlan, config: &Config) -> Vec<Problem> {
        let mut problems: Vec<Problem> = zoo.needs_checkpoints(2).into_iter().chain(conditioning::check(zoo, config.condition)).collect();
        if config.heads > 0 && config.dim % config.heads != 0 {
            problems.push(Problem::at("dim", format!("dim = {} is not a multiple of heads = {}", config.dim, config.heads)));
        }
        if config.output == Output::Reconstruct && zoo.sources.len() > 1 {
            problems.push(Problem::at("output", "`output = \"reconstruct\"` needs checkpoints of one architecture, and `zoos` gives several".to_string()));
        }
        problems
    }

    fn fit(zoo: &Zoo, weights: Tensor, condition: Condition, config: Config, seed: u64) -> Result<Self, String> {
        let rows = weights.shape()[0];
        if rows < 2 {
            return Err("needs at least 2 training checkpoints".into());
        }
        if config.chunk == 0 || config.codebook < 2 || config.code_dim == 0 || config.dim == 0 || config.heads == 0 || config.dim % config.heads != 0 {
            return Err("chunk, code_dim and dim must be positive, codebook at least 2, and dim a multiple of heads".into());
        }
        let (task, train_conditions) = TaskCondition::fit(&condition, config.condition)?;
        let total = config.vq_steps + config.ar_steps;
        // Each row's architecture and real length (several zoos: rows are zero-padded).
        let mixed = zoo.sources.len() > 1;
        let source_of = |i: usize| zoo.checkpoints.get(i).and_then(|c| zoo.sources.get(c.source as usize));
        let (scaling, x, width, lengths) = if mixed {
            if config.output == Output::Reconstruct {
                return Err("`output = \"reconstruct\"` needs checkpoints of one architecture".into());
            }
            let scale = weights.square().sum_all().item() / weights.shape()[0].max(1) as f32;
            let counted: f32 = (0..rows).filter_map(|i| source_of(i)).map(|s| s.parameters as f32).sum::<f32>() / rows as f32;
            let scale = (scale / counted.max(1.0)).sqrt().max(1e-8);
            let lengths: Vec<usize> = (0..rows).map(|i| source_of(i).map_or(weights.shape()[1], |s| s.parameters as usize)).collect();
            (Scaling::Global(scale), &weights * (1.0 / scale), zoo.parameters as usize, lengths)
        } else {
            let (normalizer, x) = Normalizer::fit(&weights)?;
            let width = normalizer.varying;
            (Scaling::Coordinates(normalizer), x, width, vec![width; rows])
        };
        let (tokenizer, codes) = train_tokenizer(&x, &config, seed, total)?;
        let tokens = tokenizer.tokens.max(width.div_ceil(config.chunk));
        // Tokens past a row's own parameters are padding: they do not count in the loss.
        let mask: Vec<f32> = lengths.iter().flat_map(|&len| (0..tokenizer.tokens).map(move |j| if j < len.div_ceil(config.chunk) { 1.0 } else { 0.0 })).collect();
        let mask = Tensor::from_slice(&mask, &[rows * tokenizer.tokens]);
        let train_arch: Vec<f32> = (0..rows).flat_map(|i| architecture(source_of(i).map_or(&zoo.layout, |s| &s.layout))).collect();
        let d = config.dim;
        let me = Igpg {
            prefix_cond: Linear::new(task.dim, d, seed.wrapping_mul(67)),
            prefix_arch: Linear::new(ARCH_FEATURES, d, seed.wrapping_mul(71)),
            train_arch: Tensor::from_slice(&train_arch, &[rows, ARCH_FEATURES]),
            target_arch: Tensor::from_slice(&architecture(&zoo.layout), &[1, ARCH_FEATURES]),
            token_embedding: (Tensor::randn(&[config.codebook, d], seed.wrapping_mul(73)) * 0.02).parameter(),
            positions: (Tensor::randn(&[tokens, d], seed.wrapping_mul(79)) * 0.02).parameter(),
            transformer: Transformer::causal(d, config.depth, config.heads, seed.wrapping_mul(83)),
            head: Linear::new(d, config.codebook, seed.wrapping_mul(89)),
            condition: task,
            train_conditions,
            train_codes: codes,
            scaling,
            width,
            tokenizer,
            config,
        };
        if mixed {
            let list: Vec<String> = zoo.sources.iter().map(|s| format!("{} {}", s.arch, s.parameters)).collect();
            log::message(&format!("learning from {} architectures ({}), generating {} parameters ({} tokens)", zoo.sources.len(), list.join(", "), zoo.parameters, width.div_ceil(me.config.chunk)));
        }
        let mut params: Vec<&Tensor> = vec![&me.token_embedding, &me.positions];
        params.extend(me.prefix_cond.params());
        params.extend(me.prefix_arch.params());
        params.extend(me.transformer.params());
        params.extend(me.head.params());
        let opt = Optimizer::new(OptimizerKind::Adamw, &params, me.config.lr, 1e-4);
        drop(params);
        // Teacher forcing: the prefix predicts token 0, token j − 1 predicts token j; a masked
        // cross-entropy over the tokens each row really has.
        let len = me.tokenizer.tokens;
        let inputs = me.train_codes.narrow(1, 0, len - 1);
        let targets = me.train_codes.reshape(&[-1]);
        let k = me.config.codebook;
        let onehot = Tensor::eye(k).index_select(0, &targets);
        let counted = mask.sum_all().item().max(1.0);
        for step in 0..me.config.ar_steps {
            let logits = me.logits(&me.train_conditions, &me.train_arch, (len > 1).then_some(&inputs));
            let logp = logits.reshape(&[(rows * len) as i64, k as i64]).log_softmax(1);
            let nll = (&logp * &onehot).sum(1, false) * -1.0;
            let loss = (&nll * &mask).sum_all() * (1.0 / counted);
            opt.step_on(&loss);
            if step % 100 == 0 || step + 1 == me.config.ar_steps {
                log::metric("token-loss", step, loss.item());
                log::progress(me.config.vq_steps + step, total);
            }
        }
        Ok(me)
    }

    fn sample(&mut self, n: usize, seed: u64, condition: &Condition) -> Result<Tensor, String> {
        let cond = self.condition.prepare(condition, n)?;
        let (p, arch) = (self.width, self.target_arch.expand(&[n, ARCH_FEATURES]));
        let codes = match self.config.output {
            Output::Reconstruct => self.train_codes.index_select(0, &nearest_rows(&self.train_conditions, &cond.narrow(0, 0, 1), n)),
            Output::Generate => {
                let mut codes: Option<Tensor> = None;
                for j in 0..p.div_ceil(self.config.chunk) {
                    let logits = self.logits(&cond, &arch, codes.as_ref()).narrow(1, j, 1).reshape(&[n as i64, self.config.codebook as i64]).detach();
                    let next = if self.config.temperature > 0.0 {
                        // Gumbel-max: argmax(logits / T + Gumbel noise) is a draw from softmax(logits / T).
                        let u = Tensor::rand(&[n, self.config.codebook], seed.wrapping_add(j as u64 * 7_919 + 1)).clamp(1e-9, 1.0 - 1e-7);
                        let gumbel = -(-u.log()).log();
                        (&logits.affine(1.0 / self.config.temperature, 0.0) + &gumbel).argmax(1)
                    } else {
                        logits.argmax(1)
                    };
                    let next = next.reshape(&[n as i64, 1]);
                    codes = Some(match codes {
                        Some(c) => Tensor::cat(&[&c, &next], 1),
                        None => next,
                    });
                }
                codes.ok_or("the model has no tokens")?
            }
        };
        Ok(self.scaling.restore(&self.tokenizer.decode(&codes, p)))
    }
}

weightlab_sdk::export_method!(Igpg);
