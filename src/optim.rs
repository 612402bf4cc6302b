//! Optimizers behind `step`/`train_step`, following the update rules PyTorch documents
//! for `torch.optim.SGD`, `Adam` and `AdamW` (and `clip_grad_norm_` for clipping).
//!
//! ```text
//! clip      if clip_norm > 0: g *= min(1, clip_norm / (||g||_2 + 1e-6))   (global norm)
//! SGD       g += wd p; if momentum: b = mu b + g (b = g on the first step);
//!           g = nesterov ? g + mu b : b;  p -= lr g
//! Adam      g += wd p; m = b1 m + (1 - b1) g; v = b2 v + (1 - b2) g^2;
//!           p -= (lr / (1 - b1^t)) m / (sqrt(v) / sqrt(1 - b2^t) + eps)
//! AdamW     p *= 1 - lr wd; then Adam with wd = 0
//! ```
//!
//! Dampening is not offered (PyTorch's default, 0). The state (momentum buffer, or
//! first and second moments, and the step count) lives in the model's arena, sized at
//! creation for Adam, so switching optimizers never allocates; `set_optimizer` starts
//! from fresh state, as a new PyTorch optimizer would.

use crate::last_error::refuse;
use crate::Error;

/// An optimizer and its hyperparameters. The learning rate is given to each step.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Optimizer {
    /// Stochastic gradient descent, with optional momentum (0 = none), Nesterov
    /// momentum, and L2 weight decay added to the gradient.
    Sgd {
        /// Momentum factor mu, 0..1 (0: plain SGD).
        momentum: f32,
        /// Nesterov momentum (needs momentum > 0).
        nesterov: bool,
        /// L2 penalty added to the gradient.
        weight_decay: f32,
    },
    /// Adam (Kingma and Ba), bias-corrected, with L2 weight decay added to the gradient.
    Adam {
        /// Decay of the first moment, 0..1.
        beta1: f32,
        /// Decay of the second moment, 0..1.
        beta2: f32,
        /// Added to the denominator, > 0.
        eps: f32,
        /// L2 penalty added to the gradient.
        weight_decay: f32,
    },
    /// AdamW (Loshchilov and Hutter): Adam with decoupled weight decay.
    AdamW {
        /// Decay of the first moment, 0..1.
        beta1: f32,
        /// Decay of the second moment, 0..1.
        beta2: f32,
        /// Added to the denominator, > 0.
        eps: f32,
        /// Decoupled decay: p *= 1 - lr * weight_decay before the Adam update.
        weight_decay: f32,
    },
}

/// Optimizer kinds as numbered in C (`flowmlp_optimizer_kind`) and in checkpoints.
pub(crate) const KIND_SGD: u32 = 0;
pub(crate) const KIND_ADAM: u32 = 1;
pub(crate) const KIND_ADAMW: u32 = 2;

impl Optimizer {
    /// Plain SGD, the default.
    pub const SGD: Optimizer = Optimizer::Sgd {
        momentum: 0.0,
        nesterov: false,
        weight_decay: 0.0,
    };

    /// Adam with PyTorch's defaults (0.9, 0.999, 1e-8, no weight decay).
    pub const ADAM: Optimizer = Optimizer::Adam {
        beta1: 0.9,
        beta2: 0.999,
        eps: 1e-8,
        weight_decay: 0.0,
    };

    /// AdamW with PyTorch's defaults (0.9, 0.999, 1e-8, weight decay 0.01).
    pub const ADAMW: Optimizer = Optimizer::AdamW {
        beta1: 0.9,
        beta2: 0.999,
        eps: 1e-8,
        weight_decay: 0.01,
    };

    /// SGD with momentum `mu` (PyTorch's `SGD(momentum=mu)`).
    pub const fn momentum(mu: f32, nesterov: bool) -> Optimizer {
        Optimizer::Sgd {
            momentum: mu,
            nesterov,
            weight_decay: 0.0,
        }
    }

    /// Whether this is plain SGD, which the train step fuses into the backward pass.
    pub(crate) fn is_plain_sgd(&self) -> bool {
        matches!(self, Optimizer::Sgd { momentum, weight_decay, .. } if *momentum == 0.0 && *weight_decay == 0.0)
    }

    /// Hyperparameters in range, or `InvalidArgument` naming the field (as the C
    /// struct `flowmlp_optimizer` spells it).
    pub(crate) fn validate(&self) -> Result<(), Error> {
        let unit = |name: &str, x: f32| {
            if (0.0..1.0).contains(&x) {
                Ok(())
            } else {
                Err(refuse!(
                    InvalidArgument,
                    "optimizer.{name} must be in [0, 1), got {x}"
                ))
            }
        };
        let decay = |x: f32| {
            if x.is_finite() && x >= 0.0 {
                Ok(())
            } else {
                Err(refuse!(
                    InvalidArgument,
                    "optimizer.weight_decay must be finite and >= 0, got {x}"
                ))
            }
        };
        match *self {
            Optimizer::Sgd {
                momentum,
                nesterov,
                weight_decay,
            } => {
                unit("momentum", momentum)?;
                decay(weight_decay)?;
                if nesterov && momentum <= 0.0 {
                    return Err(refuse!(
                        InvalidArgument,
                        "optimizer.nesterov = 1 needs optimizer.momentum > 0, got {momentum}"
                    ));
                }
            }
            Optimizer::Adam {
                beta1,
                beta2,
                eps,
                weight_decay,
            }
            | Optimizer::AdamW {
                beta1,
                beta2,
                eps,
                weight_decay,
            } => {
                unit("beta1", beta1)?;
                unit("beta2", beta2)?;
                if !(eps.is_finite() && eps > 0.0) {
                    return Err(refuse!(
                        InvalidArgument,
                        "optimizer.eps must be finite and > 0 (flowmlp_optimizer_defaults gives \
                         1e-8), got {eps}"
                    ));
                }
                decay(weight_decay)?;
            }
        }
        Ok(())
    }
}

impl Default for Optimizer {
    fn default() -> Self {
        Optimizer::SGD
    }
}

/// The per-step constants of one update, computed once per step from the optimizer,
/// the learning rate and the step count, so that the kernels stay branch-free inside.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Update {
    /// `b = mu b + g; g = nesterov ? g + mu b : b; p -= lr g` (after `g = s g + wd p`).
    Momentum {
        lr: f32,
        mu: f32,
        nesterov: bool,
        wd: f32,
        scale: f32,
    },
    /// `p = p * decay; m = b1 m + (1 - b1) g; v = b2 v + (1 - b2) g^2;
    /// p -= step * m / (sqrt(v) * inv_sqrt_bc2 + eps)` (after `g = s g + wd p`).
    Adam {
        b1: f32,
        b2: f32,
        eps: f32,
        wd: f32,
        decay: f32,
        step: f32,
        inv_sqrt_bc2: f32,
        scale: f32,
    },
}

impl Update {
    /// Constants for step number `t` (1-based) with gradient scale `scale` (clipping).
    pub(crate) fn new(opt: &Optimizer, lr: f32, t: u64, scale: f32) -> Update {
        match *opt {
            Optimizer::Sgd {
                momentum,
                nesterov,
                weight_decay,
            } => Update::Momentum {
                lr,
                mu: momentum,
                nesterov,
                wd: weight_decay,
                scale,
            },
            Optimizer::Adam {
                beta1,
                beta2,
                eps,
                weight_decay,
            } => Self::adam(beta1, beta2, eps, weight_decay, 1.0, lr, t, scale),
            Optimizer::AdamW {
                beta1,
                beta2,
                eps,
                weight_decay,
            } => Self::adam(
                beta1,
                beta2,
                eps,
                0.0,
                1.0 - lr * weight_decay,
                lr,
                t,
                scale,
            ),
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn adam(
        b1: f32,
        b2: f32,
        eps: f32,
        wd: f32,
        decay: f32,
        lr: f32,
        t: u64,
        scale: f32,
    ) -> Update {
        // Bias corrections in f64: b^t underflows gracefully and 1 - b^t keeps digits.
        let t = t.min(i32::MAX as u64) as i32;
        let bc1 = 1.0 - crate::math::powi(f64::from(b1), t);
        let bc2 = 1.0 - crate::math::powi(f64::from(b2), t);
        Update::Adam {
            b1,
            b2,
            eps,
            wd,
            decay,
            step: (f64::from(lr) / bc1) as f32,
            inv_sqrt_bc2: (1.0 / crate::math::sqrt(bc2)) as f32,
            scale,
        }
    }
}

/// The clipping factor for a gradient of squared L2 norm `sq`, as
/// `torch.nn.utils.clip_grad_norm_` computes it: `min(1, max / (norm + 1e-6))`.
pub(crate) fn clip_scale(max_norm: f32, sq: f64) -> f32 {
    if max_norm <= 0.0 {
        return 1.0;
    }
    let coef = f64::from(max_norm) / (crate::math::sqrt(sq) + 1e-6);
    coef.min(1.0) as f32
}
