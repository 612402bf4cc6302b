//! An independent float64 reference for the optimizer and cross-entropy tests: the
//! network's forward pass, both losses and their backward pass on the flat parameter
//! layout (`W_1 (h_1 x d), b_1, .., W_o (m x h_k), b_o`), and the update rules that
//! PyTorch documents for `torch.optim.SGD` (no dampening), `Adam`, `AdamW` and
//! `torch.nn.utils.clip_grad_norm_`. Nothing here calls into flowmlp's kernels.
#![allow(dead_code)]

use flowmlp::{Loss, Optimizer};

/// The pre-activations of every hidden layer and the outputs of one row.
struct Trace {
    /// `acts[0]` is the input row; `acts[l]` (l >= 1) the ReLU output of hidden layer l.
    acts: Vec<Vec<f64>>,
    /// Pre-activations of the hidden layers.
    pre: Vec<Vec<f64>>,
    /// The m outputs (logits for cross-entropy).
    out: Vec<f64>,
}

/// Offsets of `W_l` and `b_l` in the flat layout, for each layer.
fn offsets(dims: &[usize]) -> Vec<(usize, usize)> {
    let mut off = 0;
    dims.windows(2)
        .map(|w| {
            let (wo, bo) = (off, off + w[0] * w[1]);
            off = bo + w[1];
            (wo, bo)
        })
        .collect()
}

/// Number of parameters of `dims`.
pub fn param_count(dims: &[usize]) -> usize {
    dims.windows(2).map(|w| w[0] * w[1] + w[1]).sum()
}

fn trace(dims: &[usize], p: &[f64], x: &[f64]) -> Trace {
    let layers = dims.len() - 1;
    let offs = offsets(dims);
    let mut acts = vec![x.to_vec()];
    let mut pre = Vec::new();
    for l in 0..layers {
        let (inp, out) = (dims[l], dims[l + 1]);
        let (wo, bo) = offs[l];
        let a = &acts[l];
        let z: Vec<f64> = (0..out)
            .map(|j| p[bo + j] + (0..inp).map(|k| p[wo + j * inp + k] * a[k]).sum::<f64>())
            .collect();
        if l + 1 < layers {
            acts.push(z.iter().map(|v| v.max(0.0)).collect());
            pre.push(z);
        } else {
            return Trace { acts, pre, out: z };
        }
    }
    unreachable!("dims has at least two entries")
}

/// `log sum_j exp(z_j)`, stably.
pub fn logsumexp(z: &[f64]) -> f64 {
    let max = z.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    max + z.iter().map(|v| (v - max).exp()).sum::<f64>().ln()
}

/// The loss of one row's outputs `z` against targets `y`, and `dL/dz` (before the
/// 1/n of the mean).
fn row_loss(loss: Loss, z: &[f64], y: &[f64]) -> (f64, Vec<f64>) {
    match loss {
        Loss::Mse => (
            z.iter().zip(y).map(|(a, b)| (a - b).powi(2)).sum(),
            z.iter().zip(y).map(|(a, b)| 2.0 * (a - b)).collect(),
        ),
        Loss::CrossEntropy => {
            let lse = logsumexp(z);
            let ysum: f64 = y.iter().sum();
            (
                z.iter().zip(y).map(|(zj, yj)| yj * (lse - zj)).sum(),
                z.iter()
                    .zip(y)
                    .map(|(zj, yj)| ysum * (zj - lse).exp() - yj)
                    .collect(),
            )
        }
    }
}

/// The `n x m` outputs.
pub fn outputs(dims: &[usize], p: &[f64], x: &[f64], n: usize) -> Vec<f64> {
    let d = dims[0];
    (0..n)
        .flat_map(|i| trace(dims, p, &x[i * d..(i + 1) * d]).out)
        .collect()
}

/// The mean loss over `n` rows.
pub fn loss(dims: &[usize], p: &[f64], x: &[f64], y: &[f64], n: usize, kind: Loss) -> f64 {
    let (d, m) = (dims[0], dims[dims.len() - 1]);
    (0..n)
        .map(|i| {
            let t = trace(dims, p, &x[i * d..(i + 1) * d]);
            row_loss(kind, &t.out, &y[i * m..(i + 1) * m]).0
        })
        .sum::<f64>()
        / n as f64
}

/// The mean loss and its gradient in the flat layout, by backpropagation in f64.
pub fn loss_grad(
    dims: &[usize],
    p: &[f64],
    x: &[f64],
    y: &[f64],
    n: usize,
    kind: Loss,
) -> (f64, Vec<f64>) {
    let (d, m) = (dims[0], dims[dims.len() - 1]);
    let layers = dims.len() - 1;
    let offs = offsets(dims);
    let mut g = vec![0.0; p.len()];
    let mut total = 0.0;
    for i in 0..n {
        let t = trace(dims, p, &x[i * d..(i + 1) * d]);
        let (l_i, dz_out) = row_loss(kind, &t.out, &y[i * m..(i + 1) * m]);
        total += l_i;
        // dL/dz of the current layer, for this row, already divided by n.
        let mut dz: Vec<f64> = dz_out.iter().map(|v| v / n as f64).collect();
        for l in (0..layers).rev() {
            let (inp, out) = (dims[l], dims[l + 1]);
            let (wo, bo) = offs[l];
            let a = &t.acts[l];
            for j in 0..out {
                g[bo + j] += dz[j];
                for k in 0..inp {
                    g[wo + j * inp + k] += dz[j] * a[k];
                }
            }
            if l > 0 {
                let pre = &t.pre[l - 1];
                dz = (0..inp)
                    .map(|k| {
                        if pre[k] > 0.0 {
                            (0..out).map(|j| dz[j] * p[wo + j * inp + k]).sum()
                        } else {
                            0.0
                        }
                    })
                    .collect();
            }
        }
    }
    (total / n as f64, g)
}

/// The smallest `|pre-activation|` of any hidden unit over the `n` rows: how far the
/// point is from a ReLU kink (finite differences need some distance).
pub fn kink_distance(dims: &[usize], p: &[f64], x: &[f64], n: usize) -> f64 {
    let d = dims[0];
    (0..n)
        .flat_map(|i| trace(dims, p, &x[i * d..(i + 1) * d]).pre.concat())
        .map(f64::abs)
        .fold(f64::INFINITY, f64::min)
}

/// A deliberate mistake in the reference optimizer, to show that the comparison with
/// flowmlp would notice it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mistake {
    None,
    /// Adam without the first-moment bias correction.
    NoBiasCorrection1,
    /// Adam with eps added before the second-moment bias correction.
    EpsInsideCorrection,
    /// SGD: Nesterov ignored (heavy-ball momentum instead).
    NoNesterov,
    /// SGD momentum with PyTorch's dampening (1 - mu) applied.
    Dampening,
    /// AdamW's decay coupled into the gradient (Adam's L2) instead of decoupled.
    CoupledDecay,
    /// Clipping without the cap at 1 (small gradients scaled up to the limit).
    ClipAlways,
    /// Clipping left out.
    NoClip,
    /// Weight decay left out.
    NoWeightDecay,
}

/// The state of one reference optimizer over a flat parameter vector.
pub struct RefOptimizer {
    opt: Optimizer,
    clip: f64,
    mistake: Mistake,
    /// Steps taken (Adam's t).
    pub t: u64,
    buf: Option<Vec<f64>>,
    m: Vec<f64>,
    v: Vec<f64>,
    /// The clipping coefficient of the last step (1 when clipping was off or inactive).
    pub last_clip: f64,
}

impl RefOptimizer {
    pub fn new(opt: Optimizer, clip: f32, len: usize, mistake: Mistake) -> RefOptimizer {
        RefOptimizer {
            opt,
            clip: f64::from(clip),
            mistake,
            t: 0,
            buf: None,
            m: vec![0.0; len],
            v: vec![0.0; len],
            last_clip: 1.0,
        }
    }

    /// One step of the documented rule with gradient `grad` at parameters `p`.
    pub fn step(&mut self, p: &mut [f64], grad: &[f64], lr: f32) {
        let lr = f64::from(lr);
        let mut g = grad.to_vec();
        // torch.nn.utils.clip_grad_norm_(params, max_norm), called before the step.
        self.last_clip = 1.0;
        if self.clip > 0.0 && self.mistake != Mistake::NoClip {
            let norm = g.iter().map(|v| v * v).sum::<f64>().sqrt();
            let coef = if self.mistake == Mistake::ClipAlways {
                self.clip / norm
            } else {
                (self.clip / (norm + 1e-6)).min(1.0)
            };
            g.iter_mut().for_each(|v| *v *= coef);
            self.last_clip = coef;
        }
        self.t += 1;
        let wd_of = |wd: f32| {
            if self.mistake == Mistake::NoWeightDecay {
                0.0
            } else {
                f64::from(wd)
            }
        };
        match self.opt {
            Optimizer::Sgd {
                momentum,
                nesterov,
                weight_decay,
            } => {
                let (mu, wd) = (f64::from(momentum), wd_of(weight_decay));
                for (gi, pi) in g.iter_mut().zip(p.iter()) {
                    *gi += wd * pi;
                }
                if mu != 0.0 {
                    let damp = if self.mistake == Mistake::Dampening {
                        1.0 - mu
                    } else {
                        1.0
                    };
                    match &mut self.buf {
                        None => self.buf = Some(g.clone()),
                        Some(b) => b
                            .iter_mut()
                            .zip(&g)
                            .for_each(|(bi, gi)| *bi = mu * *bi + damp * gi),
                    }
                    let b = self.buf.as_ref().unwrap();
                    if nesterov && self.mistake != Mistake::NoNesterov {
                        g.iter_mut().zip(b).for_each(|(gi, bi)| *gi += mu * bi);
                    } else {
                        g.copy_from_slice(b);
                    }
                }
                for (pi, gi) in p.iter_mut().zip(&g) {
                    *pi -= lr * gi;
                }
            }
            Optimizer::Adam {
                beta1,
                beta2,
                eps,
                weight_decay,
            } => self.adam(p, &mut g, lr, beta1, beta2, eps, wd_of(weight_decay), 0.0),
            Optimizer::AdamW {
                beta1,
                beta2,
                eps,
                weight_decay,
            } => {
                let wd = wd_of(weight_decay);
                if self.mistake == Mistake::CoupledDecay {
                    self.adam(p, &mut g, lr, beta1, beta2, eps, wd, 0.0)
                } else {
                    self.adam(p, &mut g, lr, beta1, beta2, eps, 0.0, wd)
                }
            }
        }
    }

    /// `torch.optim.Adam` (L2 `wd` added to the gradient) with AdamW's decoupled
    /// `decoupled` decay applied to the parameters first.
    #[allow(clippy::too_many_arguments)]
    fn adam(
        &mut self,
        p: &mut [f64],
        g: &mut [f64],
        lr: f64,
        b1: f32,
        b2: f32,
        eps: f32,
        wd: f64,
        decoupled: f64,
    ) {
        let (b1, b2, eps) = (f64::from(b1), f64::from(b2), f64::from(eps));
        let t = self.t as i32;
        let bc1 = if self.mistake == Mistake::NoBiasCorrection1 {
            1.0
        } else {
            1.0 - b1.powi(t)
        };
        let bc2_sqrt = (1.0 - b2.powi(t)).sqrt();
        let step_size = lr / bc1;
        for i in 0..p.len() {
            p[i] *= 1.0 - lr * decoupled;
            let gi = g[i] + wd * p[i];
            self.m[i] = b1 * self.m[i] + (1.0 - b1) * gi;
            self.v[i] = b2 * self.v[i] + (1.0 - b2) * gi * gi;
            let denom = if self.mistake == Mistake::EpsInsideCorrection {
                (self.v[i].sqrt() + eps) / bc2_sqrt
            } else {
                self.v[i].sqrt() / bc2_sqrt + eps
            };
            p[i] -= step_size * self.m[i] / denom;
        }
    }
}
