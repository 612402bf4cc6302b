//! Checkpoints: bit-exact round trips on every kernel set (and across them), the
//! format pinned byte by byte, and every kind of bad checkpoint refused with
//! `BadCheckpoint` without allocating: truncated at every length, every single bit
//! flipped, wrong magic, other versions, absurd sizes, random bytes. Files: atomic
//! replacement, clean failures, and a save killed at random moments never destroys
//! the previous checkpoint.

mod common;
use common::*;
use flowmlp::{Config, Error, Isa, Model};
use std::path::{Path, PathBuf};

#[path = "common/counting.rs"]
mod counting;

/// `f`'s result, the number of allocations it made on this thread, and the largest.
fn watched<T>(f: impl FnOnce() -> T) -> (T, usize, usize) {
    let (r, seen) = counting::watched(f);
    (r, seen.allocs, seen.largest)
}

// ---------------------------------------------------------------- helpers

/// CRC-32 (IEEE), bit by bit: independent of the library's table-driven one.
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

/// Recompute the trailing CRC after editing a checkpoint.
fn reseal(b: &mut [u8]) {
    let n = b.len() - 4;
    let c = crc32(&b[..n]);
    b[n..].copy_from_slice(&c.to_le_bytes());
}

fn save(m: &Model) -> Vec<u8> {
    let mut b = vec![0u8; m.save_size()];
    assert_eq!(m.save(&mut b), Ok(b.len()));
    b
}

fn bits(v: &[f32]) -> Vec<u32> {
    v.iter().map(|x| x.to_bits()).collect()
}

/// A model of `cfg` on `isa`, trained a few steps so that every parameter (biases
/// included) is off its initial value.
fn trained(cfg: &Config, isa: Isa, seed: u64) -> Model {
    let mut m = model(cfg, isa);
    let mut rng = Rng(seed);
    let n = cfg.max_batch;
    for _ in 0..5 {
        let x = rng.vec(n * cfg.inputs);
        let y = rng.vec(n * cfg.outputs);
        m.train_step(&x, &y, 0.05).unwrap();
    }
    m
}

/// `load` must refuse `bytes` with `BadCheckpoint` and allocate nothing doing so.
#[track_caller]
fn assert_bad(bytes: &[u8], what: &str) {
    let (r, count, _) = watched(|| Model::load(bytes, 4, Isa::Scalar));
    assert_eq!(r.err(), Some(Error::BadCheckpoint), "{what}");
    assert_eq!(
        count, 0,
        "{what}: a refused checkpoint allocated {count} times"
    );
}

fn small() -> Model {
    trained(
        &Config::new(3, &[4, 2], 2).max_batch(3).seed(5),
        Isa::Scalar,
        1,
    )
}

/// A fresh, empty directory under the target's temporary directory.
fn temp_dir(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join("checkpoint-tests")
        .join(format!("{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn entries(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

// ---------------------------------------------------------------- round trips

#[test]
fn round_trip_is_bit_exact_on_and_across_every_kernel_set() {
    let isas = isas();
    for (i, cfg) in [
        Config::new(10, &[64], 1).max_batch(8).seed(3),
        Config::new(7, &[17, 33, 3], 3).max_batch(5).seed(4),
        Config::new(1, &[1], 1).max_batch(1).seed(5),
        Config::new(5, &[16, 16, 16, 16, 16, 16, 16, 9], 2)
            .max_batch(2)
            .seed(6),
    ]
    .into_iter()
    .enumerate()
    {
        for &from in &isas {
            let src = trained(&cfg, from, 100 + i as u64);
            let bytes = save(&src);
            let x = Rng(7).vec(cfg.max_batch * cfg.inputs);
            for &to in &isas {
                for max_batch in [1, cfg.max_batch, 64] {
                    let mut back = Model::load(&bytes, max_batch, to).unwrap();
                    assert_eq!(back.isa(), to);
                    let (a, b) = (back.config(), src.config());
                    assert_eq!(
                        (a.inputs, a.hidden_widths(), a.outputs, a.seed),
                        (b.inputs, b.hidden_widths(), b.outputs, b.seed)
                    );
                    assert_eq!(a.max_batch, max_batch);
                    assert_eq!(
                        bits(&params(&back)),
                        bits(&params(&src)),
                        "{from:?} -> {to:?}"
                    );
                    // Like a fresh model: zero gradients, no kept forward.
                    assert!(grads(&back).iter().all(|&g| g.to_bits() == 0));
                    assert_eq!(back.kept_rows(), None);
                    assert_eq!(back.backward(&[0.0]), Err(Error::NoForward));
                    // Saving again gives the same bytes, whatever the kernel set.
                    assert_eq!(
                        save(&back),
                        bytes,
                        "{from:?} -> {to:?}: re-saved bytes differ"
                    );
                    // Same kernel set: the same predictions, bit for bit.
                    if to == from && max_batch >= cfg.max_batch {
                        let mut src2 = Model::load(&bytes, cfg.max_batch, from).unwrap();
                        let n = cfg.max_batch;
                        let (mut p1, mut p2) =
                            (vec![0.0; n * cfg.outputs], vec![0.0; n * cfg.outputs]);
                        src2.forward(&x, Some(&mut p1)).unwrap();
                        back.forward(&x, Some(&mut p2)).unwrap();
                        assert_eq!(bits(&p1), bits(&p2));
                    }
                }
            }
        }
    }
}

#[test]
fn extreme_but_finite_parameters_round_trip() {
    let mut m = small();
    let n = m.param_count();
    let specials = [
        0.0,
        -0.0,
        f32::MIN_POSITIVE,
        -f32::MIN_POSITIVE,
        f32::from_bits(1), // smallest subnormal
        f32::from_bits(0x8000_0001),
        f32::MAX,
        f32::MIN,
        1.0,
        -1.0,
        std::f32::consts::PI,
    ];
    let p: Vec<f32> = (0..n).map(|i| specials[i % specials.len()]).collect();
    m.set_params(&p).unwrap();
    let back = Model::load(&save(&m), 1, Isa::Scalar).unwrap();
    assert_eq!(bits(&params(&back)), bits(&p));
}

/// The format, pinned byte by byte for a 1 -> 1 -> 1 model, little-endian.
#[test]
fn the_format_is_little_endian_and_versioned() {
    let mut m = Model::new(&Config::new(1, &[1], 1).seed(0x0102_0304_0506_0708)).unwrap();
    m.set_params(&[1.0, -2.0, 0.5, 3.0]).unwrap();
    let b = save(&m);
    assert_eq!(m.save_size(), 112 + 16 + 16 + 16 + 4);
    let mut want = Vec::new();
    want.extend_from_slice(b"\x89FLOWMLP");
    want.extend_from_slice(&1u32.to_le_bytes()); // version
    want.extend_from_slice(&1u32.to_le_bytes()); // k
    want.extend_from_slice(&1u64.to_le_bytes()); // d
    want.extend_from_slice(&1u64.to_le_bytes()); // m
    want.extend_from_slice(&1u64.to_le_bytes()); // h_1
    want.extend_from_slice(&[0u8; 7 * 8]); // h_2..h_8
    want.extend_from_slice(&[8, 7, 6, 5, 4, 3, 2, 1]); // seed
    want.extend_from_slice(&2u32.to_le_bytes()); // sections
    want.extend_from_slice(&0u32.to_le_bytes()); // reserved
    want.extend_from_slice(&1u32.to_le_bytes()); // PARAMS
    want.extend_from_slice(&0u32.to_le_bytes());
    want.extend_from_slice(&16u64.to_le_bytes());
    for v in [1.0f32, -2.0, 0.5, 3.0] {
        want.extend_from_slice(&v.to_le_bytes());
    }
    want.extend_from_slice(&2u32.to_le_bytes()); // OPTIMIZER
    want.extend_from_slice(&0u32.to_le_bytes());
    want.extend_from_slice(&0u64.to_le_bytes());
    want.extend_from_slice(&crc32(&want).to_le_bytes());
    assert_eq!(b, want);
    assert_eq!(&b[128..132], &[0x00, 0x00, 0x80, 0x3F]); // 1.0f32, little-endian
}

#[test]
fn save_needs_a_large_enough_buffer_and_writes_nothing_else() {
    let m = small();
    let n = m.save_size();
    for cap in [0, 1, 111, 112, n - 4, n - 1] {
        let mut buf = vec![0xA5u8; cap];
        assert_eq!(m.save(&mut buf), Err(Error::InvalidArgument));
        assert!(buf.iter().all(|&b| b == 0xA5), "cap {cap}: buffer written");
    }
    let mut buf = vec![0xA5u8; n + 10];
    assert_eq!(m.save(&mut buf), Ok(n));
    assert!(buf[n..].iter().all(|&b| b == 0xA5));
    assert_eq!(buf[..n], save(&m)[..]);
}

// ---------------------------------------------------------------- bad checkpoints

#[test]
fn truncated_at_every_length_is_refused() {
    let b = save(&small());
    for len in 0..b.len() {
        assert_bad(
            &b[..len],
            &format!("truncated to {len} of {} bytes", b.len()),
        );
    }
    // One byte too many is refused too.
    let mut longer = b.clone();
    longer.push(0);
    assert_bad(&longer, "one trailing byte");
    longer.truncate(b.len());
    longer.extend_from_slice(&[0; 4]);
    reseal(&mut longer);
    assert_bad(&longer, "four trailing bytes with a matching CRC");
}

#[test]
fn every_single_bit_flip_is_refused() {
    let b = save(&small());
    let mut c = b.clone();
    for i in 0..b.len() * 8 {
        c[i / 8] ^= 1 << (i % 8);
        assert_bad(&c, &format!("bit {} of byte {} flipped", i % 8, i / 8));
        c[i / 8] ^= 1 << (i % 8);
    }
    assert_eq!(c, b);
    assert!(Model::load(&b, 4, Isa::Scalar).is_ok());
}

#[test]
fn wrong_magic_and_other_versions_are_refused() {
    let b = save(&small());
    for magic in [
        *b"FLOWMLP\0",
        *b"\x89FLOWMLp",
        *b"\x09FLOWMLP",
        [0; 8],
        [0xFF; 8],
    ] {
        let mut c = b.clone();
        c[..8].copy_from_slice(&magic);
        reseal(&mut c);
        assert_bad(&c, &format!("magic {magic:?}"));
    }
    for version in [0u32, 2, 3, 0x100, 0x0100_0000, u32::MAX] {
        let mut c = b.clone();
        c[8..12].copy_from_slice(&version.to_le_bytes());
        reseal(&mut c);
        assert_bad(&c, &format!("version {version}"));
    }
    // Big-endian version 1 is a different version number.
    let mut c = b.clone();
    c[8..12].copy_from_slice(&1u32.to_be_bytes());
    reseal(&mut c);
    assert_bad(&c, "version 1 written big-endian");
}

/// Put `v` at byte `at` and fix the CRC.
fn edit(b: &[u8], at: usize, v: &[u8]) -> Vec<u8> {
    let mut c = b.to_vec();
    c[at..at + v.len()].copy_from_slice(v);
    reseal(&mut c);
    c
}

#[test]
fn impossible_topologies_and_absurd_sizes_are_refused_without_allocating() {
    // A 1 -> 1 -> 1 model: 160 bytes.
    let b = save(&Model::new(&Config::new(1, &[1], 1)).unwrap());
    let le64 = |v: u64| v.to_le_bytes();
    let le32 = |v: u32| v.to_le_bytes();
    let cases: Vec<(String, Vec<u8>)> = vec![
        ("k = 0".into(), edit(&b, 12, &le32(0))),
        ("k = 9".into(), edit(&b, 12, &le32(9))),
        ("k = u32::MAX".into(), edit(&b, 12, &le32(u32::MAX))),
        ("d = 0".into(), edit(&b, 16, &le64(0))),
        ("m = 0".into(), edit(&b, 24, &le64(0))),
        ("h_1 = 0".into(), edit(&b, 32, &le64(0))),
        ("h_2 != 0 past k".into(), edit(&b, 40, &le64(1))),
        ("h_8 != 0 past k".into(), edit(&b, 88, &le64(7))),
        // Terabytes of parameters claimed by a 160-byte buffer.
        (
            "d = 2^40 (4 TiB of W_1)".into(),
            edit(&b, 16, &le64(1 << 40)),
        ),
        ("h_1 = 2^38".into(), edit(&b, 32, &le64(1 << 38))),
        ("m = 2^50".into(), edit(&b, 24, &le64(1 << 50))),
        // Counts whose products or sums overflow 64 bits.
        ("d = u64::MAX".into(), edit(&b, 16, &le64(u64::MAX))),
        (
            "d = h_1 = 2^32".into(),
            edit(&edit(&b, 16, &le64(1 << 32)), 32, &le64(1 << 32)),
        ),
        (
            "d = h_1 = m = 2^32 - 1".into(),
            edit(
                &edit(
                    &edit(&b, 16, &le64(u32::MAX as u64)),
                    24,
                    &le64(u32::MAX as u64),
                ),
                32,
                &le64(u32::MAX as u64),
            ),
        ),
        ("count * 4 overflows".into(), edit(&b, 16, &le64(1 << 62))),
        ("sections = 1".into(), edit(&b, 104, &le32(1))),
        ("sections = 3".into(), edit(&b, 104, &le32(3))),
        ("reserved != 0".into(), edit(&b, 108, &le32(1))),
        ("PARAMS tag".into(), edit(&b, 112, &le32(2))),
        ("PARAMS flags".into(), edit(&b, 116, &le32(1))),
        ("PARAMS length short".into(), edit(&b, 120, &le64(12))),
        ("PARAMS length long".into(), edit(&b, 120, &le64(20))),
        ("PARAMS length huge".into(), edit(&b, 120, &le64(u64::MAX))),
        ("OPTIMIZER tag".into(), edit(&b, 144, &le32(1))),
        ("unknown section tag".into(), edit(&b, 144, &le32(77))),
        ("OPTIMIZER flags".into(), edit(&b, 148, &le32(0x8000_0000))),
        ("OPTIMIZER length".into(), edit(&b, 152, &le64(4))),
        (
            "OPTIMIZER length huge".into(),
            edit(&b, 152, &le64(1 << 60)),
        ),
    ];
    // A non-empty optimizer section, consistent and sealed: this version has none.
    let mut opt = b[..160].to_vec();
    opt[152..160].copy_from_slice(&le64(8));
    opt.extend_from_slice(&[0; 8]);
    opt.extend_from_slice(&[0; 4]);
    reseal(&mut opt);
    let mut cases = cases;
    cases.push(("a non-empty OPTIMIZER section".into(), opt));
    // The header of a huge model followed by nothing.
    cases.push((
        "a 2^20-unit header without its parameters".into(),
        edit(&b, 32, &le64(1 << 20))[..112].to_vec(),
    ));
    for (what, c) in &cases {
        assert_bad(c, what);
    }
    assert!(Model::load(&b, 1, Isa::Scalar).is_ok());
}

#[test]
fn non_finite_parameters_are_refused_even_with_a_matching_crc() {
    let m = small();
    let b = save(&m);
    let n = m.param_count();
    for v in [f32::NAN, -f32::NAN, f32::INFINITY, f32::NEG_INFINITY] {
        for i in [0, n / 2, n - 1] {
            let at = 128 + 4 * i;
            assert_bad(&edit(&b, at, &v.to_le_bytes()), &format!("param {i} = {v}"));
        }
    }
    // Signalling NaN payloads too.
    assert_bad(
        &edit(&b, 128, &0x7F80_0001u32.to_le_bytes()),
        "signalling NaN",
    );
}

#[test]
fn random_bytes_are_refused() {
    let mut rng = Rng(0xC0FFEE);
    let good = save(&small());
    for case in 0..3000 {
        let len = rng.below(400);
        let mut c: Vec<u8> = (0..len).map(|_| rng.next() as u8).collect();
        // Half the cases start with a valid magic and version, to get past the door.
        if case % 2 == 1 && len >= 12 {
            c[..12].copy_from_slice(&good[..12]);
        }
        // A quarter are a good checkpoint with random bytes overwritten.
        if case % 4 == 2 {
            c = good.clone();
            for _ in 0..1 + rng.below(8) {
                let i = rng.below(c.len());
                c[i] = rng.next() as u8;
            }
            if c == good {
                continue;
            }
        }
        assert_bad(&c, &format!("random case {case}"));
    }
}

#[test]
fn load_arguments_are_checked() {
    let b = save(&small());
    assert_eq!(
        Model::load(&b, 0, Isa::Scalar).err(),
        Some(Error::InvalidArgument)
    );
    // Bad bytes and a bad max_batch: the argument is reported.
    assert_eq!(
        Model::load(&b[..10], 0, Isa::Scalar).err(),
        Some(Error::InvalidArgument)
    );
    for isa in Isa::ALL {
        let r = Model::load(&b, 1, isa);
        if isa.is_supported() {
            assert_eq!(r.unwrap().isa(), isa);
        } else {
            assert_eq!(r.err(), Some(Error::UnsupportedIsa), "{isa:?}");
        }
    }
    assert!(Model::load(&b, 1, Isa::Auto).is_ok());
    // max_batch whose arena overflows: refused before allocating.
    let (r, count, _) = watched(|| Model::load(&b, usize::MAX, Isa::Scalar));
    assert_eq!(r.err(), Some(Error::InvalidConfig));
    assert_eq!(count, 0);
}

#[test]
fn a_valid_load_allocates_only_what_the_checkpoint_justifies() {
    let m = small();
    let b = save(&m);
    let (r, _, largest) = watched(|| Model::load(&b, 3, Isa::Scalar));
    let back = r.unwrap();
    assert!(
        largest <= back.arena_size().max(b.len()),
        "largest allocation {largest} > arena {} / checkpoint {}",
        back.arena_size(),
        b.len()
    );
}

// ---------------------------------------------------------------- files

#[test]
fn files_round_trip_and_replace_atomically() {
    let dir = temp_dir("files");
    let path = dir.join("model.ckpt");
    let a = small();
    a.save_file(&path).unwrap();
    assert_eq!(std::fs::read(&path).unwrap(), save(&a));
    let back = Model::load_file(&path, 3, Isa::Scalar).unwrap();
    assert_eq!(bits(&params(&back)), bits(&params(&a)));
    for isa in isas() {
        let back = Model::load_file(&path, 1, isa).unwrap();
        assert_eq!(bits(&params(&back)), bits(&params(&a)));
    }
    // Overwrite with another model: the file is replaced, no temporary is left.
    let b = trained(&Config::new(2, &[3], 1).max_batch(2), Isa::Scalar, 9);
    b.save_file(&path).unwrap();
    assert_eq!(std::fs::read(&path).unwrap(), save(&b));
    assert_eq!(entries(&dir), ["model.ckpt"]);
    // A relative path in the current directory works too (parent "").
    let here = std::env::current_dir().unwrap();
    std::env::set_current_dir(&dir).unwrap();
    let r = b.save_file("relative.ckpt");
    let l = Model::load_file("relative.ckpt", 1, Isa::Scalar);
    std::env::set_current_dir(here).unwrap();
    r.unwrap();
    assert_eq!(bits(&params(&l.unwrap())), bits(&params(&b)));
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn file_errors_leave_the_previous_checkpoint_intact() {
    let dir = temp_dir("file-errors");
    let path = dir.join("keep.ckpt");
    let m = small();
    m.save_file(&path).unwrap();
    let before = std::fs::read(&path).unwrap();
    let other = trained(&Config::new(2, &[3], 1), Isa::Scalar, 3);

    // A directory that does not exist.
    assert_eq!(
        other.save_file(dir.join("missing").join("x.ckpt")),
        Err(Error::Io)
    );
    // The target is a directory: the rename fails, the temporary file is removed.
    std::fs::create_dir(dir.join("sub")).unwrap();
    assert_eq!(other.save_file(dir.join("sub")), Err(Error::Io));
    assert!(dir.join("sub").is_dir());
    // Paths that name no file.
    assert_eq!(other.save_file(""), Err(Error::Io));
    assert_eq!(other.save_file(dir.join("..")), Err(Error::Io));
    assert_eq!(entries(&dir), ["keep.ckpt", "sub"]);
    assert_eq!(std::fs::read(&path).unwrap(), before);

    // Loading: missing file, a directory, an empty file, truncated, trailing bytes.
    assert_eq!(
        Model::load_file(dir.join("nope"), 1, Isa::Scalar).err(),
        Some(Error::Io)
    );
    assert_eq!(
        Model::load_file(dir.join("sub"), 1, Isa::Scalar).err(),
        Some(Error::Io)
    );
    assert_eq!(
        Model::load_file(&path, 0, Isa::Scalar).err(),
        Some(Error::InvalidArgument)
    );
    let write = |name: &str, bytes: &[u8]| {
        let p = dir.join(name);
        std::fs::write(&p, bytes).unwrap();
        p
    };
    for (name, bytes) in [
        ("empty", Vec::new()),
        ("header-only", before[..112].to_vec()),
        ("short", before[..before.len() - 1].to_vec()),
        ("long", [&before[..], &[0]].concat()),
        ("flipped", {
            let mut f = before.clone();
            f[130] ^= 0x10;
            f
        }),
    ] {
        let p = write(name, &bytes);
        let (r, _, largest) = watched(|| Model::load_file(&p, 1, Isa::Scalar));
        assert_eq!(r.err(), Some(Error::BadCheckpoint), "{name}");
        assert!(
            largest <= before.len().max(4096),
            "{name}: allocated {largest}"
        );
    }
    // A header claiming 2^40 inputs in a tiny file: refused before reading or
    // allocating for the rest.
    let p = write("huge", &edit(&before, 16, &(1u64 << 40).to_le_bytes()));
    let (r, _, largest) = watched(|| Model::load_file(&p, 1, Isa::Scalar));
    assert_eq!(r.err(), Some(Error::BadCheckpoint));
    assert!(largest <= 4096, "allocated {largest}");
    // A header claiming 64 MiB of parameters, in a short file: refused (short).
    let p = write(
        "claims-more",
        &edit(&before, 16, &(1u64 << 22).to_le_bytes()),
    );
    assert_eq!(
        Model::load_file(&p, 1, Isa::Scalar).err(),
        Some(Error::BadCheckpoint)
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

/// A model big enough that a save takes a little while (about 4 MB).
fn crash_config() -> Config {
    Config::new(64, &[1024, 512, 256], 4).max_batch(1)
}

fn crash_model(variant: u64) -> Model {
    let mut m = Model::new(&crash_config().isa(Isa::Scalar).seed(variant)).unwrap();
    let p: Vec<f32> = (0..m.param_count())
        .map(|i| (i as f32 * 1e-3 + variant as f32).sin())
        .collect();
    m.set_params(&p).unwrap();
    m
}

/// The child of `a_save_killed_at_any_moment_never_destroys_the_checkpoint`: saves
/// two models alternately to `$FLOWMLP_CRASH_PATH` until it is killed.
#[test]
#[ignore = "run by a_save_killed_at_any_moment_never_destroys_the_checkpoint"]
fn crash_child_saves_forever() {
    let Ok(path) = std::env::var("FLOWMLP_CRASH_PATH") else {
        return;
    };
    let models = [crash_model(1), crash_model(2)];
    for i in 0.. {
        models[i % 2].save_file(&path).unwrap();
    }
}

#[test]
fn a_save_killed_at_any_moment_never_destroys_the_checkpoint() {
    let dir = temp_dir("crash");
    let path = dir.join("live.ckpt");
    let variants = [crash_model(1), crash_model(2)];
    let known: Vec<Vec<u8>> = variants.iter().map(save).collect();
    variants[0].save_file(&path).unwrap();
    let exe = std::env::current_exe().unwrap();
    let mut rng = Rng(0xDEAD_BEEF);
    let mut seen = [false; 2];
    for round in 0..12 {
        let mut child = std::process::Command::new(&exe)
            .args([
                "crash_child_saves_forever",
                "--exact",
                "--ignored",
                "--test-threads=1",
            ])
            .env("FLOWMLP_CRASH_PATH", &path)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(std::time::Duration::from_millis(20 + rng.below(150) as u64));
        child.kill().unwrap(); // SIGKILL: no destructors, no cleanup
        child.wait().unwrap();
        let bytes = std::fs::read(&path).unwrap();
        let which = known.iter().position(|k| *k == bytes);
        assert!(
            which.is_some(),
            "round {round}: the checkpoint is neither of the saved models ({} bytes)",
            bytes.len()
        );
        seen[which.unwrap()] = true;
        assert!(Model::load_file(&path, 1, Isa::Scalar).is_ok());
    }
    // Leftover temporaries are allowed (a crash cannot clean up), but only as such.
    for name in entries(&dir) {
        assert!(
            name == "live.ckpt" || (name.starts_with(".live.ckpt.") && name.ends_with(".tmp")),
            "unexpected file {name}"
        );
    }
    eprintln!("crash test: final checkpoints seen: {seen:?}");
    std::fs::remove_dir_all(&dir).unwrap();
}
