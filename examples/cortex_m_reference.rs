//! The host reference for the Cortex-M firmwares (examples/cortex-m): the same
//! training session (`examples/cortex-m/session.rs`) on this machine's scalar kernel
//! set, with `std`. Given a firmware's output, compares its trained parameters and
//! its first and last window losses with this run's.
//!
//! ```text
//! cargo run --release --example cortex_m_reference                 # the host's output
//! cargo run --release --example cortex_m_reference -- FIRMWARE.log # compare
//! ```
//!
//! Tolerance: every parameter within 1e-4 * max(1, |host value|), and the two window
//! losses within 1e-3 relative. Both builds run the same f32 operations in the same
//! order (Rust never fuses a multiply-add unless asked; the C firmware is compiled
//! with -ffp-contract=off), so the differences left come from the transcendental
//! functions of the weight initialization and Adam's bias correction (glibc's with
//! `std`, the libm crate's on the Cortex-M).

#[path = "cortex-m/session.rs"]
mod session;

use std::process::ExitCode;

const PARAM_TOL: f32 = 1e-4;
const LOSS_TOL: f32 = 1e-3;

/// The `param <i> <hex bits>` values and the `loss first <a> last <b>` pair of a log.
fn parse(log: &str) -> (Vec<f32>, Option<(f32, f32)>) {
    let mut params = Vec::new();
    let mut losses = None;
    for line in log.lines() {
        let words: Vec<&str> = line.split_whitespace().collect();
        match words.as_slice() {
            ["param", i, hex] => {
                let (Ok(i), Ok(bits)) = (i.parse::<usize>(), u32::from_str_radix(hex, 16)) else {
                    continue;
                };
                if i == params.len() {
                    params.push(f32::from_bits(bits));
                }
            }
            ["loss", "first", a, "last", b, ..] => {
                let b = b.trim_end_matches(':');
                if let (Ok(a), Ok(b)) = (a.parse(), b.parse()) {
                    losses = Some((a, b));
                }
            }
            _ => {}
        }
    }
    (params, losses)
}

fn main() -> ExitCode {
    let mut model = flowmlp::Model::new(&session::config()).expect("the session's config is valid");
    let mut log = String::new();
    let outcome = session::run(&mut model, &mut |line| {
        log.push_str(&line.to_string());
        log.push('\n');
    })
    .expect("the session trains");
    let Some(path) = std::env::args().nth(1) else {
        print!("{log}");
        return if outcome.fell_tenfold() {
            ExitCode::SUCCESS
        } else {
            ExitCode::FAILURE
        };
    };
    let firmware = match std::fs::read_to_string(&path) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("{path}: {e}");
            return ExitCode::FAILURE;
        }
    };
    let (host_params, host_losses) = parse(&log);
    let (fw_params, fw_losses) = parse(&firmware);
    if fw_params.len() != host_params.len() {
        eprintln!(
            "{path}: {} parameters, the host has {}",
            fw_params.len(),
            host_params.len()
        );
        return ExitCode::FAILURE;
    }
    let (mut worst, mut worst_i, mut identical) = (0.0f32, 0, 0);
    for (i, (&f, &h)) in fw_params.iter().zip(&host_params).enumerate() {
        identical += usize::from(f.to_bits() == h.to_bits());
        let err = (f - h).abs() / h.abs().max(1.0);
        if err > worst || err.is_nan() {
            (worst, worst_i) = (err, i);
        }
    }
    let (Some((f0, f1)), Some((h0, h1))) = (fw_losses, host_losses) else {
        eprintln!("{path}: no 'loss first .. last ..' line");
        return ExitCode::FAILURE;
    };
    let loss_err = ((f0 - h0).abs() / h0).max((f1 - h1).abs() / h1);
    println!(
        "{path}: {identical} of {} parameters bit-identical to the host's scalar run; \
         largest difference {worst:.2e} (parameter {worst_i}, tolerance {PARAM_TOL:.0e}); \
         window losses {f0} -> {f1} vs host {h0} -> {h1} (relative difference {loss_err:.1e}, \
         tolerance {LOSS_TOL:.0e})",
        host_params.len()
    );
    if worst <= PARAM_TOL && loss_err <= LOSS_TOL {
        ExitCode::SUCCESS
    } else {
        println!("FAIL: the firmware's run differs from the host's beyond the tolerance");
        ExitCode::FAILURE
    }
}
