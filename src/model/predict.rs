//! Inference that only reads the model (`predict`, `classify`), with activations in
//! the caller's workspace, and `predict_class`, which keeps the forward.

use super::{wrong_len, Model};
use crate::last_error::refuse;
use crate::layout::{ALIGN, PANEL};
use crate::Error;

/// Workspace bytes of `predict` beyond its rows: alignment and rounding of its three
/// buffers to 64 bytes.
const PREDICT_SLACK: usize = 4 * ALIGN;

impl Model {
    /// Bytes of workspace `predict` and `classify` need to process `rows` rows at a time
    /// (any `rows`, also beyond `max_batch`; a smaller workspace processes fewer rows
    /// at a time).
    pub fn predict_workspace_size(&self, rows: usize) -> usize {
        let per_row = self.predict_row_bytes();
        rows.max(1)
            .saturating_mul(per_row)
            .saturating_add(PREDICT_SLACK)
    }

    #[cold]
    fn workspace_too_small(&self, len: usize) -> Error {
        refuse!(
            InvalidArgument,
            "workspace_len = {len} bytes is too small for one row: \
             flowmlp_predict_workspace_size(model, 1) is {}",
            self.predict_workspace_size(1)
        )
    }

    /// Bytes of workspace one row takes: two activation rows of the widest layer, the
    /// head's scratch, and the row's outputs (which `classify` keeps in the workspace).
    fn predict_row_bytes(&self) -> usize {
        let plan = &self.st().plan;
        let max_ld = plan.ld[..plan.n_hidden].iter().copied().max().unwrap_or(0);
        (2 * max_ld + PANEL + plan.outputs) * core::mem::size_of::<f32>()
    }

    /// Inference that only reads the model: `n = x.len() / d` rows (any number, not
    /// limited by `max_batch`) into `y_out` (`n x m`), with activations in the
    /// caller's `workspace` (see `predict_workspace_size`), processed in chunks of as
    /// many rows as the workspace holds. Any number of threads may predict with one
    /// model at once, each with its own workspace, while none trains it.
    pub fn predict(&self, x: &[f32], y_out: &mut [f32], workspace: &mut [u8]) -> Result<(), Error> {
        let plan = &self.st().plan;
        let (d, m) = (plan.inputs, plan.outputs);
        if x.is_empty() || !x.len().is_multiple_of(d) || y_out.len() != x.len() / d * m {
            return Err(refuse!(
                InvalidArgument,
                "x.len() = {} and y_out.len() = {} are not n x n_inputs ({d}) and \
                 n x n_outputs ({m}) for some n >= 1",
                x.len(),
                y_out.len()
            ));
        }
        let n = x.len() / d;
        let chunk = workspace.len().saturating_sub(PREDICT_SLACK) / self.predict_row_bytes();
        if chunk == 0 {
            return Err(self.workspace_too_small(workspace.len()));
        }
        if !self.all_finite(x) {
            return Err(Error::NonFinite);
        }
        self.predict_passes(x, y_out, workspace, chunk.min(n));
        Ok(())
    }

    /// `predict` on checked arguments, `chunk` rows a pass, where `workspace` holds at
    /// least `PREDICT_SLACK - 4 + chunk * predict_row_bytes()` minus the outputs'
    /// `chunk * m * 4` bytes (it needs 3 x 63 bytes of alignment and rounding).
    fn predict_passes(&self, x: &[f32], y_out: &mut [f32], workspace: &mut [u8], chunk: usize) {
        let plan = &self.st().plan;
        let (d, m) = (plan.inputs, plan.outputs);
        let n = x.len() / d;
        let act_bytes = chunk * (self.predict_row_bytes() - m * 4);
        assert!(workspace.len() >= PREDICT_SLACK - 4 + act_bytes);
        let max_ld = plan.ld[..plan.n_hidden].iter().copied().max().unwrap_or(0);
        // Carve two activation buffers and the head's scratch, 64-byte aligned.
        let base = workspace.as_mut_ptr();
        let start = base.align_offset(ALIGN);
        let hbytes = (chunk * max_ld * 4).next_multiple_of(ALIGN);
        // SAFETY: start + 2 * hbytes + chunk * PANEL * 4 <= workspace.len(), since
        // PREDICT_SLACK covers the alignment and the rounding.
        let (h0, h1, part) = unsafe {
            let h0 = base.add(start);
            (
                h0 as *mut f32,
                h0.add(hbytes) as *mut f32,
                h0.add(2 * hbytes) as *mut f32,
            )
        };
        let mut i0 = 0;
        while i0 < n {
            let rows = chunk.min(n - i0);
            // SAFETY: the buffers above hold `chunk >= rows` rows each; x and y_out hold
            // rows i0..i0 + rows; the model is only read.
            let done = unsafe {
                self.st().layers_forward(
                    x.as_ptr().add(i0 * d),
                    rows,
                    |l| if l % 2 == 0 { h0 } else { h1 },
                    y_out.as_mut_ptr().add(i0 * m),
                    part,
                    false,
                )
            };
            // Without threads nothing can fail.
            debug_assert!(done.is_ok());
            i0 += rows;
        }
    }

    /// `predict`, then the index of the largest output of each row into `classes`
    /// (`x.len() / d` entries; ties go to the lowest index): the class of a
    /// cross-entropy model, reading the model only, so any number of threads may
    /// classify with one model at once, each with its own workspace (of
    /// `predict_workspace_size` bytes; the outputs of a pass stay in it). Errors as
    /// `predict`, plus a `classes` of another length (`InvalidArgument`); on an error
    /// `classes` is unchanged.
    pub fn classify(
        &self,
        x: &[f32],
        classes: &mut [u32],
        workspace: &mut [u8],
    ) -> Result<(), Error> {
        let plan = &self.st().plan;
        let (d, m) = (plan.inputs, plan.outputs);
        if x.is_empty() || !x.len().is_multiple_of(d) || classes.len() != x.len() / d {
            return Err(refuse!(
                InvalidArgument,
                "x.len() = {} and classes.len() = {} are not n x n_inputs ({d}) and n for \
                 some n >= 1",
                x.len(),
                classes.len()
            ));
        }
        let chunk = workspace.len().saturating_sub(PREDICT_SLACK) / self.predict_row_bytes();
        if chunk == 0 {
            return Err(self.workspace_too_small(workspace.len()));
        }
        // Every row is checked before any class is written.
        if !self.all_finite(x) {
            return Err(Error::NonFinite);
        }
        let chunk = chunk.min(classes.len());
        // A pass's outputs at the end of the workspace (4-byte aligned), the
        // activations before them: `predict_row_bytes` counts both, and the three
        // bytes of alignment come out of PREDICT_SLACK, which is 64 bytes more than
        // the activations' own alignment and rounding need.
        let out_bytes = chunk * m * 4;
        let end = workspace.as_ptr() as usize + workspace.len();
        let split = workspace.len() - out_bytes - (end - out_bytes) % 4;
        let (acts, outputs) = workspace.split_at_mut(split);
        // SAFETY: every bit pattern is a valid f32; `outputs` starts 4-byte aligned and
        // holds at least `out_bytes`, so the middle part is `chunk * m` floats or more.
        let (_, outputs, _) = unsafe { outputs.align_to_mut::<f32>() };
        for (xs, cs) in x.chunks(chunk * d).zip(classes.chunks_mut(chunk)) {
            let y = &mut outputs[..cs.len() * m];
            self.predict_passes(xs, y, acts, chunk);
            argmax_rows(y, m, cs);
        }
        Ok(())
    }

    /// `forward`, then the index of the largest output of each row into `classes`
    /// (`n` entries; ties go to the lowest index): the class for cross-entropy models.
    /// Keeps the forward; `classify` is the read-only form.
    pub fn predict_class(&mut self, x: &[f32], classes: &mut [u32]) -> Result<(), Error> {
        let n = self.rows_of(x.len())?;
        if classes.len() != n {
            return Err(wrong_len("classes", n));
        }
        self.forward(x, None)?;
        let s = self.st();
        let m = s.plan.outputs;
        // SAFETY: the forward pass just wrote n x m predictions.
        let yhat = unsafe { core::slice::from_raw_parts(s.ptr(s.plan.yhat), n * m) };
        argmax_rows(yhat, m, classes);
        Ok(())
    }
}

/// The index of the largest of each row's `m` values (ties to the lowest index).
fn argmax_rows(values: &[f32], m: usize, classes: &mut [u32]) {
    for (c, row) in classes.iter_mut().zip(values.chunks_exact(m)) {
        let mut best = 0;
        for (j, v) in row.iter().enumerate() {
            if *v > row[best] {
                best = j;
            }
        }
        *c = best as u32;
    }
}
