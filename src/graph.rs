//! The model's flow graph in Graphviz DOT: the picture of the course's network,
//! drawn from a live model's configuration.
//!
//! Nodes: the input `X`, and per hidden layer `l` its weights `W_l` and bias `b_l`,
//! a matmul node (`X W_1^T`, `H_{l-1} W_l^T`), an add-bias node and a ReLU node; the
//! output layer's `W_o`, `b_o`, matmul and add-bias nodes; the targets `Y`; the loss
//! node (mean squared error or softmax cross-entropy); and the scalar loss `L`. Every
//! edge is labelled with the shape of the value that flows along it, with `n` for the
//! rows of one call (symbolic, because it changes from call to call: 1..=max_batch for
//! training, any number for `predict`; the graph's title gives `max_batch`). Weights
//! are `out x in` as in the flat parameter layout, and a layer computes `X W^T + b`.
//!
//! Writing never allocates: the text goes to any [`fmt::Write`], and
//! [`Model::graph_dot`] writes into a caller's byte buffer (for `flowmlp_graph_dot`).

use core::fmt::{self, Write};

use crate::{Error, Loss, Model};

/// Counts the bytes written through it (sizing without a buffer).
struct Counter(usize);

impl Write for Counter {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        self.0 += s.len();
        Ok(())
    }
}

/// Writes into a byte slice; fails (without writing the part that does not fit)
/// when the slice is full.
struct SliceWriter<'a> {
    buf: &'a mut [u8],
    pos: usize,
}

impl Write for SliceWriter<'_> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        let end = self.pos.checked_add(s.len()).ok_or(fmt::Error)?;
        let dst = self.buf.get_mut(self.pos..end).ok_or(fmt::Error)?;
        dst.copy_from_slice(s.as_bytes());
        self.pos = end;
        Ok(())
    }
}

/// Colours of the three kinds of node: data, parameters, operations.
const DATA: &str = "shape=box, style=filled, fillcolor=\"#dbe9f6\"";
const PARAM: &str = "shape=box, style=\"rounded,filled\", fillcolor=\"#fdebd0\"";
const OP: &str = "shape=ellipse";

impl Model {
    /// Write the model's flow graph in Graphviz DOT to `w` (render it with
    /// `dot -Tsvg`). See the module documentation of `graph` for the nodes and edge
    /// labels; the text is ASCII and depends only on the configuration (not on the
    /// parameters or the kernel set). Allocates nothing unless `w` does; a `String`
    /// collects it: `let mut s = String::new(); model.write_graph_dot(&mut s)?;`.
    pub fn write_graph_dot<W: Write + ?Sized>(&self, w: &mut W) -> fmt::Result {
        let cfg = self.config();
        let hidden = cfg.hidden_widths();
        let (d, m) = (cfg.inputs, cfg.outputs);
        let loss = match cfg.loss {
            Loss::Mse => "mean squared error",
            Loss::CrossEntropy => "softmax cross-entropy",
        };

        w.write_str("digraph flowmlp {\n")?;
        write!(
            w,
            "  graph [rankdir=LR, labelloc=t, fontname=\"Helvetica\", label=\"flowmlp: {d}"
        )?;
        for h in hidden {
            write!(w, " -> {h}")?;
        }
        writeln!(
            w,
            " -> {m}, {loss} loss; n = rows per call (training: 1..{})\"];",
            cfg.max_batch
        )?;
        w.write_str("  node [fontname=\"Helvetica\", fontsize=11];\n")?;
        w.write_str("  edge [fontname=\"Helvetica\", fontsize=10];\n")?;
        writeln!(w, "  X [label=\"X\\ninput\", {DATA}];")?;

        // Hidden layers: matmul, add bias, ReLU.
        let mut prev = "X"; // the node whose output feeds the next matmul
        let mut prev_l = 0; // its layer (0: the input)
        let mut width = d; // and its width
        for (i, &h) in hidden.iter().enumerate() {
            let l = i + 1;
            writeln!(w, "  W{l} [label=\"W_{l}\", {PARAM}];")?;
            writeln!(w, "  b{l} [label=\"b_{l}\", {PARAM}];")?;
            if prev_l == 0 {
                writeln!(w, "  mm{l} [label=\"matmul\\nX W_{l}^T\", {OP}];")?;
            } else {
                writeln!(w, "  mm{l} [label=\"matmul\\nH_{prev_l} W_{l}^T\", {OP}];")?;
            }
            writeln!(w, "  add{l} [label=\"add bias\\n+ b_{l}\", {OP}];")?;
            writeln!(w, "  relu{l} [label=\"ReLU\", {OP}];")?;
            if prev_l == 0 {
                writeln!(w, "  X -> mm{l} [label=\"X: n x {width}\"];")?;
            } else {
                writeln!(
                    w,
                    "  {prev}{prev_l} -> mm{l} [label=\"H_{prev_l}: n x {width}\"];"
                )?;
            }
            writeln!(w, "  W{l} -> mm{l} [label=\"{h} x {width}\"];")?;
            writeln!(w, "  mm{l} -> add{l} [label=\"n x {h}\"];")?;
            writeln!(w, "  b{l} -> add{l} [label=\"{h}\"];")?;
            writeln!(w, "  add{l} -> relu{l} [label=\"Z_{l}: n x {h}\"];")?;
            prev = "relu";
            prev_l = l;
            width = h;
        }

        // Output layer: matmul and add bias, no activation.
        writeln!(w, "  Wo [label=\"W_o\", {PARAM}];")?;
        writeln!(w, "  bo [label=\"b_o\", {PARAM}];")?;
        writeln!(w, "  mmo [label=\"matmul\\nH_{prev_l} W_o^T\", {OP}];")?;
        writeln!(w, "  addo [label=\"add bias\\n+ b_o\", {OP}];")?;
        writeln!(
            w,
            "  {prev}{prev_l} -> mmo [label=\"H_{prev_l}: n x {width}\"];"
        )?;
        writeln!(w, "  Wo -> mmo [label=\"{m} x {width}\"];")?;
        writeln!(w, "  mmo -> addo [label=\"n x {m}\"];")?;
        writeln!(w, "  bo -> addo [label=\"{m}\"];")?;

        // The loss against the targets.
        let formula = match cfg.loss {
            Loss::Mse => "(1/n) sum (Yhat - Y)^2",
            Loss::CrossEntropy => "-(1/n) sum Y log softmax(Yhat)",
        };
        writeln!(w, "  Y [label=\"Y\\ntargets\", {DATA}];")?;
        writeln!(w, "  loss [label=\"{loss}\\n{formula}\", {OP}];")?;
        w.write_str("  L [label=\"L\", shape=doublecircle];\n")?;
        writeln!(w, "  addo -> loss [label=\"Yhat: n x {m}\"];")?;
        writeln!(w, "  Y -> loss [label=\"Y: n x {m}\"];")?;
        w.write_str("  loss -> L [label=\"scalar\"];\n")?;
        w.write_str("}\n")
    }

    /// Bytes [`Model::graph_dot`] writes: the DOT text and its terminating NUL.
    pub fn graph_dot_size(&self) -> usize {
        let mut c = Counter(0);
        // A Counter never fails.
        let _ = self.write_graph_dot(&mut c);
        c.0 + 1
    }

    /// Write the flow graph in DOT (as [`Model::write_graph_dot`]) into `buf`,
    /// followed by a NUL byte, and return the bytes written (`graph_dot_size()`).
    /// A `buf` shorter than that is `InvalidArgument`, and nothing is written.
    /// Allocates nothing.
    pub fn graph_dot(&self, buf: &mut [u8]) -> Result<usize, Error> {
        let size = self.graph_dot_size();
        let cap = buf.len();
        let out = buf.get_mut(..size).ok_or_else(|| {
            crate::last_error::refuse!(
                InvalidArgument,
                "cap = {cap} bytes is too small for the graph: it needs {size} (NUL included)"
            )
        })?;
        let (text, nul) = out.split_at_mut(size - 1);
        let mut sw = SliceWriter { buf: text, pos: 0 };
        self.write_graph_dot(&mut sw).map_err(|_| Error::Internal)?;
        if sw.pos != text.len() {
            return Err(Error::Internal);
        }
        nul[0] = 0;
        Ok(size)
    }
}
