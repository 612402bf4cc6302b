//! The network's topology and creation options, validated before anything is allocated.

pub use crate::isa::Isa;
use crate::last_error::refuse;
use crate::Error;

/// Most hidden layers a model may have (k <= 8).
pub const MAX_HIDDEN: usize = 8;

/// The loss the backward pass differentiates.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[repr(u32)]
pub enum Loss {
    /// Mean squared error, `(1/n) sum_i sum_j (yhat_ij - y_ij)^2` (the course's loss).
    #[default]
    Mse = 0,
    /// Softmax cross-entropy over the m outputs, `-(1/n) sum_i sum_j y_ij log
    /// softmax(yhat_i)_j`, computed stably (log-sum-exp). Targets are rows of class
    /// probabilities: one-hot rows for class labels. Needs m >= 2.
    CrossEntropy = 1,
}

impl Loss {
    /// Convert a value coming from C; out-of-range values are `None`.
    pub const fn from_u32(v: u32) -> Option<Loss> {
        match v {
            0 => Some(Loss::Mse),
            1 => Some(Loss::CrossEntropy),
            _ => None,
        }
    }
}

/// Topology and creation options of a model: d -> h_1 .. h_k -> m.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Config {
    /// d, the number of inputs per row.
    pub inputs: usize,
    /// m, the number of outputs per row.
    pub outputs: usize,
    /// Widths of the hidden layers; entries past `n_hidden` are ignored.
    pub hidden: [usize; MAX_HIDDEN],
    /// k, the number of hidden layers (1..=8).
    pub n_hidden: usize,
    /// Rows the arena is sized for; every call takes 1..=max_batch rows.
    pub max_batch: usize,
    /// Seed of the parameter initialization.
    pub seed: u64,
    /// Kernel set to use.
    pub isa: Isa,
    /// The loss (mean squared error by default).
    pub loss: Loss,
}

impl Config {
    /// `inputs -> hidden[0] -> .. -> outputs`, with `max_batch` 1, seed 0, `Isa::Auto`.
    /// More than 8 hidden widths are recorded as such and refused by `Model::new`.
    pub fn new(inputs: usize, hidden: &[usize], outputs: usize) -> Config {
        let mut h = [0; MAX_HIDDEN];
        for (dst, &src) in h.iter_mut().zip(hidden) {
            *dst = src;
        }
        Config {
            inputs,
            outputs,
            hidden: h,
            n_hidden: hidden.len(),
            max_batch: 1,
            seed: 0,
            isa: Isa::Auto,
            loss: Loss::Mse,
        }
    }

    /// Set the number of rows the model is sized for.
    pub fn max_batch(mut self, max_batch: usize) -> Config {
        self.max_batch = max_batch;
        self
    }

    /// Set the initialization seed.
    pub fn seed(mut self, seed: u64) -> Config {
        self.seed = seed;
        self
    }

    /// Force a kernel set.
    pub fn isa(mut self, isa: Isa) -> Config {
        self.isa = isa;
        self
    }

    /// Choose the loss.
    pub fn loss(mut self, loss: Loss) -> Config {
        self.loss = loss;
        self
    }

    /// The hidden widths in use.
    pub fn hidden_widths(&self) -> &[usize] {
        &self.hidden[..self.n_hidden.min(MAX_HIDDEN)]
    }

    /// Check dimensions (not sizes; the arena plan checks those). The sentences name
    /// the C fields (`flowmlp_last_error_message` is where they are read).
    pub(crate) fn validate(&self) -> Result<(), Error> {
        if self.inputs == 0 {
            return Err(refuse!(
                InvalidConfig,
                "config.n_inputs must be >= 1, got 0"
            ));
        }
        if self.outputs == 0 {
            return Err(refuse!(
                InvalidConfig,
                "config.n_outputs must be >= 1, got 0"
            ));
        }
        if !(1..=MAX_HIDDEN).contains(&self.n_hidden) {
            return Err(refuse!(
                InvalidConfig,
                "config.n_hidden must be 1..={MAX_HIDDEN}, got {}",
                self.n_hidden
            ));
        }
        if let Some(i) = self.hidden_widths().iter().position(|&h| h == 0) {
            return Err(refuse!(
                InvalidConfig,
                "config.hidden[{i}] must be >= 1 (config.n_hidden = {}), got 0",
                self.n_hidden
            ));
        }
        if self.max_batch == 0 {
            return Err(refuse!(
                InvalidConfig,
                "config.max_batch must be >= 1, got 0"
            ));
        }
        // A softmax over one output is constant: nothing to learn.
        if self.loss == Loss::CrossEntropy && self.outputs < 2 {
            return Err(refuse!(
                InvalidConfig,
                "config.loss = 1 (cross-entropy) needs n_outputs >= 2, got {}",
                self.outputs
            ));
        }
        Ok(())
    }

    /// `[d, h_1, .., h_k, m]` and its length.
    pub(crate) fn dims(&self) -> ([usize; MAX_HIDDEN + 2], usize) {
        let mut d = [0; MAX_HIDDEN + 2];
        let k = self.n_hidden.min(MAX_HIDDEN);
        d[0] = self.inputs;
        d[1..=k].copy_from_slice(&self.hidden[..k]);
        d[k + 1] = self.outputs;
        (d, k + 2)
    }
}
