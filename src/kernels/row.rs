//! One row (n = 1), the embedded loop's case: the whole forward pass, or the whole
//! train step, in one call with GEMV-style loops and no packing.
//!
//! ```text
//! forward   for each hidden layer, for each pair of panels:
//!             acc = b + sum_k a[k] W[k][panel]      (even and odd k in two sets of
//!             h = max(acc, 0); head += h * w_o        registers, to halve the FMA chain)
//!           yhat = b_o + hsum(head)                  (m = 1; else dot products)
//! backward  e = yhat - y, L = e.e, dy = 2e
//!           gW_o = dy H_k, gb_o = dy, dZ_k = (dy W_o) * [H_k > 0]
//!           for l in k..=1: gW_l = dZ_l (x) A_{l-1}, gb_l = dZ_l   (outer products)
//!                           dZ_{l-1} = (dZ_l W_l) * [H_{l-1} > 0]
//! ```
//!
//! With a fused SGD step every gradient is applied as it is stored (see `Fused`).
//! All functions are `#[inline(always)]`, compiled inside their ISA's entry points.

// Tile loops index several register arrays in lockstep; ranges read best there.
#![allow(clippy::needless_range_loop)]

use super::generic::{self, put_grad, put_grad1};
use super::simd::Simd;
use super::{Fused, HeadArgs, HeadBackArgs, InputGradArgs, PANEL};
use crate::arena::Plan;
use crate::config::Loss;

/// Where a one-row pass reads and writes.
pub(crate) struct RowCtx<'a> {
    pub plan: &'a Plan,
    /// Start of the arena: activations, dZ, dy and yhat by the plan's offsets.
    pub base: *mut u8,
    /// The current parameters.
    pub params: *const f32,
    /// The input row, `d` floats.
    pub x: *const f32,
}

/// What a one-row train step needs beyond the forward pass.
pub(crate) struct RowTrain {
    /// `m` targets.
    pub y: *const f32,
    /// The spare gradient buffer, which receives the new gradients.
    pub grads: *mut f32,
    pub fused: Option<Fused>,
}

#[inline(always)]
fn at(base: *mut u8, off: usize) -> *mut f32 {
    base.wrapping_add(off) as *mut f32
}

/// # Safety
/// `c` describes a live arena; `c.x` holds `d` floats.
#[inline(always)]
pub(crate) unsafe fn forward_row<S: Simd, const NV: usize, const NV1: usize>(s: S, c: &RowCtx) {
    let plan = c.plan;
    let nh = plan.n_hidden;
    let out = &plan.layers[nh];
    let head1 = plan.outputs == 1;
    let mut a = c.x;
    let mut hacc = s.zero();
    // SAFETY (whole body): every offset comes from the plan and lies in the arena or
    // the parameter buffer.
    unsafe {
        for l in 0..nh {
            let lp = &plan.layers[l];
            let h = at(c.base, plan.h[l]);
            let head = if head1 && l + 1 == nh {
                c.params.add(out.w)
            } else {
                core::ptr::null()
            };
            let (w, b) = (c.params.add(lp.w), c.params.add(lp.b));
            let mut q = 0;
            while q < lp.panels {
                if q + NV / NV1 <= lp.panels {
                    row_tile::<S, NV, NV1>(s, a, lp.inputs, w, b, q, h, head, &mut hacc);
                    q += NV / NV1;
                } else {
                    row_tile::<S, NV1, NV1>(s, a, lp.inputs, w, b, q, h, head, &mut hacc);
                    q += 1;
                }
            }
            a = h;
        }
        let yhat = at(c.base, plan.yhat);
        if head1 {
            *yhat = *c.params.add(out.b) + s.hsum(hacc);
        } else {
            generic::head_forward(
                s,
                &HeadArgs {
                    h: a,
                    ld: plan.ld[nh - 1],
                    n: 1,
                    k: out.inputs,
                    wo: c.params.add(out.w),
                    bo: c.params.add(out.b),
                    m: plan.outputs,
                    yhat,
                },
            );
        }
    }
}

/// `NV` vectors of one layer's outputs, starting at panel `q`.
#[inline(always)]
#[allow(clippy::too_many_arguments)]
unsafe fn row_tile<S: Simd, const NV: usize, const NV1: usize>(
    s: S,
    a: *const f32,
    k: usize,
    w: *const f32,
    b: *const f32,
    q: usize,
    h: *mut f32,
    head: *const f32,
    hacc: &mut S::V,
) {
    let voff: [usize; NV] = core::array::from_fn(|v| (v / NV1) * k * PANEL + (v % NV1) * S::LANES);
    // SAFETY (whole body): panels q.. exist, kk < k, and the head row has the
    // layer's padded width.
    unsafe {
        let w = w.add(q * k * PANEL);
        let mut even: [S::V; NV] =
            core::array::from_fn(|v| s.load(b.add(q * PANEL + v * S::LANES)));
        let mut odd = [s.zero(); NV];
        let mut kk = 0;
        while kk + 2 <= k {
            let (x0, x1) = (s.splat(*a.add(kk)), s.splat(*a.add(kk + 1)));
            let (w0, w1) = (w.add(kk * PANEL), w.add((kk + 1) * PANEL));
            for v in 0..NV {
                even[v] = s.fmadd(x0, s.load(w0.add(voff[v])), even[v]);
                odd[v] = s.fmadd(x1, s.load(w1.add(voff[v])), odd[v]);
            }
            kk += 2;
        }
        if kk < k {
            let x0 = s.splat(*a.add(kk));
            for v in 0..NV {
                even[v] = s.fmadd(x0, s.load(w.add(kk * PANEL + voff[v])), even[v]);
            }
        }
        for v in 0..NV {
            let hv = s.max0(s.add(even[v], odd[v]));
            s.store(h.add(q * PANEL + v * S::LANES), hv);
            if !head.is_null() {
                *hacc = s.fmadd(hv, s.load(head.add(q * PANEL + v * S::LANES)), *hacc);
            }
        }
    }
}

/// Forward, loss and gradients of one row, with the fused step when `t.fused` is
/// set. Returns the loss and whether the loss and every update were finite; with a
/// non-finite loss no gradient is written.
///
/// # Safety
/// As `forward_row`; `t.y` holds `m` floats; `t.grads` (and the fused buffers) hold
/// a whole internal parameter layout.
#[inline(always)]
pub(crate) unsafe fn train_row<
    S: Simd,
    const NV: usize,
    const NV1: usize,
    const RI: usize,
    const CI: usize,
>(
    s: S,
    c: &RowCtx,
    t: &RowTrain,
) -> (f32, bool) {
    let plan = c.plan;
    let nh = plan.n_hidden;
    let m = plan.outputs;
    let out = &plan.layers[nh];
    let (g, p) = (t.grads, c.params);
    // SAFETY (whole body): every offset comes from the plan and lies in the arena or
    // the parameter and gradient buffers.
    unsafe {
        forward_row::<S, NV, NV1>(s, c);
        let dy = at(c.base, plan.dy);
        let loss = match plan.loss {
            Loss::Mse => generic::loss_grad(s, at(c.base, plan.yhat), t.y, m, 2.0, dy),
            Loss::CrossEntropy => crate::loss::softmax_xent(at(c.base, plan.yhat), t.y, 1, m, dy),
        };
        if !loss.is_finite() {
            return (loss, false);
        }
        let mut bad = s.zero();
        let mut ok = true;
        let (hk, ld) = (at(c.base, plan.h[nh - 1]), plan.ld[nh - 1]);
        let dzk = at(c.base, plan.dz[(nh - 1) % 2]);
        if m == 1 {
            let d = s.splat(*dy);
            let wo = p.add(out.w);
            for col in (0..ld).step_by(S::LANES) {
                let h = s.load(hk.add(col));
                put_grad(s, g.add(out.w + col), s.mul(d, h), t.fused, &mut bad);
                s.store(dzk.add(col), s.select_pos(h, s.mul(d, s.load(wo.add(col)))));
            }
            ok &= put_grad1(g.add(out.b), *dy, t.fused);
        } else {
            ok &= generic::head_backward(
                s,
                &HeadBackArgs {
                    h: hk,
                    ld,
                    n: 1,
                    wo: p.add(out.w),
                    m,
                    dy,
                    gwo: g.add(out.w),
                    gbo: g.add(out.b),
                    dz: dzk,
                    fused: t.fused,
                },
            );
        }
        for l in (0..nh).rev() {
            let lp = &plan.layers[l];
            let a = if l == 0 {
                c.x
            } else {
                at(c.base, plan.h[l - 1]) as *const f32
            };
            let dz = at(c.base, plan.dz[l % 2]);
            let mut q = 0;
            while q < lp.panels {
                if q + NV / NV1 <= lp.panels {
                    outer::<S, NV, NV1>(
                        s,
                        a,
                        lp.inputs,
                        dz,
                        q,
                        g.add(lp.w),
                        g.add(lp.b),
                        t.fused,
                        &mut bad,
                    );
                    q += NV / NV1;
                } else {
                    outer::<S, NV1, NV1>(
                        s,
                        a,
                        lp.inputs,
                        dz,
                        q,
                        g.add(lp.w),
                        g.add(lp.b),
                        t.fused,
                        &mut bad,
                    );
                    q += 1;
                }
            }
            if l > 0 {
                generic::input_grad::<S, RI, CI, NV1, 1, NV1>(
                    s,
                    &InputGradArgs {
                        dz,
                        n: 1,
                        w: p.add(lp.w),
                        panels: lp.panels,
                        k: lp.inputs,
                        hp: a,
                        ldp: plan.ld[l - 1],
                        dzp: at(c.base, plan.dz[(l - 1) % 2]),
                        wt: core::ptr::null_mut(),
                    },
                );
            }
        }
        (loss, ok && s.hsum(bad) == 0.0)
    }
}

/// The weight and bias gradients of one row for `NV` vectors from panel `q`:
/// `gW^T[k][panel] = a[k] * dz[panel]`, `gb = dz`.
#[inline(always)]
#[allow(clippy::too_many_arguments)]
unsafe fn outer<S: Simd, const NV: usize, const NV1: usize>(
    s: S,
    a: *const f32,
    k: usize,
    dz: *const f32,
    q: usize,
    gw: *mut f32,
    gb: *mut f32,
    fused: Option<Fused>,
    bad: &mut S::V,
) {
    let voff: [usize; NV] = core::array::from_fn(|v| (v / NV1) * k * PANEL + (v % NV1) * S::LANES);
    // SAFETY (whole body): panels q.. exist and kk < k.
    unsafe {
        let d: [S::V; NV] = core::array::from_fn(|v| s.load(dz.add(q * PANEL + v * S::LANES)));
        let gw = gw.add(q * k * PANEL);
        // Independent finite-check accumulators, one per vector (see put_grad).
        let mut bads = [s.zero(); NV];
        for kk in 0..k {
            let x = s.splat(*a.add(kk));
            for v in 0..NV {
                put_grad(
                    s,
                    gw.add(kk * PANEL + voff[v]),
                    s.mul(x, d[v]),
                    fused,
                    &mut bads[v],
                );
            }
        }
        for v in 0..NV {
            put_grad(
                s,
                gb.add(q * PANEL + v * S::LANES),
                d[v],
                fused,
                &mut bads[v],
            );
            *bad = s.add(*bad, bads[v]);
        }
    }
}
