//! The SIMD kernel bodies, written once over the `Simd` primitives.
//!
//! ```text
//! dense_relu    for each block of rows whose inputs fit in L2, each chunk of panels
//!               whose weights fit in L1:
//!                 for each block of R rows:
//!                   for each tile of NV vectors (whole panels):
//!                     acc = b; for k: acc += a[r][k] * W[k][tile]      (R x NV registers)
//!                     H[r][tile] = max(acc, 0); head[r] += H[r][tile] * w_o[tile]
//!                   yhat[r] = b_o + hsum(head[r])           (m = 1, after the last chunk)
//! weight_grad   for each block of rows (packing A's columns and the panels' dZ):
//!               for each tile of NV vectors, each block of K rows of gW^T:
//!                 acc = 0; for i: acc[r] += A[i][k0 + r] * dZ[i][tile]; (last block) gb += dZ[i]
//!               with `HeadOne` (m = 1 on top): packing dZ forms it from H instead,
//!                 dZ[i] = dy[i] w_o * [H[i] > 0], and adds gW_o += dy[i] H[i]
//! input_grad    dZp[i][k] = [Hp > 0] * sum_panels dZ[i][panel] . W[panel][k]   (dot products)
//! head_backward for up to 4 outputs at a time, each vector of columns, each row:
//!                 gW_o[c] += dy[i][c] H[i]; dH[i] += dy[i][c] W_o[c]; dZ[i] = dH * [H > 0]
//! ```
//!
//! Every function is `#[inline(always)]`: it must be compiled inside its ISA's
//! `#[target_feature]` entry point (see `simd_kernel_set!`), never on its own.

// Tile loops index several register arrays in lockstep; ranges read best there.
#![allow(clippy::needless_range_loop)]

use super::simd::Simd;
use super::{
    DenseArgs, Fused, HeadArgs, HeadBackArgs, HeadOne, InputGradArgs, UpdateArgs, WeightGradArgs,
    PANEL,
};
use crate::optim::Update;

/// Store gradient vector `g` at `at`; with a fused SGD step also store the updated
/// parameters at `at + next` and fold their finiteness into the marker `bad` (see
/// `Simd::mark`).
///
/// # Safety
/// `at`, and with `fused` `at + cur` and `at + next`, are valid for LANES floats.
#[inline(always)]
pub(crate) unsafe fn put_grad<S: Simd>(
    s: S,
    at: *mut f32,
    g: S::V,
    fused: Option<Fused>,
    bad: &mut S::V,
) {
    // SAFETY: the caller's contract.
    unsafe {
        s.store(at, g);
        if let Some(f) = fused {
            put_step(s, at, g, f, bad);
        }
    }
}

/// The fused SGD step of `put_grad` without storing the gradient (a one-row step
/// keeps its gradients as factors): the parameter at `at + next` becomes the one at
/// `at + cur` less `lr g`, and a non-finite result marks `bad`.
///
/// # Safety
/// `at + cur` and `at + next` are valid for a vector.
#[inline(always)]
pub(crate) unsafe fn put_step<S: Simd>(s: S, at: *mut f32, g: S::V, f: Fused, bad: &mut S::V) {
    // SAFETY: the caller's contract.
    unsafe {
        let v = s.fnmadd(s.splat(f.lr), g, s.load(at.offset(f.cur)));
        s.store(at.offset(f.next), v);
        // One op per vector; callers keep several accumulators where the chain of
        // dependent adds would otherwise set the pace.
        *bad = s.fmadd(v, s.zero(), *bad);
    }
}

/// `put_grad1` with the SGD step rounded as the vector kernels round it (one fused
/// multiply-add), so that a fused step of a lone value equals the separate step over
/// the whole buffer.
///
/// # Safety
/// As `put_grad1`.
#[inline(always)]
pub(crate) unsafe fn put_grad1_fma<S: Simd>(
    s: S,
    at: *mut f32,
    g: f32,
    fused: Option<Fused>,
) -> bool {
    #[repr(align(64))]
    struct Lanes([f32; 16]);
    // SAFETY: the caller's contract; a vector of LANES <= 16 floats fits `lanes`.
    unsafe {
        *at = g;
        match fused {
            None => true,
            Some(f) => {
                let mut lanes = Lanes([0.0; 16]);
                let v = s.fnmadd(s.splat(f.lr), s.splat(g), s.splat(*at.offset(f.cur)));
                s.store(lanes.0.as_mut_ptr(), v);
                let v = lanes.0[0];
                *at.offset(f.next) = v;
                v.is_finite()
            }
        }
    }
}

/// Offsets of a tile's `V` vectors in a layer's panel layout with `k` inputs: vector
/// `v` is vector `v % NV1` of the tile's panel `v / NV1`, and whole panels are
/// `k * PANEL` floats apart.
#[inline(always)]
pub(crate) fn vector_offsets<S: Simd, const V: usize, const NV1: usize>(k: usize) -> [usize; V] {
    core::array::from_fn(|v| (v / NV1) * k * PANEL + (v % NV1) * S::LANES)
}

/// Bytes of weights a chunk of panels may take, so that it stays in L1 while every
/// block of rows streams past it. The crate's own tests take small chunks, so that
/// small shapes reach the chunked paths (the head's partial sums; Miri included).
const CHUNK_BYTES: usize = if cfg!(test) { 2 * 1024 } else { 24 * 1024 };

/// Bytes of input rows a forward GEMM keeps in L2 while the weights pass over them.
const ROWS_BYTES: usize = 128 * 1024;

/// Call `$f::<.., R, ..>` with the const `R` equal to the runtime `$r` (1..=8).
macro_rules! with_rows {
    ($r:expr, |$R:ident| $call:expr) => {
        match $r {
            1 => {
                const $R: usize = 1;
                $call
            }
            2 => {
                const $R: usize = 2;
                $call
            }
            3 => {
                const $R: usize = 3;
                $call
            }
            4 => {
                const $R: usize = 4;
                $call
            }
            5 => {
                const $R: usize = 5;
                $call
            }
            6 => {
                const $R: usize = 6;
                $call
            }
            7 => {
                const $R: usize = 7;
                $call
            }
            8 => {
                const $R: usize = 8;
                $call
            }
            _ => unreachable!("row blocks have 1..=8 rows"),
        }
    };
}

/// Like `with_rows!` for 0..=7 (remainder rows of a weight-gradient block).
macro_rules! with_rem {
    ($r:expr, |$R:ident| $call:expr) => {
        match $r {
            0 => {
                const $R: usize = 0;
                $call
            }
            r => with_rows!(r, |$R| $call),
        }
    };
}

// ---------------------------------------------------------------- forward

/// # Safety
/// The pointers in `a` are valid for the sizes it states; `a.part` holds
/// `n * PANEL` floats when `a.head` is non-null. `MR <= 8`; `NV * LANES` is a
/// multiple of `PANEL`; `NV1 * LANES == PANEL`.
#[inline(always)]
pub(crate) unsafe fn dense_relu<S: Simd, const MR: usize, const NV: usize, const NV1: usize>(
    s: S,
    a: &DenseArgs,
) {
    let np = NV / NV1;
    let panel_bytes = a.k * PANEL * 4;
    let chunk = (CHUNK_BYTES / panel_bytes.max(1)).max(np) / np * np;
    // Blocks of rows whose inputs stay in L2 while every chunk of weights passes over
    // them: the weights then stream from L3 once per block, instead of the whole
    // input once per chunk.
    let block = (ROWS_BYTES / (a.k * 4).max(1)).max(MR) / MR * MR;
    let mut b0 = 0;
    while b0 < a.n {
        let b1 = (b0 + block).min(a.n);
        let mut p0 = 0;
        while p0 < a.panels {
            let p1 = (p0 + chunk).min(a.panels);
            let (first, last) = (p0 == 0, p1 == a.panels);
            let mut i0 = b0;
            while i0 < b1 {
                let r = MR.min(b1 - i0);
                // SAFETY: rows i0..i0 + r and panels p0..p1 are inside the buffers.
                with_rows!(r, |R| unsafe {
                    dense_rows::<S, R, NV, NV1>(s, a, i0, p0, p1, first, last)
                });
                i0 += r;
            }
            p0 = p1;
        }
        b0 = b1;
    }
}

/// Rows `i0..i0+R` over panels `p0..p1`, with the head's partial dot products kept
/// in registers across the chunk and in `a.part` between chunks.
#[inline(always)]
unsafe fn dense_rows<S: Simd, const R: usize, const NV: usize, const NV1: usize>(
    s: S,
    a: &DenseArgs,
    i0: usize,
    p0: usize,
    p1: usize,
    first: bool,
    last: bool,
) {
    let head = !a.head.is_null();
    let mut hacc = [s.zero(); R];
    // SAFETY (whole body): part rows i0..i0+R, yhat[i0..i0+R] and the panels are in
    // bounds by the caller's contract.
    unsafe {
        if head && !first {
            for (r, h) in hacc.iter_mut().enumerate() {
                *h = s.load(a.part.add((i0 + r) * PANEL));
            }
        }
        let np = NV / NV1;
        // The last panel on its own when its live units fill fewer of its vectors.
        let live = super::live_vectors(a.units, a.panels, S::LANES);
        let partial = p1 == a.panels && live < NV1;
        let pe = if partial { p1 - 1 } else { p1 };
        let mut p = p0;
        while p + np <= pe {
            fwd_tile::<S, R, NV, NV1>(s, a, i0, p, &mut hacc);
            p += np;
        }
        while p < pe {
            fwd_tile::<S, R, NV1, NV1>(s, a, i0, p, &mut hacc);
            p += 1;
        }
        if partial {
            // live < NV1 <= 4: the arms past NV1 - 1 never run.
            match live {
                0 => {}
                1 => fwd_tile::<S, R, 1, NV1>(s, a, i0, pe, &mut hacc),
                2 => fwd_tile::<S, R, 2, NV1>(s, a, i0, pe, &mut hacc),
                _ => fwd_tile::<S, R, 3, NV1>(s, a, i0, pe, &mut hacc),
            }
            // The dead vectors: zero weights and bias would give 0.
            let ld = a.panels * PANEL;
            for r in 0..R {
                let out = a.h.add((i0 + r) * ld + pe * PANEL);
                for v in live..NV1 {
                    s.store(out.add(v * S::LANES), s.zero());
                }
            }
        }
        if head {
            for (r, h) in hacc.iter().enumerate() {
                if last {
                    *a.yhat.add(i0 + r) = a.head_bias + s.hsum(*h);
                } else {
                    s.store(a.part.add((i0 + r) * PANEL), *h);
                }
            }
        }
    }
}

/// One R x (NV vectors) tile of `ReLU(A W^T + b)` starting at panel `p`.
#[inline(always)]
unsafe fn fwd_tile<S: Simd, const R: usize, const NV: usize, const NV1: usize>(
    s: S,
    a: &DenseArgs,
    i0: usize,
    p: usize,
    hacc: &mut [S::V; R],
) {
    let k = a.k;
    let ld = a.panels * PANEL;
    // SAFETY (whole body): panels p..p + NV/NV1 exist, rows i0..i0+R exist, and every
    // offset below stays inside W, b, A, H and the head row.
    unsafe {
        let w = a.w.add(p * k * PANEL);
        let mut acc = [[s.zero(); NV]; R];
        if !a.b.is_null() {
            let bias = a.b.add(p * PANEL);
            for v in 0..NV {
                let b = s.load(bias.add(v * S::LANES));
                for row in acc.iter_mut() {
                    row[v] = b;
                }
            }
        }
        let rows: [*const f32; R] = core::array::from_fn(|r| a.a.add((i0 + r) * a.lda));
        let voff = vector_offsets::<S, NV, NV1>(k);
        let mut wk = w;
        for kk in 0..k {
            let wv: [S::V; NV] = core::array::from_fn(|v| s.load(wk.add(voff[v])));
            for r in 0..R {
                let x = s.splat(*rows[r].add(kk));
                for v in 0..NV {
                    acc[r][v] = s.fmadd(x, wv[v], acc[r][v]);
                }
            }
            wk = wk.add(PANEL);
        }
        let head = !a.head.is_null();
        for r in 0..R {
            let out = a.h.add((i0 + r) * ld + p * PANEL);
            let mask = a.mask.wrapping_add((i0 + r) * ld + p * PANEL);
            for v in 0..NV {
                // ReLU, or for the backward the mask [Hp > 0] of the layer below.
                let h = if a.mask.is_null() {
                    s.max0(acc[r][v])
                } else {
                    s.select_pos(s.load(mask.add(v * S::LANES)), acc[r][v])
                };
                s.store(out.add(v * S::LANES), h);
                if head {
                    let wo = s.load(a.head.add(p * PANEL + v * S::LANES));
                    hacc[r] = s.fmadd(h, wo, hacc[r]);
                }
            }
        }
    }
}

/// # Safety
/// The pointers in `a` are valid for the sizes it states.
#[inline(always)]
pub(crate) unsafe fn head_forward<S: Simd>(s: S, a: &HeadArgs) {
    let vecs = a.ld / S::LANES;
    // SAFETY (whole body): i < n, c < m, and vecs * LANES == ld keep every access in
    // bounds of H, W_o, b_o and yhat.
    unsafe {
        for i in 0..a.n {
            let h = a.h.add(i * a.ld);
            let mut c = 0;
            while c < a.m {
                let g = (a.m - c).min(4);
                let mut acc = [s.zero(); 4];
                for jv in 0..vecs {
                    let hv = s.load(h.add(jv * S::LANES));
                    for (t, acc) in acc.iter_mut().enumerate().take(g) {
                        let w = s.load(a.wo.add((c + t) * a.ld + jv * S::LANES));
                        *acc = s.fmadd(hv, w, *acc);
                    }
                }
                for (t, acc) in acc.iter().enumerate().take(g) {
                    *a.yhat.add(i * a.m + c + t) = *a.bo.add(c + t) + s.hsum(*acc);
                }
                c += g;
            }
        }
    }
}

// ---------------------------------------------------------------- backward

/// # Safety
/// The pointers in `a` are valid for the sizes it states; `ld` is a multiple of LANES.
#[inline(always)]
pub(crate) unsafe fn head_backward<S: Simd>(s: S, a: &HeadBackArgs) -> bool {
    let mut bad = s.zero();
    let mut ok = true;
    let mut c0 = 0;
    while c0 < a.m {
        let g = (a.m - c0).min(4);
        let (first, last) = (c0 == 0, c0 + g == a.m);
        // SAFETY: outputs c0..c0+g exist.
        with_rows!(g, |G| unsafe {
            head_backward_group::<S, G>(s, a, c0, first, last, &mut bad)
        });
        c0 += g;
    }
    for c in 0..a.m {
        let mut sum = 0.0f32;
        for i in 0..a.n {
            // SAFETY: i < n, c < m.
            sum += unsafe { *a.dy.add(i * a.m + c) };
        }
        // SAFETY: c < m.
        ok &= unsafe { put_grad1_fma(s, a.gbo.add(c), sum, a.fused) };
    }
    ok && s.none_marked(bad)
}

/// Outputs `c0..c0+G`: their weight gradients, and their share of `dH`, accumulated in
/// `dz` across groups and masked by `[H > 0]` after the last group. Rows go in
/// blocks of 8 so that H and dZ are read along their rows, with the weight-gradient
/// sums of a block kept in registers.
#[inline(always)]
unsafe fn head_backward_group<S: Simd, const G: usize>(
    s: S,
    a: &HeadBackArgs,
    c0: usize,
    first: bool,
    last: bool,
    bad: &mut S::V,
) {
    const RB: usize = 8;
    debug_assert!(!a.factored || (a.fused.is_some() && a.n <= RB));
    let vecs = a.ld / S::LANES;
    // One chain of non-finite marks per output, folded into `bad` at the end.
    let mut marks = [s.zero(); G];
    // SAFETY (whole body): jv * LANES < ld, i < n, c0 + t < m.
    unsafe {
        let mut i0 = 0;
        while i0 < a.n {
            let i1 = (i0 + RB).min(a.n);
            for jv in 0..vecs {
                let col = jv * S::LANES;
                let gw: [*mut f32; G] = core::array::from_fn(|t| a.gwo.add((c0 + t) * a.ld + col));
                let wo: [S::V; G] =
                    core::array::from_fn(|t| s.load(a.wo.add((c0 + t) * a.ld + col)));
                let mut gacc: [S::V; G] =
                    core::array::from_fn(|t| if i0 == 0 { s.zero() } else { s.load(gw[t]) });
                for i in i0..i1 {
                    let h = s.load(a.h.add(i * a.ld + col));
                    let dz = a.dz.add(i * a.ld + col);
                    let mut dh = if first { s.zero() } else { s.load(dz) };
                    for t in 0..G {
                        let dy = s.splat(*a.dy.add(i * a.m + c0 + t));
                        gacc[t] = s.fmadd(dy, h, gacc[t]);
                        dh = s.fmadd(dy, wo[t], dh);
                    }
                    s.store(dz, if last { s.select_pos(h, dh) } else { dh });
                }
                // Final only after the last row block; the fused step applies then.
                let fused = if i1 == a.n { a.fused } else { None };
                for t in 0..G {
                    match fused {
                        Some(f) if a.factored => put_step(s, gw[t], gacc[t], f, &mut marks[t]),
                        _ => put_grad(s, gw[t], gacc[t], fused, &mut marks[t]),
                    }
                }
            }
            i0 = i1;
        }
    }
    for mark in marks {
        *bad = s.add(*bad, mark);
    }
}

/// # Safety
/// The pointers in `a` are valid for the sizes it states (`a.pack`, when non-null,
/// for `pack_rows(k).min(n) * (k + 2 * PANEL)` floats). `KR <= 8`, `NV * LANES <= 2 * PANEL`.
#[inline(always)]
pub(crate) unsafe fn weight_grad<S: Simd, const KR: usize, const NV: usize, const NV1: usize>(
    s: S,
    a: &WeightGradArgs,
) -> bool {
    let mut bad = s.zero();
    let pack = !a.pack.is_null() && super::should_pack(a.n, a.panels);
    debug_assert!(
        pack || a.head.is_null(),
        "the head is formed while packing dZ"
    );
    let block = if pack { super::pack_rows(a.k) } else { a.n };
    // The last panel on its own when its live units fill fewer of its vectors: the
    // dead ones have zero dZ and keep their zero gradients unwritten.
    let live = super::live_vectors(a.units, a.panels, S::LANES);
    let partial = a.p1 == a.panels && a.p0 < a.p1 && live < NV1;
    // Two instantiations of the block loop, so that the partial panel's extra tiles
    // leave the code of the whole-panel loop as it was (one shared loop measured 6 %
    // more instructions at 16-64-1, n = 32).
    // SAFETY: the caller's contract.
    unsafe {
        if partial {
            weight_grad_blocks::<S, KR, NV, NV1, true>(s, a, pack, block, live, &mut bad);
        } else {
            weight_grad_blocks::<S, KR, NV, NV1, false>(s, a, pack, block, live, &mut bad);
        }
    }
    s.none_marked(bad)
}

/// `weight_grad`'s loop over blocks of rows; with `PARTIAL`, the last panel runs its
/// `live` vectors only.
///
/// # Safety
/// As `weight_grad`; `block` rows fit the pack buffer when `pack`.
#[inline(always)]
pub(crate) unsafe fn weight_grad_blocks<
    S: Simd,
    const KR: usize,
    const NV: usize,
    const NV1: usize,
    const PARTIAL: bool,
>(
    s: S,
    a: &WeightGradArgs,
    pack: bool,
    block: usize,
    live: usize,
    bad: &mut S::V,
) {
    let np = NV / NV1;
    let pe = if PARTIAL { a.p1 - 1 } else { a.p1 };
    let mut i0 = 0;
    while i0 < a.n {
        let rows = block.min(a.n - i0);
        let blk = RowBlock {
            i0,
            rows,
            pack,
            first: i0 == 0,
            fused: if i0 + rows == a.n { a.fused } else { None },
        };
        // SAFETY: rows i0..i0 + rows exist; the pack buffer holds rows * k floats.
        unsafe {
            if pack {
                pack_columns::<KR>(a, i0, rows);
            }
            let mut p = a.p0;
            while p < pe {
                if p + np <= pe {
                    weight_grad_panels::<S, KR, NV, NV1>(s, a, p, &blk, bad);
                    p += np;
                } else {
                    weight_grad_panels::<S, KR, NV1, NV1>(s, a, p, &blk, bad);
                    p += 1;
                }
            }
            if PARTIAL {
                // live < NV1 <= 4: the arms past NV1 - 1 never run.
                match live {
                    0 => {}
                    1 => weight_grad_panels::<S, KR, 1, NV1>(s, a, pe, &blk, bad),
                    2 => weight_grad_panels::<S, KR, 2, NV1>(s, a, pe, &blk, bad),
                    _ => weight_grad_panels::<S, KR, 3, NV1>(s, a, pe, &blk, bad),
                }
            }
        }
        i0 += rows;
    }
}

/// `weight_grad` for a narrow one-panel layer (see `kernels::narrow_weight_grad`): a
/// panel tile would use `units` of a vector's lanes, so the vectors run along A's
/// columns instead and each unit's dZ is broadcast. Each gradient is the same
/// sequence of fused multiply-adds over the rows as in `wg_tile`, so the values are
/// the same bit for bit; the remainder columns and the bias run as panel tiles. Its
/// own table entry, so that `weight_grad`'s code stays as it was.
///
/// # Safety
/// As `weight_grad`, without packing (`a.pack` is not read), with `a.panels == 1`,
/// `a.p0 == 0`, `a.p1 == 1` and `a.units <= PANEL`.
#[inline(always)]
pub(crate) unsafe fn weight_grad_narrow<S: Simd, const KR: usize, const NV1: usize>(
    s: S,
    a: &WeightGradArgs,
) -> bool {
    debug_assert!(a.panels == 1 && a.p0 == 0 && a.p1 == 1 && a.units <= PANEL);
    debug_assert!(a.head.is_null(), "the head is formed while packing dZ");
    let mut bad = s.zero();
    let bad = &mut bad;
    // Units in at most two groups of 8 (each group's sums stay in registers).
    let g0 = if a.units > 8 {
        a.units.div_ceil(2)
    } else {
        a.units
    };
    let live = super::live_vectors(a.units, 1, S::LANES);
    // The gradients of a block of columns, laid out as in gW (one row of PANEL per
    // column); the columns past `units` stay zero, as dZ's are.
    let mut rows = [[0.0f32; PANEL]; NARROW_COLS];
    // One block of every row (one panel never packs): stored once, final.
    let blk = RowBlock {
        i0: 0,
        rows: a.n,
        pack: false,
        first: true,
        fused: a.fused,
    };
    let dzb = DzBlock {
        dz: a.dz,
        ld: PANEL,
    };
    let mut k0 = 0;
    while k0 + S::LANES <= a.k {
        let kv = (NARROW_COLS / S::LANES).min((a.k - k0) / S::LANES);
        // SAFETY (whole block): columns k0..k0 + kv * LANES and the groups' units
        // exist; row r of `rows` holds PANEL floats, and its live vectors' gradients
        // are inside gW.
        unsafe {
            with_units!(g0, |U, KV| narrow_group::<S, U, KV>(
                s, a, &blk, &dzb, k0, 0, kv, &mut rows
            ));
            if a.units > g0 {
                with_units!(a.units - g0, |U, KV| narrow_group::<S, U, KV>(
                    s, a, &blk, &dzb, k0, g0, kv, &mut rows
                ));
            }
            for (r, row) in rows[..kv * S::LANES].iter().enumerate() {
                for v in 0..live {
                    let g = s.load(row.as_ptr().add(v * S::LANES));
                    put_grad(
                        s,
                        a.gw.add((k0 + r) * PANEL + v * S::LANES),
                        g,
                        a.fused,
                        bad,
                    );
                }
            }
        }
        k0 += kv * S::LANES;
    }
    // The columns left (fewer than a vector) and the bias, as panel tiles of the live
    // vectors: one or two (4 units < 3 live * lanes leaves no third).
    // SAFETY: columns k0.. of every row.
    unsafe {
        if live == 1 {
            narrow_tail::<S, KR, 1, NV1>(s, a, k0, &blk, &dzb, bad)
        } else {
            narrow_tail::<S, KR, 2, NV1>(s, a, k0, &blk, &dzb, bad)
        }
    }
    s.none_marked(*bad)
}

/// Columns of gW a narrow tile holds at most (`weight_grad_narrow`'s buffer).
const NARROW_COLS: usize = 64;

/// Call `$f::<.., U, KV, ..>` for `$u` units (1..=8) with the column vectors per
/// tile, `KV`, that keep `U * KV` sums and the broadcasts in 16 registers.
macro_rules! with_units {
    ($u:expr, |$U:ident, $KV:ident| $call:expr) => {
        match $u {
            1 => {
                const $U: usize = 1;
                const $KV: usize = 4;
                $call
            }
            2 => {
                const $U: usize = 2;
                const $KV: usize = 4;
                $call
            }
            3 => {
                const $U: usize = 3;
                const $KV: usize = 3;
                $call
            }
            4 => {
                const $U: usize = 4;
                const $KV: usize = 2;
                $call
            }
            5 => {
                const $U: usize = 5;
                const $KV: usize = 2;
                $call
            }
            6 => {
                const $U: usize = 6;
                const $KV: usize = 1;
                $call
            }
            7 => {
                const $U: usize = 7;
                const $KV: usize = 1;
                $call
            }
            8 => {
                const $U: usize = 8;
                const $KV: usize = 1;
                $call
            }
            _ => unreachable!("unit groups have 1..=8 units"),
        }
    };
}
use with_units;

/// Units `j0..j0+U` of gW for columns `k0..k0 + kv * LANES`, summed over the rows of
/// `blk`, into `rows` (row r: column k0 + r), by tiles of `KV` column vectors.
///
/// # Safety
/// The block's rows, the columns and the units are inside A and dZ;
/// `kv * LANES <= NARROW_COLS`.
#[inline(always)]
#[allow(clippy::too_many_arguments)]
unsafe fn narrow_group<S: Simd, const U: usize, const KV: usize>(
    s: S,
    a: &WeightGradArgs,
    blk: &RowBlock,
    dzb: &DzBlock,
    k0: usize,
    j0: usize,
    kv: usize,
    rows: &mut [[f32; PANEL]; NARROW_COLS],
) {
    let mut c = 0;
    while c < kv {
        let t = KV.min(kv - c);
        // SAFETY: the caller's contract; t <= KV vectors from column k0 + c * LANES.
        unsafe {
            if t == KV {
                narrow_tile::<S, U, KV>(s, a, blk, dzb, k0 + c * S::LANES, j0, rows, c);
            } else {
                for u in 0..t {
                    narrow_tile::<S, U, 1>(
                        s,
                        a,
                        blk,
                        dzb,
                        k0 + (c + u) * S::LANES,
                        j0,
                        rows,
                        c + u,
                    );
                }
            }
        }
        c += t;
    }
}

/// One tile: `U` units by `KV` vectors of columns from `k`, into `rows` from row
/// `c * LANES`.
///
/// # Safety
/// As `narrow_group`.
#[inline(always)]
#[allow(clippy::too_many_arguments)]
unsafe fn narrow_tile<S: Simd, const U: usize, const KV: usize>(
    s: S,
    a: &WeightGradArgs,
    blk: &RowBlock,
    dzb: &DzBlock,
    k: usize,
    j0: usize,
    rows: &mut [[f32; PANEL]; NARROW_COLS],
    c: usize,
) {
    let mut acc = [[s.zero(); KV]; U];
    // SAFETY (whole body): the caller's contract; row pointers are formed only for
    // the block's rows.
    unsafe {
        for i in 0..blk.rows {
            let dz = dzb.dz.add(i * dzb.ld + j0);
            let ar = a.a.add((blk.i0 + i) * a.lda + k);
            let d: [S::V; U] = core::array::from_fn(|j| s.splat(*dz.add(j)));
            for v in 0..KV {
                let x = s.load(ar.add(v * S::LANES));
                for j in 0..U {
                    // x * dz + acc: wg_tile's product, in the same order over rows.
                    acc[j][v] = s.fmadd(x, d[j], acc[j][v]);
                }
            }
        }
        let mut lanes = [0.0f32; 16];
        for j in 0..U {
            for v in 0..KV {
                s.store(lanes.as_mut_ptr(), acc[j][v]);
                for (l, x) in lanes[..S::LANES].iter().enumerate() {
                    rows[(c + v) * S::LANES + l][j0 + j] = *x;
                }
            }
        }
    }
}

/// `weight_grad_narrow`'s columns from `k0` (fewer than a vector) and the bias, as
/// panel tiles of the `NV` live vectors.
///
/// # Safety
/// As `weight_grad_narrow`; `NV` is the panel's live vectors.
#[inline(always)]
unsafe fn narrow_tail<S: Simd, const KR: usize, const NV: usize, const NV1: usize>(
    s: S,
    a: &WeightGradArgs,
    mut k0: usize,
    blk: &RowBlock,
    dzb: &DzBlock,
    bad: &mut S::V,
) {
    // SAFETY (whole body): the caller's contract.
    unsafe {
        let src = |k0: usize| a.a.add(blk.i0 * a.lda + k0);
        while k0 + KR <= a.k {
            wg_tile::<S, KR, NV, NV1, false>(s, a, 0, k0, blk, dzb, src(k0), a.lda, bad);
            k0 += KR;
        }
        let rem = a.k - k0;
        with_rem!(rem, |R| wg_tile::<S, R, NV, NV1, true>(
            s,
            a,
            0,
            k0,
            blk,
            dzb,
            src(k0),
            a.lda,
            bad
        ));
    }
}

/// A block of rows of the reduction over the batch.
struct RowBlock {
    i0: usize,
    rows: usize,
    /// Whether A's columns are packed (see `pack_columns`).
    pack: bool,
    /// The first block stores the gradients; later ones add to them.
    first: bool,
    /// The fused step, on the last block only (when the gradients are final).
    fused: Option<Fused>,
}

/// Copy rows `i0..i0+rows` of A into `a.pack` by blocks of `KR` columns (the last
/// block narrower), each block row-major, so that a tile reads its `KR` values of a
/// row from one short contiguous run instead of one cache line per row.
///
/// # Safety
/// As `weight_grad`, with the pack buffer non-null.
#[inline(always)]
unsafe fn pack_columns<const KR: usize>(a: &WeightGradArgs, i0: usize, rows: usize) {
    let mut k0 = 0;
    while k0 < a.k {
        let w = KR.min(a.k - k0);
        // SAFETY: block k0 starts at k0 * rows in the pack buffer and holds rows * w
        // floats; the source rows and columns are inside A.
        unsafe {
            let dst = a.pack.add(k0 * rows);
            let src = a.a.add(i0 * a.lda + k0);
            // Fixed-size copies: a few moves per row, not a memcpy call.
            with_rows!(w, |W| copy_rows::<W>(src, a.lda, dst, rows));
        }
        k0 += w;
    }
}

/// Copy `rows` rows of `W` floats, `stride` apart, to consecutive rows at `dst`.
///
/// # Safety
/// The source rows and `dst[..rows * W]` are valid and do not overlap.
#[inline(always)]
unsafe fn copy_rows<const W: usize>(src: *const f32, stride: usize, dst: *mut f32, rows: usize) {
    for i in 0..rows {
        // SAFETY: the caller's contract.
        unsafe {
            (dst.add(i * W) as *mut [f32; W])
                .write_unaligned((src.add(i * stride) as *const [f32; W]).read_unaligned());
        }
    }
}

#[inline(always)]
unsafe fn weight_grad_panels<S: Simd, const KR: usize, const NV: usize, const NV1: usize>(
    s: S,
    a: &WeightGradArgs,
    p: usize,
    blk: &RowBlock,
    bad: &mut S::V,
) {
    // Where row i0 of the column block at k0 starts, and the stride between rows.
    let src = |k0: usize, w: usize| {
        if blk.pack {
            // SAFETY: inside the pack buffer (see pack_columns).
            (unsafe { a.pack.add(k0 * blk.rows) } as *const f32, w)
        } else {
            // SAFETY: inside A.
            (unsafe { a.a.add(blk.i0 * a.lda + k0) }, a.lda)
        }
    };
    let mut k0 = 0;
    // SAFETY (whole body): k0 + rows <= k; panels p..p + NV/NV1 exist; the pack buffer
    // holds rows * (k + 2 * PANEL) floats.
    unsafe {
        // The block's dZ columns for these panels, read by every tile below: packed
        // contiguously when A is, since dZ's rows can be a multiple of 4 KiB apart
        // (ld = 1024) and would then all fall into one L1 set.
        let (dz, dz_ld) = if blk.pack {
            let dst = a.pack.add(a.k * blk.rows);
            // A copy: read through the pointer, its fields would be reloaded after
            // every store into the pack buffer.
            if let Some(hd) = a.head.as_ref().copied() {
                pack_head_dz::<S, NV>(s, a, &hd, p, blk, dst, bad);
            } else {
                let src = a.dz.add(blk.i0 * a.panels * PANEL + p * PANEL);
                for i in 0..blk.rows {
                    for v in 0..NV {
                        let at = i * NV * S::LANES + v * S::LANES;
                        s.store(
                            dst.add(at),
                            s.load(src.add(i * a.panels * PANEL + v * S::LANES)),
                        );
                    }
                }
            }
            (dst as *const f32, NV * S::LANES)
        } else {
            (
                a.dz.add(blk.i0 * a.panels * PANEL + p * PANEL),
                a.panels * PANEL,
            )
        };
        let dzb = DzBlock { dz, ld: dz_ld };
        while k0 + KR <= a.k {
            let (ap, stride) = src(k0, KR);
            wg_tile::<S, KR, NV, NV1, false>(s, a, p, k0, blk, &dzb, ap, stride, bad);
            k0 += KR;
        }
        // The remainder rows share a tile with the bias row (the sum of dZ).
        let rem = a.k - k0;
        let (ap, stride) = src(k0, rem);
        with_rem!(rem, |R| wg_tile::<S, R, NV, NV1, true>(
            s, a, p, k0, blk, &dzb, ap, stride, bad
        ));
    }
}

/// Pack the block's dZ for the NV vectors at panel `p` from the output layer
/// (`HeadOne`): `dz = select(H > 0, dy w_o)`, and add the block's share of
/// `gW_o = dy^T H` for those columns (stored by the first block, final and stepped
/// by the last).
///
/// # Safety
/// As `weight_grad_panels`; `dst` holds `rows * NV * LANES` floats.
#[inline(always)]
unsafe fn pack_head_dz<S: Simd, const NV: usize>(
    s: S,
    a: &WeightGradArgs,
    hd: &HeadOne,
    p: usize,
    blk: &RowBlock,
    dst: *mut f32,
    bad: &mut S::V,
) {
    let ld = a.panels * PANEL;
    // SAFETY (whole body): rows of the block and the NV vectors at panel p are inside
    // H, dy, w_o and gW_o; dst as stated.
    unsafe {
        let col = p * PANEL;
        let wo: [S::V; NV] = core::array::from_fn(|v| s.load(hd.wo.add(col + v * S::LANES)));
        let mut gacc = [s.zero(); NV];
        let mut h = hd.h.add(blk.i0 * ld + col);
        for i in 0..blk.rows {
            let dy = s.splat(*hd.dy.add(blk.i0 + i));
            for v in 0..NV {
                let hv = s.load(h.add(v * S::LANES));
                gacc[v] = s.fmadd(dy, hv, gacc[v]);
                let at = dst.add(i * NV * S::LANES + v * S::LANES);
                s.store(at, s.select_pos(hv, s.mul(dy, wo[v])));
            }
            h = h.add(ld);
        }
        for v in 0..NV {
            let at = hd.gwo.add(col + v * S::LANES);
            let g = if blk.first {
                gacc[v]
            } else {
                s.add(s.load(at), gacc[v])
            };
            put_grad(s, at, g, blk.fused, bad);
        }
    }
}

/// Where a tile reads dZ: the block's first row at the tile's panels, rows `ld` apart.
struct DzBlock {
    dz: *const f32,
    ld: usize,
}

/// Rows `k0..k0+R` of `gW^T` for the NV vectors at panel `p`, and with `BIAS` the
/// bias gradient of those columns, summed over the rows of `blk`. `ap` points at
/// A's value for the block's first row and column `k0`; rows are `stride` apart.
#[inline(always)]
#[allow(clippy::too_many_arguments)]
unsafe fn wg_tile<S: Simd, const R: usize, const NV: usize, const NV1: usize, const BIAS: bool>(
    s: S,
    a: &WeightGradArgs,
    p: usize,
    k0: usize,
    blk: &RowBlock,
    dzb: &DzBlock,
    ap: *const f32,
    stride: usize,
    bad: &mut S::V,
) {
    let mut acc = [[s.zero(); NV]; R];
    let mut bacc = [s.zero(); NV];
    // SAFETY (whole body): rows of the block, k0 + r < k, and the NV vectors in
    // panels p.. are inside dZ, A (or the pack), gW and gb; row pointers are formed
    // only for the block's rows.
    unsafe {
        let ld = dzb.ld;
        for i in 0..blk.rows {
            // Row i of dZ and of A, from their bases: in bounds for every row read
            // (stepping a pointer past the last row would leave the caller's input),
            // and the compiler still turns it into one increment per row.
            let (dz, ar) = (dzb.dz.add(i * ld), ap.add(i * stride));
            let d: [S::V; NV] = core::array::from_fn(|v| s.load(dz.add(v * S::LANES)));
            for r in 0..R {
                let x = s.splat(*ar.add(r));
                for v in 0..NV {
                    acc[r][v] = s.fmadd(x, d[v], acc[r][v]);
                }
            }
            if BIAS {
                for v in 0..NV {
                    bacc[v] = s.add(bacc[v], d[v]);
                }
            }
        }
        let mut put = |at: *mut f32, v: S::V| {
            let v = if blk.first { v } else { s.add(s.load(at), v) };
            put_grad(s, at, v, blk.fused, bad);
        };
        for (r, row) in acc.iter().enumerate() {
            for (v, x) in row.iter().enumerate() {
                let off = (p + v / NV1) * a.k * PANEL + (k0 + r) * PANEL + (v % NV1) * S::LANES;
                put(a.gw.add(off), *x);
            }
        }
        if BIAS {
            for (v, x) in bacc.iter().enumerate() {
                put(a.gb.add(p * PANEL + v * S::LANES), *x);
            }
        }
    }
}

/// # Safety
/// The pointers in `a` are valid for the sizes it states. `RI * CI * NV1` vectors fit
/// the register file.
#[inline(always)]
pub(crate) unsafe fn input_grad<
    S: Simd,
    const RI: usize,
    const CI: usize,
    const NV1: usize,
    const MR: usize,
    const NV: usize,
>(
    s: S,
    a: &InputGradArgs,
) {
    if !a.wt.is_null() {
        // SAFETY: the caller's contract; wt holds ldp * units floats.
        unsafe {
            if !a.wt_ready {
                transpose_panels(s, a);
            }
            // dZp = (dZ W) * [Hp > 0]: the forward's GEMM over the transposed weights,
            // with the mask as its epilogue and no bias.
            dense_relu::<S, MR, NV, NV1>(
                s,
                &DenseArgs {
                    a: a.dz,
                    lda: a.panels * PANEL,
                    n: a.n,
                    k: a.units,
                    w: a.wt,
                    b: core::ptr::null(),
                    panels: a.ldp / PANEL,
                    units: a.k,
                    h: a.dzp,
                    head: core::ptr::null(),
                    head_bias: 0.0,
                    yhat: core::ptr::null_mut(),
                    part: core::ptr::null_mut(),
                    mask: a.hp,
                },
            );
        }
        return;
    }
    let mut i0 = 0;
    // SAFETY (whole body): tiles stay within n rows and k columns; padding columns
    // k..ldp of each row are inside dZp.
    unsafe {
        while i0 < a.n {
            let full_rows = i0 + RI <= a.n;
            let mut k0 = 0;
            while k0 < a.k {
                let full_cols = k0 + CI <= a.k;
                match (full_rows, full_cols) {
                    (true, true) => ig_tile::<S, RI, CI, NV1>(s, a, i0, k0),
                    (true, false) => ig_tile::<S, RI, 1, NV1>(s, a, i0, k0),
                    (false, true) => ig_tile::<S, 1, CI, NV1>(s, a, i0, k0),
                    (false, false) => ig_tile::<S, 1, 1, NV1>(s, a, i0, k0),
                }
                k0 += if full_cols { CI } else { 1 };
            }
            let rows = if full_rows { RI } else { 1 };
            for r in 0..rows {
                for kk in a.k..a.ldp {
                    *a.dzp.add((i0 + r) * a.ldp + kk) = 0.0;
                }
            }
            i0 += rows;
        }
    }
}

/// Lay W out for `dZ W` as the forward lays it out for `X W^T`: panels of 16 inputs,
/// each `units x 16` (`wt[q][j][c] = W[j][16 q + c]`), zero past the layer's inputs.
/// Only the layer's live outputs `j < units` are laid out: dZ is zero past them, so
/// the product's reduction stops there. It costs one pass over W per call against n
/// passes in the product.
///
/// In W's layout, the 16 inputs `16 q ..` of output panel `P` are one contiguous
/// 16 x 16 block (rows: inputs), and in `wt` the same outputs and inputs are one
/// too (rows: outputs): whole blocks go through `Simd::transpose16`; a last panel
/// of fewer live outputs goes value by value.
///
/// # Safety
/// `a.w` holds the layer's panels; `a.wt` holds `ldp * units` floats.
#[inline(always)]
unsafe fn transpose_panels<S: Simd>(s: S, a: &InputGradArgs) {
    let kr = a.units;
    let full = a.k / PANEL;
    let full_out = kr / PANEL;
    // SAFETY (whole body): block (q, panel) lies inside W (inputs 16 q.. < k, panel
    // < panels) and inside wt (q < ldp / PANEL, outputs < units).
    unsafe {
        for q in 0..full {
            for panel in 0..full_out {
                s.transpose16(
                    a.w.add(panel * a.k * PANEL + q * PANEL * PANEL),
                    a.wt.add((q * kr + panel * PANEL) * PANEL),
                );
            }
        }
        // Value by value: the last output panel's live rows, and the last, partial
        // block of inputs (zero past k).
        for q in 0..a.ldp / PANEL {
            let j0 = if q < full { full_out * PANEL } else { 0 };
            for j in j0..kr {
                let dst = a.wt.add((q * kr + j) * PANEL);
                let src = a.w.add((j / PANEL) * a.k * PANEL + j % PANEL);
                for c in 0..PANEL {
                    let kk = q * PANEL + c;
                    *dst.add(c) = if kk < a.k { *src.add(kk * PANEL) } else { 0.0 };
                }
            }
        }
    }
}

#[inline(always)]
unsafe fn ig_tile<S: Simd, const R: usize, const C: usize, const NV1: usize>(
    s: S,
    a: &InputGradArgs,
    i0: usize,
    k0: usize,
) {
    let ld = a.panels * PANEL;
    let mut acc = [[[s.zero(); NV1]; C]; R];
    // SAFETY (whole body): rows i0..i0+R < n, columns k0..k0+C < k, panels < panels.
    unsafe {
        for p in 0..a.panels {
            let d: [[S::V; NV1]; R] = core::array::from_fn(|r| {
                core::array::from_fn(|v| s.load(a.dz.add((i0 + r) * ld + p * PANEL + v * S::LANES)))
            });
            let w = a.w.add(p * a.k * PANEL + k0 * PANEL);
            for c in 0..C {
                let wv: [S::V; NV1] =
                    core::array::from_fn(|v| s.load(w.add(c * PANEL + v * S::LANES)));
                for r in 0..R {
                    for v in 0..NV1 {
                        acc[r][c][v] = s.fmadd(d[r][v], wv[v], acc[r][c][v]);
                    }
                }
            }
        }
        for (r, row) in acc.iter().enumerate() {
            for (c, parts) in row.iter().enumerate() {
                let mut sum = parts[0];
                for part in &parts[1..] {
                    sum = s.add(sum, *part);
                }
                let at = (i0 + r) * a.ldp + k0 + c;
                *a.dzp.add(at) = if *a.hp.add(at) > 0.0 {
                    s.hsum(sum)
                } else {
                    0.0
                };
            }
        }
    }
}

// ---------------------------------------------------------------- element-wise

/// # Safety
/// `yhat`, `y`, `dy` are valid for `len` floats.
#[inline(always)]
pub(crate) unsafe fn loss_grad<S: Simd>(
    s: S,
    yhat: *const f32,
    y: *const f32,
    len: usize,
    scale: f32,
    dy: *mut f32,
) -> f32 {
    let sv = s.splat(scale);
    let mut acc = s.zero();
    let mut t = 0;
    // SAFETY (whole body): t + LANES <= len in the loop, t < len in the tail.
    unsafe {
        while t + S::LANES <= len {
            let e = s.sub(s.load(yhat.add(t)), s.load(y.add(t)));
            acc = s.fmadd(e, e, acc);
            s.store(dy.add(t), s.mul(sv, e));
            t += S::LANES;
        }
        let mut sum = s.hsum(acc);
        while t < len {
            let e = *yhat.add(t) - *y.add(t);
            sum += e * e;
            *dy.add(t) = scale * e;
            t += 1;
        }
        sum
    }
}

/// # Safety
/// `p`, `g`, `out` are valid for `len` floats.
#[inline(always)]
pub(crate) unsafe fn sgd<S: Simd>(
    s: S,
    p: *const f32,
    g: *const f32,
    out: *mut f32,
    len: usize,
    lr: f32,
) -> bool {
    let lrv = s.splat(lr);
    // The non-finite marker (see `Simd::mark`).
    let mut bad = s.zero();
    let mut t = 0;
    // SAFETY (whole body): t + LANES <= len in the loop, t < len in the tail.
    unsafe {
        while t + S::LANES <= len {
            let v = s.fnmadd(lrv, s.load(g.add(t)), s.load(p.add(t)));
            bad = s.mark(bad, v);
            s.store(out.add(t), v);
            t += S::LANES;
        }
        let mut ok = s.none_marked(bad);
        while t < len {
            let v = *p.add(t) - lr * *g.add(t);
            ok &= v.is_finite();
            *out.add(t) = v;
            t += 1;
        }
        ok
    }
}

/// # Safety
/// `p` is valid for `len` floats.
#[inline(always)]
pub(crate) unsafe fn all_finite<S: Simd>(s: S, p: *const f32, len: usize) -> bool {
    let mut bad = s.zero();
    let mut t = 0;
    // SAFETY (whole body): t + LANES <= len in the loop, t < len in the tail.
    unsafe {
        while t + S::LANES <= len {
            bad = s.mark(bad, s.load(p.add(t)));
            t += S::LANES;
        }
        let mut ok = s.none_marked(bad);
        while t < len {
            ok &= (*p.add(t)).is_finite();
            t += 1;
        }
        ok
    }
}

/// # Safety
/// `src` and `dst` are valid for `len` floats and do not overlap.
#[inline(always)]
pub(crate) unsafe fn copy_finite<S: Simd>(
    s: S,
    src: *const f32,
    dst: *mut f32,
    len: usize,
) -> bool {
    let mut bad = s.zero();
    let mut t = 0;
    // SAFETY (whole body): t + LANES <= len in the loop, t < len in the tail.
    unsafe {
        while t + S::LANES <= len {
            let v = s.load(src.add(t));
            bad = s.mark(bad, v);
            s.store(dst.add(t), v);
            t += S::LANES;
        }
        let mut ok = s.none_marked(bad);
        while t < len {
            let v = *src.add(t);
            ok &= v.is_finite();
            *dst.add(t) = v;
            t += 1;
        }
        ok
    }
}

/// # Safety
/// The pointers in `a` are valid for `a.len` floats (`s2`/`out_s2` for Adam only).
#[inline(always)]
pub(crate) unsafe fn update<S: Simd>(s: S, a: &UpdateArgs) -> bool {
    let mut bad = s.zero();
    let lanes_end = a.len / S::LANES * S::LANES;
    // SAFETY (whole body): t + LANES <= len in the vector loops.
    unsafe {
        match a.update {
            Update::Momentum {
                lr,
                mu,
                nesterov,
                wd,
                scale,
            } => {
                let (lrv, muv, wdv, sv) = (s.splat(lr), s.splat(mu), s.splat(wd), s.splat(scale));
                let mut t = 0;
                while t < lanes_end {
                    let p = s.load(a.p.add(t));
                    let g = s.fmadd(wdv, p, s.mul(sv, s.load(a.g.add(t))));
                    let b = if a.first {
                        g
                    } else {
                        s.fmadd(muv, s.load(a.s1.add(t)), g)
                    };
                    let d = if nesterov { s.fmadd(muv, b, g) } else { b };
                    let np = s.fnmadd(lrv, d, p);
                    bad = s.mark(s.mark(bad, np), b);
                    s.store(a.out_p.add(t), np);
                    s.store(a.out_s1.add(t), b);
                    t += S::LANES;
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
                let (b1v, c1v) = (s.splat(b1), s.splat(1.0 - b1));
                let (b2v, c2v) = (s.splat(b2), s.splat(1.0 - b2));
                let (epsv, wdv, dv, stepv) =
                    (s.splat(eps), s.splat(wd), s.splat(decay), s.splat(step));
                let (bcv, sv) = (s.splat(inv_sqrt_bc2), s.splat(scale));
                let mut t = 0;
                while t < lanes_end {
                    let p = s.load(a.p.add(t));
                    let g = s.fmadd(wdv, p, s.mul(sv, s.load(a.g.add(t))));
                    let m = s.fmadd(b1v, s.load(a.s1.add(t)), s.mul(c1v, g));
                    // (1 - b2) g, then times g, in the reference's order: g * g alone
                    // overflows for |g| > 1.8e19 where the reference's v stays finite.
                    let v = s.fmadd(b2v, s.load(a.s2.add(t)), s.mul(s.mul(c2v, g), g));
                    let denom = s.fmadd(s.sqrt(v), bcv, epsv);
                    let np = s.fnmadd(stepv, s.div(m, denom), s.mul(p, dv));
                    bad = s.mark(s.mark(s.mark(bad, np), m), v);
                    s.store(a.out_p.add(t), np);
                    s.store(a.out_s1.add(t), m);
                    s.store(a.out_s2.add(t), v);
                    t += S::LANES;
                }
            }
        }
    }
    // The few values past the last whole vector (none for the arena's buffers, whose
    // lengths are multiples of 16) go through the reference.
    let ok = lanes_end == a.len
        || unsafe {
            // SAFETY: the same buffers, from lanes_end on.
            super::scalar::update_range(a, lanes_end)
        };
    ok && s.none_marked(bad)
}

/// # Safety
/// `p` is valid for `len` floats.
#[inline(always)]
pub(crate) unsafe fn sum_sq<S: Simd>(s: S, p: *const f32, len: usize) -> f64 {
    // Several f32 accumulators, summed in f64 every 4096 values, keep the error small.
    // A block whose squares overflow f32 (|g| > 1.8e19) is summed again in f64, as
    // the reference sums every value, so that clipping sees the same finite norm.
    let mut total = 0.0f64;
    let mut t = 0;
    // SAFETY (whole body): t + LANES <= len in the loop, t < len in the tail.
    unsafe {
        while t + S::LANES <= len {
            let (start, end) = (t, (t + 4096).min(len / S::LANES * S::LANES));
            let mut acc = s.zero();
            while t < end {
                let v = s.load(p.add(t));
                acc = s.fmadd(v, v, acc);
                t += S::LANES;
            }
            let part = s.hsum(acc);
            total += if part.is_finite() {
                f64::from(part)
            } else {
                (start..end)
                    .map(|i| f64::from(*p.add(i)) * f64::from(*p.add(i)))
                    .sum()
            };
        }
        while t < len {
            total += f64::from(*p.add(t)) * f64::from(*p.add(t));
            t += 1;
        }
    }
    total
}

/// Define a kernel set's `#[target_feature]` entry points and its `KERNELS` table.
/// `$token` must be a `Simd` type with an `unsafe fn assume()` constructor; `attrs`
/// are put on every entry point (the ISA's `#[target_feature]`).
macro_rules! simd_kernel_set {
    (
        isa: $isa:expr,
        attrs: [$(#[$attr:meta])*],
        token: $tok:ty,
        dense: ($mr:literal, $nv:literal),
        weight_grad: ($kr:literal, $nvw:literal),
        input_grad: ($ri:literal, $ci:literal),
        row: $nvr:literal,
        panel_vectors: $nv1:literal $(,)?
    ) => {
        use $crate::kernels::generic;
        use $crate::kernels::row::{self, OneHiddenStep, RowCtx, RowTrain};
        use $crate::kernels::{
            DenseArgs, HeadArgs, HeadBackArgs, InputGradArgs, Kernels, RowPrograms, UpdateArgs,
            WeightGradArgs,
        };

        pub(crate) static KERNELS: Kernels = Kernels {
            isa: $isa,
            dense_relu,
            head_forward,
            head_backward,
            weight_grad,
            weight_grad_narrow,
            input_grad,
            loss_grad,
            sgd,
            all_finite,
            copy_finite,
            update,
            sum_sq,
            lanes: $crate::layout::PANEL / $nv1,
            fuses_head: true,
            row: Some(RowPrograms {
                forward: forward_row,
                train: train_row,
                forward_one_hidden,
                train_one_hidden,
            }),
        };

        // SAFETY (every entry point below): the functions are reachable only through
        // `KERNELS`, which `kernels::table` hands out only after run-time detection
        // found the features, so making the token is sound; the pointer contracts
        // are the callers', as documented on `Kernels`.

        $(#[$attr])*
        unsafe fn dense_relu(a: &DenseArgs) {
            unsafe { generic::dense_relu::<$tok, $mr, $nv, $nv1>(<$tok>::assume(), a) }
        }
        $(#[$attr])*
        unsafe fn head_forward(a: &HeadArgs) {
            unsafe { generic::head_forward::<$tok>(<$tok>::assume(), a) }
        }
        $(#[$attr])*
        unsafe fn head_backward(a: &HeadBackArgs) -> bool {
            unsafe { generic::head_backward::<$tok>(<$tok>::assume(), a) }
        }
        $(#[$attr])*
        unsafe fn weight_grad(a: &WeightGradArgs) -> bool {
            unsafe { generic::weight_grad::<$tok, $kr, $nvw, $nv1>(<$tok>::assume(), a) }
        }
        $(#[$attr])*
        unsafe fn weight_grad_narrow(a: &WeightGradArgs) -> bool {
            unsafe { generic::weight_grad_narrow::<$tok, $kr, $nv1>(<$tok>::assume(), a) }
        }
        $(#[$attr])*
        unsafe fn input_grad(a: &InputGradArgs) {
            unsafe { generic::input_grad::<$tok, $ri, $ci, $nv1, $mr, $nv>(<$tok>::assume(), a) }
        }
        $(#[$attr])*
        unsafe fn loss_grad(yhat: *const f32, y: *const f32, len: usize, scale: f32, dy: *mut f32) -> f32 {
            unsafe { generic::loss_grad::<$tok>(<$tok>::assume(), yhat, y, len, scale, dy) }
        }
        $(#[$attr])*
        unsafe fn sgd(p: *const f32, g: *const f32, out: *mut f32, len: usize, lr: f32) -> bool {
            unsafe { generic::sgd::<$tok>(<$tok>::assume(), p, g, out, len, lr) }
        }
        $(#[$attr])*
        unsafe fn all_finite(p: *const f32, len: usize) -> bool {
            unsafe { generic::all_finite::<$tok>(<$tok>::assume(), p, len) }
        }
        $(#[$attr])*
        unsafe fn update(a: &UpdateArgs) -> bool {
            unsafe { generic::update::<$tok>(<$tok>::assume(), a) }
        }
        $(#[$attr])*
        unsafe fn sum_sq(p: *const f32, len: usize) -> f64 {
            unsafe { generic::sum_sq::<$tok>(<$tok>::assume(), p, len) }
        }
        $(#[$attr])*
        unsafe fn forward_row(c: &RowCtx) -> bool {
            unsafe { row::forward_row::<$tok, $nvr, $nv1>(<$tok>::assume(), c) }
        }
        $(#[$attr])*
        unsafe fn train_row(c: &RowCtx, t: &RowTrain) -> (f32, bool) {
            unsafe { row::train_row::<$tok, $nvr, $nv1, $ri, $ci>(<$tok>::assume(), c, t) }
        }
        $(#[$attr])*
        unsafe fn forward_one_hidden(c: &RowCtx) -> bool {
            unsafe { row::forward_one_hidden::<$tok, $nvr, $nv1>(<$tok>::assume(), c) }
        }
        $(#[$attr])*
        unsafe fn train_one_hidden(t: &OneHiddenStep) -> (f32, bool) {
            unsafe { row::train_one_hidden::<$tok, $nvr, $nv1>(<$tok>::assume(), t) }
        }
        $(#[$attr])*
        unsafe fn copy_finite(src: *const f32, dst: *mut f32, len: usize) -> bool {
            unsafe { generic::copy_finite::<$tok>(<$tok>::assume(), src, dst, len) }
        }
    };
}

pub(crate) use simd_kernel_set;
