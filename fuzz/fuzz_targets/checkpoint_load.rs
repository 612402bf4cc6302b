//! Checkpoint loading from arbitrary bytes: `Model::load` and `flowmlp_load` never
//! crash, never return anything but the documented errors, and a checkpoint that
//! loads saves back to exactly the same bytes (a version-1 checkpoint: to version 2,
//! which loads and saves back to itself) with finite parameters; the loaded model
//! trains (with the optimizer and state it came with).
//!
//! Input: one control byte, then the checkpoint. Control bit 0 set: the trailing
//! CRC-32 is recomputed first, so that the fuzzer also explores everything the CRC
//! would otherwise guard; bits 1-2: the kernel set (auto, scalar, or the best two);
//! bits 3-5: max_batch - 1.
#![no_main]

use flowmlp::ffi::{flowmlp_destroy, flowmlp_load, flowmlp_param_count, flowmlp_status};
use flowmlp::{Error, Isa, Model};
use libfuzzer_sys::fuzz_target;

fn crc32(bytes: &[u8]) -> u32 {
    let mut c = !0u32;
    for &b in bytes {
        c ^= b as u32;
        for _ in 0..8 {
            c = if c & 1 != 0 {
                (c >> 1) ^ 0xEDB8_8320
            } else {
                c >> 1
            };
        }
    }
    !c
}

fuzz_target!(|data: &[u8]| {
    let Some((&control, rest)) = data.split_first() else {
        return;
    };
    let mut bytes = rest.to_vec();
    if control & 1 != 0 && bytes.len() >= 4 {
        let n = bytes.len() - 4;
        let c = crc32(&bytes[..n]);
        bytes[n..].copy_from_slice(&c.to_le_bytes());
    }
    let isa = match (control >> 1) & 3 {
        0 => Isa::Auto,
        1 => Isa::Scalar,
        2 => Isa::Avx2,
        _ => Isa::Avx512,
    };
    let max_batch = 1 + ((control >> 3) & 7) as usize;
    match Model::load(&bytes, max_batch, isa) {
        Ok(mut m) => {
            let mut again = vec![0u8; m.save_size()];
            assert_eq!(m.save(&mut again), Ok(again.len()));
            if bytes[8..12] == 1u32.to_le_bytes() {
                // Version 1 saves as version 2, with 40 bytes of plain-SGD settings
                // more; that loads, and saves back to itself.
                assert_eq!(again.len(), bytes.len() + 40);
                let params = 128..128 + 4 * m.param_count();
                assert_eq!(again[params.clone()], bytes[params]);
                let v2 = Model::load(&again, max_batch, isa).expect("a re-saved version 1");
                let mut third = vec![0u8; v2.save_size()];
                assert_eq!(v2.save(&mut third), Ok(again.len()));
                assert_eq!(third, again, "a re-saved version 1 saves back differently");
            } else {
                assert_eq!(again, bytes, "a loaded checkpoint saves back differently");
            }
            let mut p = vec![0.0; m.param_count()];
            m.get_params(&mut p).unwrap();
            assert!(p.iter().all(|v| v.is_finite()));
            let cfg = *m.config();
            assert_eq!(cfg.max_batch, max_batch);
            // The model works.
            let x = vec![0.5; cfg.inputs];
            let mut y = vec![0.0; cfg.outputs];
            let _ = m.forward(&x, Some(&mut y));
            let steps = m.optimizer_steps();
            match m.train_step(&x, &y, 0.01) {
                Ok(_) => assert_eq!(m.optimizer_steps(), steps + 1),
                Err(e) => {
                    assert!(matches!(e, Error::NonFinite | Error::Diverged), "{e:?}");
                    assert_eq!(m.optimizer_steps(), steps);
                }
            }
            m.get_params(&mut p).unwrap();
            assert!(p.iter().all(|v| v.is_finite()));
        }
        Err(e) => assert!(
            matches!(
                e,
                Error::BadCheckpoint
                    | Error::UnsupportedIsa
                    | Error::InvalidConfig
                    | Error::OutOfMemory
            ),
            "unexpected {e:?}"
        ),
    }
    // The same through C: the same verdict.
    let mut out = core::ptr::null_mut();
    // SAFETY: valid buffer and out pointer.
    let s = unsafe {
        flowmlp_load(
            bytes.as_ptr(),
            bytes.len(),
            max_batch as u32,
            isa as u32,
            &mut out,
        )
    };
    let rust = Model::load(&bytes, max_batch, isa).map(|m| m.param_count());
    match rust {
        Ok(n) => {
            assert_eq!(s, flowmlp_status::FLOWMLP_OK);
            // SAFETY: a live handle, then given up.
            unsafe {
                assert_eq!(flowmlp_param_count(out), n);
                flowmlp_destroy(out);
            }
        }
        Err(e) => {
            assert_eq!(s, flowmlp_status::from(e));
            assert!(out.is_null());
        }
    }
});
