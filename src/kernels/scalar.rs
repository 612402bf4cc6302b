//! The reference kernel set: the plainest loops that compute the model's math on
//! the internal layout. Every other set is tested against it, and it is tested
//! against f64 finite differences.

use super::{
    put_grad1, DenseArgs, HeadArgs, HeadBackArgs, InputGradArgs, Kernels, UpdateArgs,
    WeightGradArgs, PANEL,
};
use crate::isa::Isa;
use crate::math;
use crate::optim::Update;

pub(crate) static KERNELS: Kernels = Kernels {
    isa: Isa::Scalar,
    dense_relu,
    head_forward,
    head_backward,
    weight_grad,
    // The reference has one way only.
    weight_grad_narrow: weight_grad,
    input_grad,
    loss_grad,
    sgd,
    all_finite,
    copy_finite,
    update,
    sum_sq,
    lanes: PANEL,
    fuses_head: false,
    // The reference runs one row through the layer kernels.
    row: None,
};

/// ReLU with ReLU'(0) = 0; NaN maps to 0 as `max(z, 0)` does in the SIMD sets.
fn relu(z: f32) -> f32 {
    if z > 0.0 {
        z
    } else {
        0.0
    }
}

/// Offset of `W[j][k]` inside a panel-packed layer with `k_len` inputs.
fn panel_index(j: usize, k: usize, k_len: usize) -> usize {
    (j / PANEL) * k_len * PANEL + k * PANEL + j % PANEL
}

/// # Safety
/// The pointers in `a` are valid for the sizes it states.
unsafe fn dense_relu(a: &DenseArgs) {
    let ld = a.panels * PANEL;
    for i in 0..a.n {
        // SAFETY: row i of the input and of the output lie inside their buffers.
        let (x, h) = unsafe { (a.a.add(i * a.lda), a.h.add(i * ld)) };
        for j in 0..ld {
            // SAFETY: j < panels * PANEL and k < a.k index inside W and b.
            unsafe {
                let mut z = *a.b.add(j);
                for k in 0..a.k {
                    z += *x.add(k) * *a.w.add(panel_index(j, k, a.k));
                }
                *h.add(j) = relu(z);
            }
        }
        if !a.head.is_null() {
            let mut s = a.head_bias;
            for j in 0..ld {
                // SAFETY: head has ld entries; h row i was just written.
                s += unsafe { *h.add(j) * *a.head.add(j) };
            }
            // SAFETY: yhat has n entries when head is non-null.
            unsafe { *a.yhat.add(i) = s };
        }
    }
}

/// # Safety
/// The pointers in `a` are valid for the sizes it states.
unsafe fn head_forward(a: &HeadArgs) {
    for i in 0..a.n {
        for c in 0..a.m {
            // SAFETY: row i of H, row c of W_o, and yhat[i][c] are in bounds.
            unsafe {
                let mut s = *a.bo.add(c);
                for j in 0..a.k {
                    s += *a.h.add(i * a.ld + j) * *a.wo.add(c * a.ld + j);
                }
                *a.yhat.add(i * a.m + c) = s;
            }
        }
    }
}

/// # Safety
/// The pointers in `a` are valid for the sizes it states.
unsafe fn head_backward(a: &HeadBackArgs) -> bool {
    let mut ok = true;
    // SAFETY (whole body): every index is below the sizes `a` states: i < n,
    // c < m, j < ld.
    unsafe {
        for c in 0..a.m {
            let mut sb = 0.0f32;
            for i in 0..a.n {
                sb += *a.dy.add(i * a.m + c);
            }
            ok &= put_grad1(a.gbo.add(c), sb, a.fused);
            for j in 0..a.ld {
                let mut s = 0.0f32;
                for i in 0..a.n {
                    s += *a.dy.add(i * a.m + c) * *a.h.add(i * a.ld + j);
                }
                ok &= put_grad1(a.gwo.add(c * a.ld + j), s, a.fused);
            }
        }
        for i in 0..a.n {
            for j in 0..a.ld {
                let mut s = 0.0f32;
                for c in 0..a.m {
                    s += *a.dy.add(i * a.m + c) * *a.wo.add(c * a.ld + j);
                }
                let alive = *a.h.add(i * a.ld + j) > 0.0;
                *a.dz.add(i * a.ld + j) = if alive { s } else { 0.0 };
            }
        }
    }
    ok
}

/// # Safety
/// The pointers in `a` are valid for the sizes it states.
unsafe fn weight_grad(a: &WeightGradArgs) -> bool {
    let ld = a.panels * PANEL;
    let mut ok = true;
    // SAFETY (whole body): i < n, j < ld, k < a.k stay inside A, dZ, gW and gb.
    unsafe {
        for j in a.p0 * PANEL..a.p1 * PANEL {
            let mut sb = 0.0f32;
            for i in 0..a.n {
                sb += *a.dz.add(i * ld + j);
            }
            ok &= put_grad1(a.gb.add(j), sb, a.fused);
            for k in 0..a.k {
                let mut s = 0.0f32;
                for i in 0..a.n {
                    s += *a.a.add(i * a.lda + k) * *a.dz.add(i * ld + j);
                }
                ok &= put_grad1(a.gw.add(panel_index(j, k, a.k)), s, a.fused);
            }
        }
    }
    ok
}

/// # Safety
/// The pointers in `a` are valid for the sizes it states.
unsafe fn input_grad(a: &InputGradArgs) {
    let ld = a.panels * PANEL;
    // SAFETY (whole body): i < n, j < ld, k < ldp stay inside dZ, W, Hp and dZp.
    unsafe {
        for i in 0..a.n {
            for k in 0..a.ldp {
                let mut v = 0.0f32;
                if k < a.k && *a.hp.add(i * a.ldp + k) > 0.0 {
                    for j in 0..ld {
                        v += *a.dz.add(i * ld + j) * *a.w.add(panel_index(j, k, a.k));
                    }
                }
                *a.dzp.add(i * a.ldp + k) = v;
            }
        }
    }
}

/// # Safety
/// `yhat`, `y`, `dy` are valid for `len` values.
unsafe fn loss_grad(yhat: *const f32, y: *const f32, len: usize, scale: f32, dy: *mut f32) -> f32 {
    let mut sum = 0.0f64;
    for t in 0..len {
        // SAFETY: t < len.
        unsafe {
            let e = *yhat.add(t) - *y.add(t);
            sum += f64::from(e) * f64::from(e);
            *dy.add(t) = scale * e;
        }
    }
    sum as f32
}

/// # Safety
/// `p`, `g`, `out` are valid for `len` values.
unsafe fn sgd(p: *const f32, g: *const f32, out: *mut f32, len: usize, lr: f32) -> bool {
    let mut ok = true;
    for t in 0..len {
        // SAFETY: t < len.
        unsafe {
            let v = *p.add(t) - lr * *g.add(t);
            ok &= v.is_finite();
            *out.add(t) = v;
        }
    }
    ok
}

/// # Safety
/// `p` is valid for `len` values.
unsafe fn all_finite(p: *const f32, len: usize) -> bool {
    // SAFETY: the caller guarantees len values at p.
    unsafe { core::slice::from_raw_parts(p, len) }
        .iter()
        .all(|v| v.is_finite())
}

/// # Safety
/// `src` and `dst` are valid for `len` values and do not overlap.
unsafe fn copy_finite(src: *const f32, dst: *mut f32, len: usize) -> bool {
    let mut ok = true;
    for t in 0..len {
        // SAFETY: t < len.
        unsafe {
            let v = *src.add(t);
            ok &= v.is_finite();
            *dst.add(t) = v;
        }
    }
    ok
}

/// # Safety
/// The pointers in `a` are valid for `a.len` values (`s2`/`out_s2` for Adam only).
unsafe fn update(a: &UpdateArgs) -> bool {
    // SAFETY: the caller's contract.
    unsafe { update_range(a, 0) }
}

/// `update` for the values `from..a.len` (the SIMD sets' remainder).
///
/// # Safety
/// As `update`.
pub(crate) unsafe fn update_range(a: &UpdateArgs, from: usize) -> bool {
    let mut ok = true;
    // SAFETY (whole body): t < len.
    unsafe {
        match a.update {
            Update::Momentum {
                lr,
                mu,
                nesterov,
                wd,
                scale,
            } => {
                for t in from..a.len {
                    let p = *a.p.add(t);
                    let g = scale * *a.g.add(t) + wd * p;
                    let b = if a.first { g } else { mu * *a.s1.add(t) + g };
                    let d = if nesterov { g + mu * b } else { b };
                    let np = p - lr * d;
                    ok &= np.is_finite() && b.is_finite();
                    *a.out_p.add(t) = np;
                    *a.out_s1.add(t) = b;
                }
            }
            Update::Adam {
                b1,
                b2,
                eps,
                wd,
                decay,
                step,
                inv_sqrt_bc2,
                scale,
            } => {
                for t in from..a.len {
                    let p = *a.p.add(t);
                    let g = scale * *a.g.add(t) + wd * p;
                    let m = b1 * *a.s1.add(t) + (1.0 - b1) * g;
                    let v = b2 * *a.s2.add(t) + (1.0 - b2) * g * g;
                    let np = p * decay - step * (m / (math::sqrtf(v) * inv_sqrt_bc2 + eps));
                    ok &= np.is_finite() && m.is_finite() && v.is_finite();
                    *a.out_p.add(t) = np;
                    *a.out_s1.add(t) = m;
                    *a.out_s2.add(t) = v;
                }
            }
        }
    }
    ok
}

/// # Safety
/// `p` is valid for `len` values.
unsafe fn sum_sq(p: *const f32, len: usize) -> f64 {
    // SAFETY: the caller guarantees len values at p.
    unsafe { core::slice::from_raw_parts(p, len) }
        .iter()
        .map(|&v| f64::from(v) * f64::from(v))
        .sum()
}
