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

use super::generic::{self, put_grad, put_step};
use super::simd::Simd;
use super::{Fused, HeadArgs, HeadBackArgs, InputGradArgs, PANEL};
use crate::config::Loss;
use crate::layout::Plan;

/// Where a one-row pass reads and writes.
pub(crate) struct RowCtx<'a> {
    pub plan: &'a Plan,
    /// Start of the arena: activations, dZ, dy and yhat by the plan's offsets.
    pub base: *mut u8,
    /// The current parameters.
    pub params: *const f32,
    /// The input row, `d` floats.
    pub x: *const f32,
    /// Where the forward pass first copies `x`, checking that it is finite (the
    /// input `backward` reads); null when `x` is already checked and kept.
    pub keep: *mut f32,
}

/// The one-hidden-layer one-row SGD step (`train_one_hidden`): the buffers by address, so that
/// the caller only picks them.
pub(crate) struct OneHiddenStep<'a> {
    pub plan: &'a Plan,
    /// The current parameters.
    pub cur: *const f32,
    /// The spare parameter buffer, which receives the updated parameters.
    pub next: *mut f32,
    /// The spare factor section (`Plan::factors`), which receives the gradients as
    /// their factors.
    pub factors: *mut f32,
    /// The input row (`d` floats) and its target; checked here, not by the caller.
    pub x: *const f32,
    pub y: *const f32,
    pub lr: f32,
}

/// What a one-row train step needs beyond the forward pass.
pub(crate) struct RowTrain {
    /// `m` targets.
    pub y: *const f32,
    /// The spare gradient buffer, which receives the new gradients.
    pub grads: *mut f32,
    pub fused: Option<Fused>,
    /// With `fused` (and only then, where it is required): the spare factor section
    /// (`Plan::factors`), which receives the gradients as their factors; the hidden
    /// layers' gradients are then not stored. Null without `fused`.
    pub factors: *mut f32,
}

#[inline(always)]
fn at(base: *mut u8, off: usize) -> *mut f32 {
    base.wrapping_add(off) as *mut f32
}

/// False, with nothing written but a part of `c.keep`, when `c.keep` is set and `x`
/// is not finite.
///
/// # Safety
/// `c` describes a live arena; `c.x` holds `d` floats; `c.keep`, when set, `d`
/// floats that do not overlap them.
#[inline(always)]
pub(crate) unsafe fn forward_row<S: Simd, const NV: usize, const NV1: usize>(
    s: S,
    c: &RowCtx,
) -> bool {
    let plan = c.plan;
    // SAFETY: the caller's contract.
    if !c.keep.is_null() && unsafe { !generic::copy_finite(s, c.x, c.keep, plan.inputs) } {
        return false;
    }
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
    true
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
    let voff = generic::vector_offsets::<S, NV, NV1>(k);
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
/// As `forward_row`, with `c.keep` null; `t.y` holds `m` floats; `t.grads` (and the
/// fused buffers) hold
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
        // `c.keep` is null: x was checked by the caller.
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
                let gv = s.mul(d, h);
                match t.fused {
                    // The gradients stay as factors (below): only the step.
                    Some(f) => put_step(s, g.add(out.w + col), gv, f, &mut bad),
                    None => put_grad(s, g.add(out.w + col), gv, None, &mut bad),
                }
                s.store(dzk.add(col), s.select_pos(h, s.mul(d, s.load(wo.add(col)))));
            }
            ok &= generic::put_grad1_fma(s, g.add(out.b), *dy, t.fused);
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
                    // A fused step leaves the gradients as factors (below).
                    factored: t.fused.is_some(),
                },
            );
        }
        // A fused step always leaves the hidden layers' gradients as factors.
        debug_assert!(t.fused.is_none() || !t.factors.is_null());
        let factored = t.fused.map(|f| (f.next - f.cur, f.lr));
        if factored.is_some() {
            let fx = t.factors;
            copy_floats(c.x, fx.add(plan.factor_a[0]), plan.inputs);
            copy_floats(dy, fx.add(plan.factor_dz[nh]), m);
            copy_rows::<S>(s, hk, fx.add(plan.factor_a[nh]), ld);
        }
        for l in (0..nh).rev() {
            let lp = &plan.layers[l];
            let a = if l == 0 {
                c.x
            } else {
                at(c.base, plan.h[l - 1]) as *const f32
            };
            let dz = at(c.base, plan.dz[l % 2]);
            if let Some((delta, lr)) = factored {
                let fx = t.factors;
                copy_rows::<S>(s, dz, fx.add(plan.factor_dz[l]), plan.ld[l]);
                if l > 0 {
                    copy_rows::<S>(s, a, fx.add(plan.factor_a[l]), plan.ld[l - 1]);
                }
                let (w, b) = (p.add(lp.w), p.add(lp.b));
                let mut q = 0;
                while q < lp.panels {
                    if q + NV / NV1 <= lp.panels {
                        outer_step::<S, NV, NV1>(s, a, lp.inputs, dz, q, w, b, delta, lr, &mut bad);
                        q += NV / NV1;
                    } else {
                        outer_step::<S, NV1, NV1>(
                            s, a, lp.inputs, dz, q, w, b, delta, lr, &mut bad,
                        );
                        q += 1;
                    }
                }
            } else {
                let (gw, gb) = (g.add(lp.w), g.add(lp.b));
                let mut q = 0;
                while q < lp.panels {
                    if q + NV / NV1 <= lp.panels {
                        outer::<S, NV, NV1>(s, a, lp.inputs, dz, q, gw, gb);
                        q += NV / NV1;
                    } else {
                        outer::<S, NV1, NV1>(s, a, lp.inputs, dz, q, gw, gb);
                        q += 1;
                    }
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
                        units: lp.outputs,
                        k: lp.inputs,
                        hp: a,
                        ldp: plan.ld[l - 1],
                        dzp: at(c.base, plan.dz[(l - 1) % 2]),
                        wt: core::ptr::null_mut(),
                        wt_ready: false,
                    },
                );
            }
        }
        (loss, ok && s.none_marked(bad))
    }
}

/// The weight and bias gradients of one row for `NV` vectors from panel `q`:
/// `gW^T[k][panel] = a[k] * dz[panel]`, `gb = dz` (stored for the optimizer's own
/// pass, which checks what it makes; a fused SGD step takes `outer_step` instead).
#[inline(always)]
unsafe fn outer<S: Simd, const NV: usize, const NV1: usize>(
    s: S,
    a: *const f32,
    k: usize,
    dz: *const f32,
    q: usize,
    gw: *mut f32,
    gb: *mut f32,
) {
    let voff = generic::vector_offsets::<S, NV, NV1>(k);
    // SAFETY (whole body): panels q.. exist and kk < k.
    unsafe {
        let d: [S::V; NV] = core::array::from_fn(|v| s.load(dz.add(q * PANEL + v * S::LANES)));
        let gw = gw.add(q * k * PANEL);
        for kk in 0..k {
            let x = s.splat(*a.add(kk));
            for v in 0..NV {
                s.store(gw.add(kk * PANEL + voff[v]), s.mul(x, d[v]));
            }
        }
        for v in 0..NV {
            s.store(gb.add(q * PANEL + v * S::LANES), d[v]);
        }
    }
}

/// `outer` with the fused SGD step and the gradients left as factors: each weight's
/// new value `w - lr (a[k] dZ[j])`, rounded as the stored gradient and the SGD step
/// would round it, written `delta` floats from the current one; no gradient is
/// stored, so the pass reads and writes each weight once.
///
/// # Safety
/// As `outer`; `w` and `b` are the layer's current weights and bias, and every
/// parameter plus `delta` lies in the spare parameter buffer.
#[inline(always)]
#[allow(clippy::too_many_arguments)]
unsafe fn outer_step<S: Simd, const NV: usize, const NV1: usize>(
    s: S,
    a: *const f32,
    k: usize,
    dz: *const f32,
    q: usize,
    w: *const f32,
    b: *const f32,
    delta: isize,
    lr: f32,
    bad: &mut S::V,
) {
    let voff = generic::vector_offsets::<S, NV, NV1>(k);
    let lrv = s.splat(lr);
    // SAFETY (whole body): panels q.. exist and kk < k.
    unsafe {
        let d: [S::V; NV] = core::array::from_fn(|v| s.load(dz.add(q * PANEL + v * S::LANES)));
        // Independent markers per vector (see `Simd::mark`).
        let mut bads = [s.zero(); NV];
        let mut wk = w.add(q * k * PANEL) as *mut f32;
        for kk in 0..k {
            let x = s.splat(*a.add(kk));
            for v in 0..NV {
                let at = wk.add(voff[v]);
                let nw = s.fnmadd(lrv, s.mul(x, d[v]), s.load(at));
                s.store(at.offset(delta), nw);
                bads[v] = s.mark(bads[v], nw);
            }
            wk = wk.add(PANEL);
        }
        for v in 0..NV {
            let at = b.add(q * PANEL + v * S::LANES) as *mut f32;
            let nb = s.fnmadd(lrv, d[v], s.load(at));
            s.store(at.offset(delta), nb);
            *bad = s.mark(s.or(*bad, bads[v]), nb);
        }
    }
}

/// Copy `n` floats (the caller's row; few, and not a whole number of vectors).
///
/// # Safety
/// `src` and `dst` hold `n` floats each and do not overlap.
#[inline(always)]
unsafe fn copy_floats(src: *const f32, dst: *mut f32, n: usize) {
    for i in 0..n {
        // SAFETY: the caller's contract.
        unsafe { *dst.add(i) = *src.add(i) };
    }
}

/// Copy a padded row of `n` floats, a multiple of the vector width.
///
/// # Safety
/// `src` and `dst` hold `n` floats each and do not overlap; `n % LANES == 0`.
#[inline(always)]
unsafe fn copy_rows<S: Simd>(s: S, src: *const f32, dst: *mut f32, n: usize) {
    for i in (0..n).step_by(S::LANES) {
        // SAFETY: the caller's contract.
        unsafe { s.store(dst.add(i), s.load(src.add(i))) };
    }
}

/// `forward_row` for the one-hidden-layer network (`Plan::one_hidden`: one hidden layer of one
/// or two panels, one output), whose hidden layer fits one row tile of `NV` vectors
/// and stays in registers.
///
/// # Safety
/// As `forward_row`, for a plan with `one_hidden` set.
#[inline(always)]
pub(crate) unsafe fn forward_one_hidden<S: Simd, const NV: usize, const NV1: usize>(
    s: S,
    c: &RowCtx,
) -> bool {
    const { assert!(NV == 2 * NV1, "a row tile is two panels") };
    debug_assert!(c.plan.one_hidden);
    // SAFETY: the caller's contract.
    unsafe {
        if !c.keep.is_null() && !generic::copy_finite(s, c.x, c.keep, c.plan.inputs) {
            return false;
        }
        if c.plan.layers[0].panels == 1 {
            forward_one_hidden_v::<S, NV1, NV1>(s, c)
        } else {
            forward_one_hidden_v::<S, NV, NV1>(s, c)
        }
    }
    true
}

/// The train step of one row with the fused SGD step for the one-hidden-layer network (see
/// `forward_one_hidden`): returns the loss and whether it and every updated parameter
/// were finite. Writes only the spare buffers of `t`, so a refused step leaves the
/// model, its kept forward pass included, as it was.
///
/// `x` and `y` need no check beforehand: a non-finite target makes the loss
/// non-finite, and every `x[k]` enters every update of its weight row as
/// `x[k] * step`, which is not finite for a non-finite `x[k]` even where the step is
/// 0 (`inf * 0` is NaN), so the update check refuses it.
///
/// # Safety
/// `t` describes a live arena of a plan with `one_hidden` set; `t.x` holds `d` floats
/// and `t.y` one.
#[inline(always)]
pub(crate) unsafe fn train_one_hidden<S: Simd, const NV: usize, const NV1: usize>(
    s: S,
    t: &OneHiddenStep,
) -> (f32, bool) {
    const { assert!(NV == 2 * NV1, "a row tile is two panels") };
    debug_assert!(t.plan.one_hidden);
    // SAFETY: the caller's contract.
    unsafe {
        if t.plan.layers[0].panels == 1 {
            train_one_hidden_v::<S, NV1, NV1>(s, t)
        } else {
            train_one_hidden_v::<S, NV, NV1>(s, t)
        }
    }
}
/// `ReLU(W x + b)` of the one hidden layer, `V` vectors (its padded width), in
/// registers: no plan walking, no stores.
///
/// # Safety
/// `x` holds `k` floats; `w` and `b` are the layer's internal weights and bias with
/// `V / NV1` panels.
#[inline(always)]
unsafe fn one_hidden_layer<S: Simd, const V: usize, const NV1: usize>(
    s: S,
    x: *const f32,
    k: usize,
    w: *const f32,
    b: *const f32,
) -> [S::V; V] {
    let voff = generic::vector_offsets::<S, V, NV1>(k);
    // SAFETY (whole body): kk < k and every vector lies in the layer's panels.
    unsafe {
        let mut even: [S::V; V] = core::array::from_fn(|v| s.load(b.add(v * S::LANES)));
        let mut odd = [s.zero(); V];
        // Moving pointers and a trip count: the loop steps two registers.
        let (mut xp, mut wk) = (x, w);
        for _ in 0..k / 2 {
            let (x0, x1) = (s.splat(*xp), s.splat(*xp.add(1)));
            for v in 0..V {
                even[v] = s.fmadd(x0, s.load(wk.add(voff[v])), even[v]);
                odd[v] = s.fmadd(x1, s.load(wk.add(PANEL + voff[v])), odd[v]);
            }
            xp = xp.add(2);
            wk = wk.add(2 * PANEL);
        }
        if k % 2 == 1 {
            let x0 = s.splat(*xp);
            for v in 0..V {
                even[v] = s.fmadd(x0, s.load(wk.add(voff[v])), even[v]);
            }
        }
        core::array::from_fn(|v| s.max0(s.add(even[v], odd[v])))
    }
}

/// `w_o . h` of the one-hidden-layer network's single output, lane-wise (`hsum` of it is the dot
/// product).
///
/// # Safety
/// `wo` holds `V * LANES` floats (the output row is padded to the layer's width).
#[inline(always)]
unsafe fn one_hidden_head<S: Simd, const V: usize>(s: S, h: &[S::V; V], wo: *const f32) -> S::V {
    // Two chains: this sum sits on the step's critical path (forward -> loss -> dZ).
    let mut acc = [s.zero(); 2];
    // SAFETY: v * LANES < V * LANES.
    unsafe {
        for v in 0..V {
            acc[v % 2] = s.fmadd(h[v], s.load(wo.add(v * S::LANES)), acc[v % 2]);
        }
    }
    s.add(acc[0], acc[1])
}

/// `forward_one_hidden` with the hidden layer's `V` vectors.
///
/// # Safety
/// As `forward_one_hidden`.
#[inline(always)]
unsafe fn forward_one_hidden_v<S: Simd, const V: usize, const NV1: usize>(s: S, c: &RowCtx) {
    let plan = c.plan;
    let (lp, out) = (&plan.layers[0], &plan.layers[1]);
    // SAFETY (whole body): offsets from the plan; the h section holds the padded row.
    unsafe {
        let p = c.params;
        let h = one_hidden_layer::<S, V, NV1>(s, c.x, lp.inputs, p.add(lp.w), p.add(lp.b));
        let hrow = at(c.base, plan.h[0]);
        for v in 0..V {
            s.store(hrow.add(v * S::LANES), h[v]);
        }
        *at(c.base, plan.yhat) = *p.add(out.b) + s.hsum(one_hidden_head(s, &h, p.add(out.w)));
    }
}

/// `train_one_hidden` with the hidden layer's `V` vectors: the hidden layer, its mask and
/// dZ stay in registers, and the gradients are left as their factors x, H, dZ and dy
/// (`Plan::factors`), so one pass over the weights reads each old value and writes
/// its update, and nothing else.
///
/// # Safety
/// As `train_one_hidden`.
#[inline(always)]
unsafe fn train_one_hidden_v<S: Simd, const V: usize, const NV1: usize>(
    s: S,
    t: &OneHiddenStep,
) -> (f32, bool) {
    let plan = t.plan;
    let (lp, out) = (&plan.layers[0], &plan.layers[1]);
    let k = lp.inputs;
    let (cur, next, x) = (t.cur, t.next, t.x);
    let voff = generic::vector_offsets::<S, V, NV1>(k);
    let (fh, fdz, fdy) = plan.factor_offsets();
    // SAFETY (whole body): offsets from the plan, within the parameter buffers and the
    // factor section; x holds k floats and y one.
    unsafe {
        let h = one_hidden_layer::<S, V, NV1>(s, x, k, cur.add(lp.w), cur.add(lp.b));
        let wo = cur.add(out.w);
        let e = *cur.add(out.b) + s.hsum(one_hidden_head(s, &h, wo)) - *t.y;
        let loss = e * e;
        if !loss.is_finite() {
            return (loss, false);
        }
        let dy = 2.0 * e;
        let (d, nlr) = (s.splat(dy), s.splat(-t.lr));
        let fx = t.factors;
        let mut bads = [s.zero(); V];
        // `-lr dZ`: each weight's update is then one FMA with its input.
        let mut step = [s.zero(); V];
        for v in 0..V {
            let o = v * S::LANES;
            let wov = s.load(wo.add(o));
            let dz = s.select_pos(h[v], s.mul(d, wov));
            s.store(fx.add(fh + o), h[v]);
            s.store(fx.add(fdz + o), dz);
            let nwo = s.fmadd(nlr, s.mul(d, h[v]), wov);
            s.store(next.add(out.w + o), nwo);
            bads[v] = s.fmadd(nwo, s.zero(), bads[v]);
            step[v] = s.mul(nlr, dz);
            let nb = s.add(s.load(cur.add(lp.b + o)), step[v]);
            s.store(next.add(lp.b + o), nb);
            bads[v] = s.fmadd(nb, s.zero(), bads[v]);
        }
        *fx.add(fdy) = dy;
        let nbo = *cur.add(out.b) - t.lr * dy;
        *next.add(out.b) = nbo;
        // One moving pointer into the current weights; the new ones sit a fixed
        // distance away (fewer address registers to step), two inputs per trip.
        let delta = next.offset_from(cur);
        let mut w = cur.add(lp.w) as *mut f32;
        for kk in (0..k & !1).step_by(2) {
            let (x0, x1) = (*x.add(kk), *x.add(kk + 1));
            *fx.add(kk) = x0;
            *fx.add(kk + 1) = x1;
            update_row(s, x0, &step, w, &voff, delta, &mut bads);
            update_row(s, x1, &step, w.add(PANEL), &voff, delta, &mut bads);
            w = w.add(2 * PANEL);
        }
        if k % 2 == 1 {
            let x0 = *x.add(k - 1);
            *fx.add(k - 1) = x0;
            update_row(s, x0, &step, w, &voff, delta, &mut bads);
        }
        let mut bad = s.zero();
        for v in 0..V {
            bad = s.add(bad, bads[v]);
        }
        (loss, nbo.is_finite() && s.none_marked(bad))
    }
}

/// One input's weight row of the one-hidden-layer SGD step: `w[delta + j] = w[j] + xv *
/// step[j]` over the row's `V` vectors, each result folded into `bads`.
///
/// # Safety
/// `w + voff[v]` and `w + delta + voff[v]` are valid for a vector each.
#[inline(always)]
unsafe fn update_row<S: Simd, const V: usize>(
    s: S,
    xv: f32,
    step: &[S::V; V],
    w: *mut f32,
    voff: &[usize; V],
    delta: isize,
    bads: &mut [S::V; V],
) {
    let xk = s.splat(xv);
    // SAFETY: the caller's contract.
    unsafe {
        for v in 0..V {
            let at = w.add(voff[v]);
            let nw = s.fmadd(xk, step[v], s.load(at));
            s.store(at.offset(delta), nw);
            bads[v] = s.fmadd(nw, s.zero(), bads[v]);
        }
    }
}
