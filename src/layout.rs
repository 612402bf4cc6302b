//! The one allocation of a model, and where everything lives in it.
//!
//! All sizes are computed here with checked arithmetic; every section starts on a
//! 64-byte boundary (a cache line, and a full AVX-512 vector).
//!
//! ```text
//! offset 0      model header (the `Model`'s state: plan, kernel table, flags)
//! params[0..2]  parameters, internal layout (below)   } each double-buffered: a call
//! grads[0..2]   gradients, internal layout            } writes the spare copy and makes
//! state[0..2]   optimizer state: 2 x internal length (momentum, or Adam's moments)
//! x[0..2]       the kept forward's input, max_batch x d } it current only on success, so
//!                                                          a refused call changes nothing
//! h[l]          activations H_l, max_batch x ld_l, l = 1..k    (ld_l = h_l rounded up to 16)
//! yhat          predictions, max_batch x m
//! dy            dL/dYhat, max_batch x m
//! dz[0], dz[1]  masked gradients dZ of two adjacent layers, max_batch x max ld_l
//! part          partial sums of the m = 1 head across weight chunks, max_batch x 16
//! pack          packed columns of a layer's input for the weight gradients
//! wt            a layer's weights laid out for dZ W (layers 2..k, batches of 4+ rows)
//! factors[0..2] the gradients of a one-row step as factors, per gradient buffer: each
//!               layer's input a_l (x, H_1..H_k; padded rows), then each layer's dZ_l
//!               (dZ_1..dZ_k, then dy padded to 16)
//! ```
//!
//! A one-row train step with plain SGD keeps its gradients as those factors,
//! `gW_l = dZ_l a_l^T`, `gb_l = dZ_l`: a few rows of floats written per step instead
//! of one gradient per parameter, which are formed only when read
//! (`State::factor_grad`).
//!
//! Internal parameter layout. A hidden layer with `in` inputs and `out` units keeps
//! its weights as panels of 16 units, each panel `in x 16` row-major (the transpose of
//! 16 rows of W), zero-padded past `out`; then its bias, `out` rounded up to 16:
//!
//! ```text
//! W[j][k]  at  w + (j / 16) * in * 16 + k * 16 + j % 16
//! b[j]     at  b + j
//! ```
//!
//! A forward micro-kernel then streams one contiguous panel while broadcasting inputs,
//! and the weight-gradient kernel writes whole panels. The output layer (m x h_k)
//! keeps W_o row-major with rows padded to ld_k, which serves its dot products. The
//! padding is zero and stays zero (its gradients are zero). `get_params`/`set_params`
//! convert to and from the documented flat layout (W_1, b_1, ..., W_o, b_o).

use crate::config::{Config, MAX_HIDDEN};
use crate::Error;

/// Units per weight panel; every activation row is padded to a multiple of it.
pub(crate) const PANEL: usize = 16;
/// Alignment of every section, in bytes.
pub(crate) const ALIGN: usize = 64;
const F32: usize = core::mem::size_of::<f32>();

/// Rows of A a weight-gradient kernel packs and reduces at a time: about 128 KiB,
/// which stays in L2 while every panel of dZ passes over it.
pub(crate) fn pack_rows(k: usize) -> usize {
    (32 * 1024 / k.max(1)).clamp(32, 1024)
}

/// Whether packing pays: enough rows to amortise it, and enough panels reusing it.
pub(crate) fn should_pack(n: usize, panels: usize) -> bool {
    n >= 32 && panels >= 4
}

/// Whether `input_grad` runs as a GEMM over W laid out in `wt` (enough rows to pay
/// for the layout) rather than by dot products.
pub(crate) fn transposes_input_grad(n: usize) -> bool {
    n >= 4
}

/// Most layers with weights: k hidden plus the output layer.
pub(crate) const MAX_LAYERS: usize = MAX_HIDDEN + 1;

/// Where one layer's parameters live, in floats from the start of a parameter buffer.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct LayerPlan {
    pub inputs: usize,
    pub outputs: usize,
    /// Panels of 16 units (hidden layers); for the output layer, the row stride of W_o.
    pub panels: usize,
    pub w: usize,
    pub b: usize,
    pub flat_w: usize,
    pub flat_b: usize,
}

/// The complete memory plan of a model, fixed at creation.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Plan {
    pub inputs: usize,
    pub outputs: usize,
    pub n_hidden: usize,
    pub max_batch: usize,
    pub loss: crate::config::Loss,
    pub layers: [LayerPlan; MAX_LAYERS],
    /// Row stride of H_l (and of dZ_l), l = 1..k, stored at index l - 1.
    pub ld: [usize; MAX_HIDDEN],
    /// Length of the flat parameter array (W_1, b_1, ..., W_o, b_o).
    pub flat_len: usize,
    /// Floats in one internal parameter buffer (padding included).
    pub int_len: usize,
    /// Byte offsets of the sections.
    pub params: [usize; 2],
    pub grads: [usize; 2],
    pub state: [usize; 2],
    pub x: [usize; 2],
    pub h: [usize; MAX_HIDDEN],
    pub yhat: usize,
    pub dy: usize,
    pub dz: [usize; 2],
    pub part: usize,
    pub pack: usize,
    /// Floats in `pack` (each worker thread has as much of its own; read only by
    /// the thread pool and the SIMD sets' packing).
    #[cfg_attr(not(feature = "std"), allow(dead_code))]
    pub pack_len: usize,
    pub wt: usize,
    /// One hidden layer of at most two panels and one output (see `factors`).
    pub one_hidden: bool,
    pub factors: [usize; 2],
    /// Float offsets in a factor section of each layer's input `a_l` (`x`, then
    /// `H_1..H_k`) and of its `dZ_l` (the output layer's is `dy`), l = 0..=k.
    pub factor_a: [usize; MAX_LAYERS],
    pub factor_dz: [usize; MAX_LAYERS],
    /// Total bytes of the arena.
    pub total: usize,
}

fn mul(a: usize, b: usize) -> Result<usize, Error> {
    a.checked_mul(b).ok_or(Error::InvalidConfig)
}

fn add(a: usize, b: usize) -> Result<usize, Error> {
    a.checked_add(b).ok_or(Error::InvalidConfig)
}

fn round_up(v: usize, to: usize) -> Result<usize, Error> {
    Ok(add(v, to - 1)? / to * to)
}

/// Bump allocator over byte offsets.
struct Cursor(usize);

impl Cursor {
    fn take_floats(&mut self, floats: usize) -> Result<usize, Error> {
        let at = self.0;
        self.0 = round_up(add(at, mul(floats, F32)?)?, ALIGN)?;
        Ok(at)
    }
}

impl Plan {
    /// Lay out a validated config, or refuse sizes that overflow.
    pub(crate) fn new(cfg: &Config, header_bytes: usize) -> Result<Plan, Error> {
        cfg.validate()?;
        Plan::lay_out(cfg, header_bytes).map_err(|_| {
            crate::last_error::refuse!(
                InvalidConfig,
                "config: n_inputs = {}, hidden = {:?}, n_outputs = {}, max_batch = {} make \
                 the model's memory overflow size_t",
                cfg.inputs,
                cfg.hidden_widths(),
                cfg.outputs,
                cfg.max_batch
            )
        })
    }

    /// The sections of a valid config; `InvalidConfig` when a size overflows.
    fn lay_out(cfg: &Config, header_bytes: usize) -> Result<Plan, Error> {
        let (dims, n_dims) = cfg.dims();
        let k = cfg.n_hidden;
        let mut layers = [LayerPlan::default(); MAX_LAYERS];
        let mut ld = [0; MAX_HIDDEN];
        let (mut flat, mut int) = (0usize, 0usize);
        for l in 0..n_dims - 1 {
            let (inp, out) = (dims[l], dims[l + 1]);
            let hidden = l < k;
            let (panels, w_len, b_len) = if hidden {
                let panels = out.div_ceil(PANEL);
                ld[l] = mul(panels, PANEL)?;
                (panels, mul(mul(panels, PANEL)?, inp)?, ld[l])
            } else {
                let row = round_up(inp, PANEL)?;
                (row, mul(row, out)?, round_up(out, PANEL)?)
            };
            let flat_w = flat;
            let flat_b = add(flat, mul(inp, out)?)?;
            flat = add(flat_b, out)?;
            let w = int;
            let b = add(w, w_len)?;
            int = add(b, b_len)?;
            layers[l] = LayerPlan {
                inputs: inp,
                outputs: out,
                panels,
                w,
                b,
                flat_w,
                flat_b,
            };
        }
        let mb = cfg.max_batch;
        let max_ld = ld[..k].iter().copied().max().unwrap_or(PANEL);
        let mut c = Cursor(round_up(header_bytes, ALIGN)?);
        let params = [c.take_floats(int)?, c.take_floats(int)?];
        let grads = [c.take_floats(int)?, c.take_floats(int)?];
        let state = [c.take_floats(mul(int, 2)?)?, c.take_floats(mul(int, 2)?)?];
        let x = [
            c.take_floats(mul(mb, cfg.inputs)?)?,
            c.take_floats(mul(mb, cfg.inputs)?)?,
        ];
        let mut h = [0; MAX_HIDDEN];
        for l in 0..k {
            h[l] = c.take_floats(mul(mb, ld[l])?)?;
        }
        let yhat = c.take_floats(mul(mb, cfg.outputs)?)?;
        let dy = c.take_floats(mul(mb, cfg.outputs)?)?;
        let dz = [
            c.take_floats(mul(mb, max_ld)?)?,
            c.take_floats(mul(mb, max_ld)?)?,
        ];
        let part = c.take_floats(mul(mb, PANEL)?)?;
        let mut pack_len = 0;
        for lp in &layers[..k] {
            if should_pack(mb, lp.panels) {
                // Packed columns of A, then the block's dZ for up to two panels.
                let rows = pack_rows(lp.inputs).min(mb);
                pack_len = pack_len.max(mul(rows, add(lp.inputs, 2 * PANEL)?)?);
            }
        }
        let pack = c.take_floats(pack_len)?;
        let mut wt_len = 0;
        if transposes_input_grad(mb) {
            for l in 1..k {
                wt_len = wt_len.max(mul(ld[l - 1], ld[l])?);
            }
        }
        let wt = c.take_floats(wt_len)?;
        let one_hidden = k == 1 && cfg.outputs == 1 && layers[0].panels <= 2;
        // Each layer's input a_l (x, then H_1..H_k, padded rows), then each layer's dZ
        // (dZ_1..dZ_k, then dy padded to a panel).
        let mut factor_a = [0; MAX_LAYERS];
        let mut factor_dz = [0; MAX_LAYERS];
        let mut factor_len = 0;
        for (l, fa) in factor_a.iter_mut().enumerate().take(k + 1) {
            *fa = factor_len;
            let width = if l == 0 {
                round_up(cfg.inputs, PANEL)?
            } else {
                ld[l - 1]
            };
            factor_len = add(factor_len, width)?;
        }
        for (l, fz) in factor_dz.iter_mut().enumerate().take(k + 1) {
            *fz = factor_len;
            let width = if l < k {
                ld[l]
            } else {
                round_up(cfg.outputs, PANEL)?
            };
            factor_len = add(factor_len, width)?;
        }
        let factors = [c.take_floats(factor_len)?, c.take_floats(factor_len)?];
        Ok(Plan {
            inputs: cfg.inputs,
            outputs: cfg.outputs,
            loss: cfg.loss,
            n_hidden: k,
            max_batch: mb,
            layers,
            ld,
            flat_len: flat,
            int_len: int,
            params,
            grads,
            state,
            x,
            h,
            yhat,
            dy,
            dz,
            part,
            pack,
            pack_len,
            wt,
            one_hidden,
            factors,
            factor_a,
            factor_dz,
            total: c.0,
        })
    }

    /// Float offsets of H, dZ and dy in the factor section of a one-hidden-layer plan
    /// (x is at 0).
    pub(crate) fn factor_offsets(&self) -> (usize, usize, usize) {
        (self.factor_a[1], self.factor_dz[0], self.factor_dz[1])
    }

    /// Layers with weights: k hidden and the output layer.
    pub(crate) fn n_layers(&self) -> usize {
        self.n_hidden + 1
    }

    /// Internal index of flat parameter `t`.
    #[cfg(test)]
    pub(crate) fn internal_index(&self, t: usize) -> usize {
        let l = self.layers[..self.n_layers()]
            .iter()
            .rposition(|lp| lp.flat_w <= t)
            .unwrap_or(0);
        let lp = &self.layers[l];
        if t >= lp.flat_b {
            return lp.b + (t - lp.flat_b);
        }
        let (j, k) = ((t - lp.flat_w) / lp.inputs, (t - lp.flat_w) % lp.inputs);
        if l < self.n_hidden {
            lp.w + (j / PANEL) * lp.inputs * PANEL + k * PANEL + j % PANEL
        } else {
            lp.w + j * lp.panels + k
        }
    }

    /// Visit every parameter in flat order as `f(flat, internal, layer, is_bias)`.
    pub(crate) fn for_each_index(&self, mut f: impl FnMut(usize, usize, usize, bool)) {
        for (l, lp) in self.layers[..self.n_layers()].iter().enumerate() {
            let hidden = l < self.n_hidden;
            for j in 0..lp.outputs {
                for k in 0..lp.inputs {
                    let int = if hidden {
                        lp.w + (j / PANEL) * lp.inputs * PANEL + k * PANEL + j % PANEL
                    } else {
                        lp.w + j * lp.panels + k
                    };
                    f(lp.flat_w + j * lp.inputs + k, int, l, false);
                }
            }
            for j in 0..lp.outputs {
                f(lp.flat_b + j, lp.b + j, l, true);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flat_and_internal_indices_agree_and_are_a_bijection() {
        let cfg = Config::new(7, &[17, 3, 33], 2).max_batch(5);
        let p = Plan::new(&cfg, 0).unwrap();
        assert_eq!(
            p.flat_len,
            7 * 17 + 17 + 17 * 3 + 3 + 3 * 33 + 33 + 33 * 2 + 2
        );
        let mut seen = vec![false; p.int_len];
        let mut count = 0;
        p.for_each_index(|flat, int, _, _| {
            assert_eq!(flat, count);
            assert_eq!(p.internal_index(flat), int);
            assert!(!seen[int]);
            seen[int] = true;
            count += 1;
        });
        assert_eq!(count, p.flat_len);
    }

    #[test]
    fn sections_are_aligned_and_disjoint() {
        let cfg = Config::new(3, &[5, 9], 4).max_batch(7);
        let p = Plan::new(&cfg, 100).unwrap();
        let mut starts = vec![
            p.params[0],
            p.params[1],
            p.grads[0],
            p.grads[1],
            p.state[0],
            p.state[1],
            p.x[0],
            p.x[1],
            p.yhat,
            p.dy,
            p.dz[0],
            p.dz[1],
            p.part,
        ];
        starts.extend_from_slice(&p.h[..2]);
        assert!(starts.iter().all(|s| s % ALIGN == 0 && *s >= 100));
        starts.sort();
        starts.dedup();
        assert_eq!(starts.len(), 15);
        assert!(p.total >= *starts.last().unwrap());
    }

    #[test]
    fn overflowing_sizes_are_refused() {
        let cfg = Config::new(usize::MAX / 2, &[usize::MAX / 2], 1);
        assert_eq!(Plan::new(&cfg, 0).unwrap_err(), Error::InvalidConfig);
        let cfg = Config::new(1 << 20, &[1 << 20], 1).max_batch(1 << 45);
        assert_eq!(Plan::new(&cfg, 0).unwrap_err(), Error::InvalidConfig);
    }
}
