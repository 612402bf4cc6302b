//! The model's header at the start of its arena: where the buffers are, which copy of
//! each is current, and how a step runs. Calls write spare copies; the transitions
//! below are the only places that make a spare copy current, so "a refused call
//! changes nothing" holds as long as a call reaches a transition only on success.

use core::alloc::Layout;

use crate::config::Config;
use crate::kernels::{ForwardRowFn, Kernels, TrainOneHiddenFn, TrainRowFn};
use crate::layout::Plan;
use crate::optim::Optimizer;

use super::pool::Pool;

/// Two copies of an arena section (byte offsets, or a group of them).
#[derive(Debug, Clone, Copy)]
pub(super) struct DoubleBuf<T: Copy> {
    copies: [T; 2],
    /// Whether the second copy is current (a bool indexes without a bounds check).
    second: bool,
}

impl<T: Copy> DoubleBuf<T> {
    fn new(copies: [T; 2]) -> Self {
        DoubleBuf {
            copies,
            second: false,
        }
    }

    /// The copy reads see.
    #[inline(always)]
    pub(super) fn cur(&self) -> T {
        self.copies[self.second as usize]
    }

    /// The copy a call writes before it knows whether it succeeds.
    #[inline(always)]
    pub(super) fn spare(&self) -> T {
        self.copies[!self.second as usize]
    }

    /// Private to this module: only the transitions of `State` flip.
    #[inline(always)]
    fn flip(&mut self) {
        self.second = !self.second;
    }
}

/// Where one copy of the gradients lives: as a buffer, and as the factors a one-row
/// SGD step leaves (`Plan::factors`).
#[derive(Debug, Clone, Copy)]
pub(super) struct GradCopy {
    pub buffer: usize,
    pub factors: usize,
}

/// How the current gradients are stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum GradForm {
    /// In the gradient buffer, internal layout.
    Buffer,
    /// As the factors `a_l` and `dZ_l` of a one-row SGD step, formed into gradients
    /// only when read (see `factors.rs`).
    Factors,
}

/// How one row (`n = 1`) runs: the kernel set's one-call programs for this plan, or
/// the layer kernels (the scalar set has no one-row programs).
#[derive(Debug, Clone, Copy)]
pub(super) enum RowPath {
    Layers,
    /// Any topology: `kernels::row::forward_row` and `train_row`.
    AnyDepth {
        forward: ForwardRowFn,
        train: TrainRowFn,
    },
    /// One hidden layer of at most two panels and one output (`Plan::one_hidden`):
    /// everything in registers; the fused SGD step leaves the gradients as factors.
    /// `any_depth` is the any-topology train program, for the other optimizers.
    OneHidden {
        forward: ForwardRowFn,
        train: TrainOneHiddenFn,
        any_depth: TrainRowFn,
    },
}

impl RowPath {
    fn new(plan: &Plan, kernels: &Kernels) -> RowPath {
        match (kernels.row, plan.one_hidden) {
            (None, _) => RowPath::Layers,
            (Some(r), false) => RowPath::AnyDepth {
                forward: r.forward,
                train: r.train,
            },
            (Some(r), true) => RowPath::OneHidden {
                forward: r.forward_one_hidden,
                train: r.train_one_hidden,
                any_depth: r.train,
            },
        }
    }

    /// The one-row forward program, if there is one.
    #[inline(always)]
    pub(super) fn forward(self) -> Option<ForwardRowFn> {
        match self {
            RowPath::Layers => None,
            RowPath::AnyDepth { forward, .. } | RowPath::OneHidden { forward, .. } => Some(forward),
        }
    }
}

/// How an optimizer step is applied.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum UpdateForm {
    /// Plain SGD without clipping: a train step applies it as the backward pass makes
    /// each gradient (see `kernels::Fused`); `step` runs the SGD kernel.
    FusedSgd,
    /// The optimizer's own pass over a whole gradient buffer (momentum, Adam,
    /// clipping).
    Separate,
}

/// The header at the start of the arena.
pub(crate) struct State {
    pub(super) plan: Plan,
    pub(super) config: Config,
    pub(super) kernels: &'static Kernels,
    /// Start of the arena (this header).
    pub(super) base: *mut u8,
    /// The layout to free with, when flowmlp allocated the arena.
    #[cfg_attr(not(feature = "std"), allow(dead_code))]
    pub(super) owned: Option<Layout>,
    pub(super) params: DoubleBuf<usize>,
    pub(super) grads: DoubleBuf<GradCopy>,
    /// Optimizer state: `2 * int_len` floats per copy (momentum, or Adam's moments).
    pub(super) opt_state: DoubleBuf<usize>,
    /// The kept forward pass's input.
    pub(super) x: DoubleBuf<usize>,
    pub(super) row: RowPath,
    /// Worker threads (`set_threads`); `None`: one thread.
    pub(super) pool: Option<Pool>,
    grad_form: GradForm,
    /// Rows of the kept forward pass; 0 when none.
    fwd_n: usize,
    optimizer: Optimizer,
    /// Global gradient-norm limit; 0 = no clipping.
    clip_norm: f32,
    /// Follows `optimizer` and `clip_norm`.
    update: UpdateForm,
    /// Optimizer steps taken since the state was reset.
    steps: u64,
}

// SAFETY: shared references to the header only read it and the arena (the worker
// threads of a job read the plan, the kernel table and the base pointer).
unsafe impl Sync for State {}

impl State {
    pub(super) fn new(
        plan: Plan,
        config: Config,
        kernels: &'static Kernels,
        base: *mut u8,
        owned: Option<Layout>,
    ) -> State {
        let grads = |i: usize| GradCopy {
            buffer: plan.grads[i],
            factors: plan.factors[i],
        };
        State {
            plan,
            config,
            kernels,
            base,
            owned,
            params: DoubleBuf::new(plan.params),
            grads: DoubleBuf::new([grads(0), grads(1)]),
            opt_state: DoubleBuf::new(plan.state),
            x: DoubleBuf::new(plan.x),
            row: RowPath::new(&plan, kernels),
            pool: None,
            grad_form: GradForm::Buffer,
            fwd_n: 0,
            optimizer: Optimizer::SGD,
            clip_norm: 0.0,
            update: UpdateForm::FusedSgd,
            steps: 0,
        }
    }

    /// Pointer to the f32 section at byte offset `off`.
    #[inline(always)]
    pub(super) fn ptr(&self, off: usize) -> *mut f32 {
        // SAFETY: every offset in the plan lies inside the arena.
        unsafe { self.base.add(off) as *mut f32 }
    }

    pub(super) fn grad_form(&self) -> GradForm {
        self.grad_form
    }

    /// Rows of the kept forward pass; 0 when none.
    pub(super) fn kept_rows(&self) -> usize {
        self.fwd_n
    }

    pub(super) fn optimizer(&self) -> Optimizer {
        self.optimizer
    }

    pub(super) fn clip_norm(&self) -> f32 {
        self.clip_norm
    }

    pub(super) fn update_form(&self) -> UpdateForm {
        self.update
    }

    pub(super) fn steps(&self) -> u64 {
        self.steps
    }

    // The transitions.

    /// A forward pass of `n` rows ran on the input in the spare copy: keep it.
    pub(super) fn keep_forward(&mut self, n: usize) {
        self.x.flip();
        self.fwd_n = n;
    }

    /// The activations no longer belong to the kept input and the parameters.
    pub(super) fn drop_forward(&mut self) {
        self.fwd_n = 0;
    }

    /// Gradients written to the spare copy, stored as `form`, become current.
    pub(super) fn commit_grads(&mut self, form: GradForm) {
        self.grads.flip();
        self.grad_form = form;
    }

    /// An optimizer step wrote the spare parameters and, `with_state`, the spare
    /// optimizer state: make them current. The kept forward belonged to the old
    /// parameters.
    pub(super) fn commit_step(&mut self, with_state: bool) {
        self.params.flip();
        if with_state {
            self.opt_state.flip();
        }
        self.steps += 1;
        self.drop_forward();
    }

    /// A fused SGD train step wrote the spare gradients (as `form`) and parameters.
    pub(super) fn commit_fused(&mut self, form: GradForm) {
        self.commit_grads(form);
        self.commit_step(false);
    }

    /// The current gradients were formed from their factors into the buffer in place
    /// (same values, another storage).
    pub(super) fn grads_formed(&mut self) {
        self.grad_form = GradForm::Buffer;
    }

    /// A new optimizer (or one restored with its step count) with the current state
    /// buffer already written.
    pub(super) fn set_optimizer(&mut self, optimizer: Optimizer, steps: u64) {
        self.optimizer = optimizer;
        self.steps = steps;
        self.refresh_update_form();
    }

    pub(super) fn set_clip_norm(&mut self, max_norm: f32) {
        self.clip_norm = max_norm;
        self.refresh_update_form();
    }

    fn refresh_update_form(&mut self) {
        self.update = if self.optimizer.is_plain_sgd() && self.clip_norm == 0.0 {
            UpdateForm::FusedSgd
        } else {
            UpdateForm::Separate
        };
    }
}
