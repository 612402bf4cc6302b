//! The training session both firmwares run (and the host reference, which checks
//! them): online next-sample prediction of a generated signal with a 4 -> 16 -> 1
//! network and Adam, one sample per step. Written for `no_std`: it only calls
//! flowmlp's Rust API and reports through a callback. `c/main.c` does the same
//! steps in C, value for value (keep the two in step).
//!
//! ```text
//! signal   two unit phasors rotated each step (f32 multiply-adds, no libm):
//!          p1 <- p1 * e^{i w1}, p2 <- p2 * e^{i w2};  v_t = 0.7 Im p1 + 0.3 Im p1 * Re p2
//! sample   x = (v_{t-3}, v_{t-2}, v_{t-1}, v_t), y = v_{t+1}
//! train    STEPS train_step calls (n = 1, Adam, LR halved every HALVE steps);
//!          mean loss per WINDOW steps
//! verdict  first window's mean / last window's mean >= 10, else a failure exit
//! ```

use flowmlp::{Config, Error, Isa, Model, Optimizer};

/// Inputs (past samples), hidden units, outputs.
pub const INPUTS: usize = 4;
pub const HIDDEN: usize = 16;
/// Training steps, the window of the reported mean loss, the learning rate (halved
/// every HALVE steps).
pub const STEPS: usize = 4000;
pub const WINDOW: usize = 250;
pub const LR: f32 = 0.01;
pub const HALVE: usize = 1000;
pub const SEED: u64 = 2024;
/// Predictions printed after training (samples the model has not been trained on).
pub const SHOWN: usize = 6;

/// The model's configuration: scalar kernels (the set every CPU has, and the one the
/// host reference compares with).
pub fn config() -> Config {
    Config::new(INPUTS, &[HIDDEN], 1)
        .max_batch(1)
        .seed(SEED)
        .isa(Isa::Scalar)
}

/// The signal (see the module docs).
pub struct Signal {
    c1: f32,
    s1: f32,
    c2: f32,
    s2: f32,
    window: [f32; INPUTS + 1],
}

/// cos and sin of the two angular steps, 0.1 and 0.37 rad.
const COS1: f32 = 0.995_004_2;
const SIN1: f32 = 0.099_833_42;
const COS2: f32 = 0.932_327_5;
const SIN2: f32 = 0.361_615_1;

impl Signal {
    pub fn new() -> Signal {
        let mut s = Signal {
            c1: 1.0,
            s1: 0.0,
            c2: 1.0,
            s2: 0.0,
            window: [0.0; INPUTS + 1],
        };
        for _ in 0..=INPUTS {
            s.advance();
        }
        s
    }

    fn value(&self) -> f32 {
        0.7 * self.s1 + 0.3 * self.s1 * self.c2
    }

    /// Rotate both phasors and push the new value into the window.
    fn advance(&mut self) {
        let c1 = self.c1 * COS1 - self.s1 * SIN1;
        let s1 = self.s1 * COS1 + self.c1 * SIN1;
        let c2 = self.c2 * COS2 - self.s2 * SIN2;
        let s2 = self.s2 * COS2 + self.c2 * SIN2;
        (self.c1, self.s1, self.c2, self.s2) = (c1, s1, c2, s2);
        self.window.copy_within(1.., 0);
        self.window[INPUTS] = self.value();
    }

    /// The next sample: the last INPUTS values, and the one after them.
    pub fn next(&mut self, x: &mut [f32; INPUTS]) -> f32 {
        x.copy_from_slice(&self.window[..INPUTS]);
        let y = self.window[INPUTS];
        self.advance();
        y
    }
}

impl Default for Signal {
    fn default() -> Self {
        Signal::new()
    }
}

/// The run's numbers.
pub struct Outcome {
    pub first: f32,
    pub last: f32,
}

impl Outcome {
    pub fn fell_tenfold(&self) -> bool {
        self.first >= 10.0 * self.last
    }
}

/// Train `model` (built from [`config`]) and report through `out`: one line per
/// window, the predictions, and every parameter's bits (`param <i> <hex>`), which the
/// host reference compares.
pub fn run(
    model: &mut Model,
    out: &mut dyn FnMut(core::fmt::Arguments<'_>),
) -> Result<Outcome, Error> {
    model.set_optimizer(Optimizer::ADAM)?;
    let mut signal = Signal::new();
    let mut x = [0.0f32; INPUTS];
    let (mut first, mut last, mut sum) = (0.0f32, 0.0f32, 0.0f32);
    let mut lr = LR;
    for step in 0..STEPS {
        if step > 0 && step % HALVE == 0 {
            lr *= 0.5;
        }
        let y = signal.next(&mut x);
        sum += model.train_step(&x, &[y], lr)?;
        if (step + 1) % WINDOW == 0 {
            let mean = sum / WINDOW as f32;
            if step + 1 == WINDOW {
                first = mean;
            }
            last = mean;
            out(format_args!("steps {:>4}  mean loss {:.6}", step + 1, mean));
            sum = 0.0;
        }
    }
    for _ in 0..SHOWN {
        let y = signal.next(&mut x);
        let mut yhat = [0.0f32];
        model.forward(&x, Some(&mut yhat))?;
        out(format_args!(
            "predict  target {:>9.5}  model {:>9.5}",
            y, yhat[0]
        ));
    }
    let mut params = [0.0f32; (INPUTS + 1) * HIDDEN + HIDDEN + 1];
    model.get_params(&mut params)?;
    for (i, p) in params.iter().enumerate() {
        out(format_args!("param {} {:08x}", i, p.to_bits()));
    }
    out(format_args!(
        "loss first {:.6} last {:.6}: fell {:.1}x",
        first,
        last,
        first / last
    ));
    Ok(Outcome { first, last })
}
