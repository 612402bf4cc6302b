//! The baseline: flowmlp's train step as a careful Rust user would write it with a
//! good GEMM (the `matrixmultiply` crate's `sgemm`, single-threaded) and plain loops
//! for the bias, ReLU, mask and update. Same math as flowmlp's contract:
//!
//! ```text
//! forward   Z_l = A_{l-1} W_l^T + b_l,  A_l = ReLU(Z_l) (l <= k),  Yhat = Z_{k+1}
//! loss      E = Yhat - Y,  L = sum E^2 / n,  dZ_{k+1} = (2/n) E
//! backward  gW_l = dZ_l^T A_{l-1},  gb_l = column sums of dZ_l
//!           dZ_{l-1} = (dZ_l W_l) * [A_{l-1} > 0]            (l > 1)
//! update    theta -= lr * g
//! ```
//!
//! Parameters live in flowmlp's flat layout (`W_1` (h_1 x d, row-major), `b_1`, ...,
//! `W_o` (m x h_k), `b_o`), so `Model::get_params` output loads directly. All
//! buffers are allocated in `new`; `sgemm` itself allocates its packing buffers on
//! every call, as it does for every user.

/// One layer's offsets in the flat parameter array.
struct Layer {
    inputs: usize,
    outputs: usize,
    w: usize,
    b: usize,
}

/// An MLP `d -> h_1 .. h_k -> m` trained with `sgemm` plus loops.
pub struct Baseline {
    layers: Vec<Layer>,
    max_batch: usize,
    params: Vec<f32>,
    grads: Vec<f32>,
    /// Output of every layer, `max_batch x outputs` (the last is `Yhat`).
    acts: Vec<Vec<f32>>,
    /// Two `max_batch x widest` gradient buffers, used alternately going down.
    dz: [Vec<f32>; 2],
}

/// `C (m x n) = A (m x k) B (k x n) + beta C`, row and column strides in floats.
#[allow(clippy::too_many_arguments)]
fn gemm(
    (m, k, n): (usize, usize, usize),
    a: &[f32],
    (rsa, csa): (usize, usize),
    b: &[f32],
    (rsb, csb): (usize, usize),
    beta: f32,
    c: &mut [f32],
    rsc: usize,
) {
    // The strides stay inside the slices: checked once here, cheaply.
    assert!(m > 0 && k > 0 && n > 0);
    assert!((m - 1) * rsa + (k - 1) * csa < a.len());
    assert!((k - 1) * rsb + (n - 1) * csb < b.len());
    assert!((m - 1) * rsc + n - 1 < c.len());
    // SAFETY: the asserts above keep every element sgemm touches inside a, b, c, and
    // c does not alias a or b (it is a distinct &mut slice).
    unsafe {
        matrixmultiply::sgemm(
            m,
            k,
            n,
            1.0,
            a.as_ptr(),
            rsa as isize,
            csa as isize,
            b.as_ptr(),
            rsb as isize,
            csb as isize,
            beta,
            c.as_mut_ptr(),
            rsc as isize,
            1,
        )
    }
}

impl Baseline {
    /// Buffers for `dims = [d, h_1, .., h_k, m]` and up to `max_batch` rows;
    /// parameters zero until `set_params`.
    pub fn new(dims: &[usize], max_batch: usize) -> Baseline {
        let mut layers = Vec::new();
        let mut off = 0;
        for w in dims.windows(2) {
            let (inputs, outputs) = (w[0], w[1]);
            layers.push(Layer {
                inputs,
                outputs,
                w: off,
                b: off + inputs * outputs,
            });
            off += inputs * outputs + outputs;
        }
        let widest = dims.iter().copied().max().unwrap_or(1);
        Baseline {
            acts: layers
                .iter()
                .map(|l| vec![0.0; max_batch * l.outputs])
                .collect(),
            layers,
            max_batch,
            params: vec![0.0; off],
            grads: vec![0.0; off],
            dz: [vec![0.0; max_batch * widest], vec![0.0; max_batch * widest]],
        }
    }

    /// Bytes of the buffers this baseline allocated (not counting sgemm's packing).
    pub fn bytes(&self) -> usize {
        let floats = self.params.len()
            + self.grads.len()
            + self.acts.iter().map(Vec::len).sum::<usize>()
            + self.dz.iter().map(Vec::len).sum::<usize>();
        floats * size_of::<f32>()
    }

    pub fn set_params(&mut self, flat: &[f32]) {
        self.params.copy_from_slice(flat);
    }

    pub fn params(&self) -> &[f32] {
        &self.params
    }

    /// Rows of `x`, checked against the buffers.
    fn rows(&self, x: &[f32]) -> usize {
        let n = x.len() / self.layers[0].inputs;
        assert!(n >= 1 && n <= self.max_batch && n * self.layers[0].inputs == x.len());
        n
    }

    /// Predictions for the rows of `x` (`n x d`): the returned `n x m` slice.
    pub fn forward(&mut self, x: &[f32]) -> &[f32] {
        let n = self.rows(x);
        let last = self.layers.len() - 1;
        for (l, layer) in self.layers.iter().enumerate() {
            let (done, rest) = self.acts.split_at_mut(l);
            let a: &[f32] = if l == 0 { x } else { &done[l - 1] };
            let z = &mut rest[0][..n * layer.outputs];
            let w = &self.params[layer.w..layer.b];
            let bias = &self.params[layer.b..layer.b + layer.outputs];
            // Z = A W^T: W^T[k][j] = W[j][k] is W with swapped strides.
            gemm(
                (n, layer.inputs, layer.outputs),
                a,
                (layer.inputs, 1),
                w,
                (1, layer.inputs),
                0.0,
                z,
                layer.outputs,
            );
            for row in z.chunks_exact_mut(layer.outputs) {
                if l < last {
                    for (v, b) in row.iter_mut().zip(bias) {
                        *v = (*v + b).max(0.0);
                    }
                } else {
                    for (v, b) in row.iter_mut().zip(bias) {
                        *v += b;
                    }
                }
            }
        }
        &self.acts[last][..n * self.layers[last].outputs]
    }

    /// Forward, MSE backward with ReLU masks, and the SGD update on batch `x`, `y`;
    /// returns the loss of the parameters before the update.
    pub fn train_step(&mut self, x: &[f32], y: &[f32], lr: f32) -> f32 {
        self.forward(x);
        let n = self.rows(x);
        let last = self.layers.len() - 1;
        let m = self.layers[last].outputs;
        assert_eq!(y.len(), n * m);

        // dY = (2/n)(Yhat - Y) into dz[last % 2]; L = sum (Yhat - Y)^2 / n.
        let scale = 2.0 / n as f32;
        let mut sum = 0.0f64;
        let dy = &mut self.dz[last % 2][..n * m];
        for ((d, yh), t) in dy.iter_mut().zip(&self.acts[last]).zip(y) {
            let e = yh - t;
            sum += f64::from(e) * f64::from(e);
            *d = scale * e;
        }
        let loss = (sum / n as f64) as f32;

        for l in (0..=last).rev() {
            let layer = &self.layers[l];
            let (lo, hi) = self.dz.split_at_mut(1);
            let (dz, below) = if l % 2 == 0 {
                (&lo[0], &mut hi[0])
            } else {
                (&hi[0], &mut lo[0])
            };
            let dz = &dz[..n * layer.outputs];
            let a: &[f32] = if l == 0 { x } else { &self.acts[l - 1] };
            let (gw, gb) = self.grads[layer.w..layer.b + layer.outputs]
                .split_at_mut(layer.inputs * layer.outputs);
            // gW = dZ^T A: dZ^T[j][i] = dZ[i][j] is dZ with swapped strides.
            gemm(
                (layer.outputs, n, layer.inputs),
                dz,
                (1, layer.outputs),
                a,
                (layer.inputs, 1),
                0.0,
                gw,
                layer.inputs,
            );
            gb.fill(0.0);
            for row in dz.chunks_exact(layer.outputs) {
                for (g, d) in gb.iter_mut().zip(row) {
                    *g += d;
                }
            }
            if l > 0 {
                // dZ_{l-1} = (dZ W) * [A_{l-1} > 0].
                let below = &mut below[..n * layer.inputs];
                gemm(
                    (n, layer.outputs, layer.inputs),
                    dz,
                    (layer.outputs, 1),
                    &self.params[layer.w..layer.b],
                    (layer.inputs, 1),
                    0.0,
                    below,
                    layer.inputs,
                );
                for (d, h) in below.iter_mut().zip(&self.acts[l - 1]) {
                    if *h <= 0.0 {
                        *d = 0.0;
                    }
                }
            }
        }

        for (p, g) in self.params.iter_mut().zip(&self.grads) {
            *p -= lr * g;
        }
        loss
    }
}
