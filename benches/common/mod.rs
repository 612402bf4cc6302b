//! What `benches/throughput.rs` and `examples/perf_report` share, so that both
//! measure the same thing: the benchmark shapes, their inputs, and the FLOP model.
//!
//! The FLOP model counts the multiply-adds of the matrix products only, 2 FLOPs
//! each, over layers of `in x out` weights (`d -> h_1 .. h_k -> m`):
//!
//! ```text
//! forward     2 n sum_l in_l out_l
//! train step  forward
//!             + 2 n sum_l in_l out_l           weight gradients, every layer
//!             + 2 n sum_{l > 1} in_l out_l     input gradients, every layer but the first
//! ```
//!
//! Element-wise work (bias, ReLU, masks, loss, update, checks) is not counted.

// Each target that includes this module uses a different part of it.
#![allow(dead_code)]

use flowmlp::{Config, Isa, Model};
use rand::{rngs::StdRng, Rng, SeedableRng};

/// The seed of every model and input batch.
pub const SEED: u64 = 1;

/// The learning rate of the timed train steps: small enough that millions of steps
/// on the random batch stay finite.
pub const LR: f32 = 1e-4;

/// One benchmark topology `d -> hidden -> m` with batch `n`.
pub struct Shape {
    pub name: &'static str,
    pub d: usize,
    pub hidden: &'static [usize],
    pub m: usize,
    pub n: usize,
}

/// The six benchmark shapes, smallest first.
#[rustfmt::skip]
pub const SHAPES: [Shape; 6] = [
    Shape {
        name: "tiny",
        d: 8,
        hidden: &[32],
        m: 1,
        n: 1,
    },
    Shape {
        name: "small",
        d: 16,
        hidden: &[64],
        m: 1,
        n: 32,
    },
    Shape {
        name: "course",
        d: 10,
        hidden: &[64],
        m: 1,
        n: 32,
    },
    Shape {
        name: "medium",
        d: 64,
        hidden: &[256],
        m: 1,
        n: 256,
    },
    Shape {
        name: "large",
        d: 256,
        hidden: &[1024],
        m: 1,
        n: 512,
    },
    Shape {
        name: "deep",
        d: 64,
        hidden: &[256, 256, 256],
        m: 4,
        n: 256,
    },
];

impl Shape {
    /// `d-h_1-..-h_k-m n=N`, e.g. `10-64-1 n=32`.
    pub fn topology(&self) -> String {
        let dims: Vec<String> = self.dims().iter().map(|v| v.to_string()).collect();
        format!("{} n={}", dims.join("-"), self.n)
    }

    /// Layer widths `[d, h_1, .., h_k, m]`.
    pub fn dims(&self) -> Vec<usize> {
        let mut v = vec![self.d];
        v.extend_from_slice(self.hidden);
        v.push(self.m);
        v
    }

    /// The model configuration on kernel set `isa`, batch capacity `n`.
    pub fn config(&self, isa: Isa) -> Config {
        Config::new(self.d, self.hidden, self.m)
            .max_batch(self.n)
            .seed(SEED)
            .isa(isa)
    }

    /// A model of this shape on `isa`, which must be supported.
    pub fn model(&self, isa: Isa) -> Model {
        Model::new(&self.config(isa)).expect("benchmark shape is a valid configuration")
    }

    /// The batch: `x` (`n x d`) and `y` (`n x m`), uniform in [-1, 1) from `SEED`.
    pub fn batch(&self) -> (Vec<f32>, Vec<f32>) {
        let mut rng = StdRng::seed_from_u64(SEED);
        let x = (0..self.n * self.d)
            .map(|_| rng.random_range(-1.0..1.0))
            .collect();
        let y = (0..self.n * self.m)
            .map(|_| rng.random_range(-1.0..1.0))
            .collect();
        (x, y)
    }

    /// `sum_l in_l out_l`: multiply-adds per row of one pass through every layer.
    fn macs_per_row(&self, skip_first: bool) -> u64 {
        let dims = self.dims();
        dims.windows(2)
            .skip(usize::from(skip_first))
            .map(|w| (w[0] * w[1]) as u64)
            .sum()
    }

    /// FLOPs of one `forward` of `n` rows (see the module docs).
    pub fn forward_flops(&self) -> u64 {
        2 * self.n as u64 * self.macs_per_row(false)
    }

    /// FLOPs of one `train_step` of `n` rows (see the module docs).
    pub fn train_flops(&self) -> u64 {
        let n = self.n as u64;
        self.forward_flops() + 2 * n * self.macs_per_row(false) + 2 * n * self.macs_per_row(true)
    }
}

/// The kernel sets this machine runs, in `Isa::ALL` order.
pub fn kernel_sets() -> Vec<Isa> {
    Isa::ALL
        .into_iter()
        .filter(|isa| isa.is_supported())
        .collect()
}
