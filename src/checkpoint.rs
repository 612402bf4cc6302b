//! Checkpoints: a model's topology and parameters as bytes, and back, bit for bit.
//!
//! Format version 1. Every integer and float is little-endian on every platform;
//! there is no padding:
//!
//! ```text
//! offset  bytes  field
//!      0      8  magic: 0x89 "FLOWMLP" (the high bit catches 7-bit channels)
//!      8      4  format version (u32) = 1
//!     12      4  k, the number of hidden layers (u32, 1..=8)
//!     16      8  d, inputs (u64, >= 1)
//!     24      8  m, outputs (u64, >= 1)
//!     32     64  h_1 .. h_8 (u64 each): >= 1 for the first k, 0 past k
//!     96      8  the seed the model was created with (u64; informational)
//!    104      4  number of sections (u32) = 2
//!    108      4  reserved (u32) = 0
//!    112         sections, in this order, each a 16-byte header and a payload:
//!                  tag (u32), flags (u32) = 0, payload length in bytes (u64)
//!                  tag 1 PARAMS:    param_count f32 values, the contract's flat layout
//!                  tag 2 OPTIMIZER: optimizer state; empty (length 0) in this version
//!  len-4      4  CRC-32 (IEEE 802.3, as zlib's `crc32`) of every byte before it
//! ```
//!
//! Loading validates everything before it allocates: the magic, the version, the
//! topology (each dimension, the parameter count with checked arithmetic), that the
//! byte length is exactly what the topology implies (so a header claiming terabytes
//! of parameters in a short buffer is refused before anything is allocated), every
//! section header, the CRC, and that every parameter is finite. Any failure is
//! [`Error::BadCheckpoint`]. The kernel set and `max_batch` are not part of a
//! checkpoint: the loader chooses them, so a checkpoint written under one kernel set
//! loads under any other.
//!
//! Extending the format (optimizer state): the OPTIMIZER payload is meant to start
//! with an optimizer kind (u32) followed by that kind's state; its length must be a
//! function of the fixed header (topology, and anything added to it), so that
//! [`Header::total_len`] still knows the whole length before a byte of payload is
//! read. A reader refuses sections, lengths and versions it does not know.
//!
//! Files ([`Model::save_file`]) are written to a temporary file in the same
//! directory, synced, renamed over the target, and the directory is synced, so a
//! crash or a full disk during a save leaves the previous checkpoint intact.

use std::io::{Read, Write};
use std::path::Path;

use crate::config::{Config, Isa, MAX_HIDDEN};
use crate::{Error, Model};

/// The first eight bytes of every checkpoint.
pub(crate) const MAGIC: [u8; 8] = *b"\x89FLOWMLP";
/// The format version this build writes and the newest it reads.
pub(crate) const VERSION: u32 = 1;
/// Bytes before the first section.
const FIXED: usize = 112;
/// Bytes of a section header.
const SECTION: usize = 16;
/// Bytes of the trailing CRC.
const CRC: usize = 4;
/// Section tags.
const TAG_PARAMS: u32 = 1;
const TAG_OPTIMIZER: u32 = 2;
/// Sections of a version-1 checkpoint.
const SECTIONS: u32 = 2;
/// Where the parameter payload starts.
const PARAMS_AT: usize = FIXED + SECTION;

/// CRC-32 lookup table (reflected polynomial 0xEDB88320), built at compile time.
const CRC_TABLE: [u32; 256] = {
    let mut table = [0u32; 256];
    let mut i = 0;
    while i < 256 {
        let mut c = i as u32;
        let mut bit = 0;
        while bit < 8 {
            c = if c & 1 != 0 {
                0xEDB8_8320 ^ (c >> 1)
            } else {
                c >> 1
            };
            bit += 1;
        }
        table[i] = c;
        i += 1;
    }
    table
};

/// CRC-32 of `bytes` (IEEE 802.3; `crc32(b"123456789") == 0xCBF43926`).
pub(crate) fn crc32(bytes: &[u8]) -> u32 {
    let mut c = !0u32;
    for &b in bytes {
        c = CRC_TABLE[((c ^ b as u32) & 0xFF) as usize] ^ (c >> 8);
    }
    !c
}

fn u32_at(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

fn u64_at(b: &[u8], at: usize) -> u64 {
    let mut v = [0u8; 8];
    v.copy_from_slice(&b[at..at + 8]);
    u64::from_le_bytes(v)
}

fn put_u32(b: &mut [u8], at: usize, v: u32) {
    b[at..at + 4].copy_from_slice(&v.to_le_bytes());
}

fn put_u64(b: &mut [u8], at: usize, v: u64) {
    b[at..at + 8].copy_from_slice(&v.to_le_bytes());
}

/// What the fixed part of a checkpoint says, checked.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Header {
    /// The topology and seed (`max_batch` 1, `Isa::Auto`: the loader sets those).
    pub config: Config,
    /// Length of the flat parameter array.
    pub param_count: usize,
    /// Bytes the whole checkpoint must have, CRC included.
    pub total_len: usize,
}

/// A dimension from the file: at least 1 and representable as `usize`.
fn dim(v: u64) -> Result<usize, Error> {
    match usize::try_from(v) {
        Ok(d) if d >= 1 => Ok(d),
        _ => Err(Error::BadCheckpoint),
    }
}

impl Header {
    /// Check the first `FIXED` bytes (magic, version, topology, section count) and
    /// compute the length the whole checkpoint must have. Allocates nothing.
    pub(crate) fn parse(b: &[u8]) -> Result<Header, Error> {
        let bad = Error::BadCheckpoint;
        if b.len() < FIXED || b[..8] != MAGIC {
            return Err(bad);
        }
        if u32_at(b, 8) != VERSION {
            return Err(bad);
        }
        let k = u32_at(b, 12) as usize;
        if !(1..=MAX_HIDDEN).contains(&k) {
            return Err(bad);
        }
        let inputs = dim(u64_at(b, 16))?;
        let outputs = dim(u64_at(b, 24))?;
        let mut hidden = [0usize; MAX_HIDDEN];
        for (i, h) in hidden.iter_mut().enumerate() {
            let v = u64_at(b, 32 + 8 * i);
            if i < k {
                *h = dim(v)?;
            } else if v != 0 {
                return Err(bad);
            }
        }
        let seed = u64_at(b, 96);
        if u32_at(b, 104) != SECTIONS || u32_at(b, 108) != 0 {
            return Err(bad);
        }
        // Parameter count, layer by layer, with every product and sum checked.
        let mut count = 0usize;
        let mut fan_in = inputs;
        for &out in hidden[..k].iter().chain(core::iter::once(&outputs)) {
            count = out
                .checked_mul(fan_in)
                .and_then(|w| w.checked_add(out))
                .and_then(|l| l.checked_add(count))
                .ok_or(bad)?;
            fan_in = out;
        }
        let total_len = count
            .checked_mul(4)
            .and_then(|p| p.checked_add(FIXED + 2 * SECTION + CRC))
            .ok_or(bad)?;
        Ok(Header {
            config: Config::new(inputs, &hidden[..k], outputs).seed(seed),
            param_count: count,
            total_len,
        })
    }
}

/// A checkpoint whose every byte has been checked.
pub(crate) struct Checked<'a> {
    pub header: Header,
    /// The PARAMS payload: `param_count` little-endian f32 values, all finite.
    pub params: &'a [u8],
    /// The OPTIMIZER payload (empty in format version 1).
    pub optimizer: &'a [u8],
}

/// Validate a whole checkpoint: header, exact length, sections, CRC, finite values.
/// Allocates nothing.
pub(crate) fn check(b: &[u8]) -> Result<Checked<'_>, Error> {
    let bad = Error::BadCheckpoint;
    let header = Header::parse(b)?;
    if b.len() != header.total_len {
        return Err(bad);
    }
    let params_len = header.param_count * 4; // cannot overflow: total_len did not
    let mut at = FIXED;
    let mut payloads: [&[u8]; 2] = [&[], &[]];
    for (i, (tag, want)) in [(TAG_PARAMS, params_len), (TAG_OPTIMIZER, 0)]
        .into_iter()
        .enumerate()
    {
        let len = u64_at(b, at + 8);
        if u32_at(b, at) != tag || u32_at(b, at + 4) != 0 || len != want as u64 {
            return Err(bad);
        }
        at += SECTION;
        payloads[i] = &b[at..at + want];
        at += want;
    }
    debug_assert_eq!(at + CRC, b.len());
    if crc32(&b[..at]) != u32_at(b, at) {
        return Err(bad);
    }
    let params = payloads[0];
    let finite = params
        .chunks_exact(4)
        .all(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]).is_finite());
    if !finite {
        return Err(bad);
    }
    Ok(Checked {
        header,
        params,
        optimizer: payloads[1],
    })
}

impl Model {
    /// Bytes of this model's checkpoint ([`Model::save`]).
    pub fn save_size(&self) -> usize {
        // Cannot overflow: the arena already holds two parameter buffers.
        FIXED + 2 * SECTION + 4 * self.param_count() + CRC
    }

    /// Write the model's checkpoint (format version 1; see the module docs) into the
    /// start of `buf`; returns the bytes written ([`Model::save_size`]). Refuses a
    /// buffer shorter than that with `InvalidArgument`, writing nothing. Does not
    /// allocate.
    pub fn save(&self, buf: &mut [u8]) -> Result<usize, Error> {
        let n = self.save_size();
        let out = buf.get_mut(..n).ok_or(Error::InvalidArgument)?;
        let cfg = self.config();
        out[..8].copy_from_slice(&MAGIC);
        put_u32(out, 8, VERSION);
        put_u32(out, 12, cfg.n_hidden as u32);
        put_u64(out, 16, cfg.inputs as u64);
        put_u64(out, 24, cfg.outputs as u64);
        for i in 0..MAX_HIDDEN {
            let h = cfg.hidden_widths().get(i).copied().unwrap_or(0);
            put_u64(out, 32 + 8 * i, h as u64);
        }
        put_u64(out, 96, cfg.seed);
        put_u32(out, 104, SECTIONS);
        put_u32(out, 108, 0);
        let params_len = 4 * self.param_count();
        put_u32(out, FIXED, TAG_PARAMS);
        put_u32(out, FIXED + 4, 0);
        put_u64(out, FIXED + 8, params_len as u64);
        {
            let p = &mut out[PARAMS_AT..PARAMS_AT + params_len];
            self.visit_params(|flat, v| {
                p[4 * flat..4 * flat + 4].copy_from_slice(&v.to_le_bytes());
            });
        }
        let opt = PARAMS_AT + params_len;
        put_u32(out, opt, TAG_OPTIMIZER);
        put_u32(out, opt + 4, 0);
        put_u64(out, opt + 8, 0);
        let end = opt + SECTION;
        let crc = crc32(&out[..end]);
        put_u32(out, end, crc);
        Ok(n)
    }

    /// A model from a checkpoint written by [`Model::save`], with room for
    /// `max_batch` rows and kernel set `isa` (any set: checkpoints do not depend on
    /// it). The parameters come back bit for bit; gradients are zero and there is no
    /// kept forward, as after [`Model::new`].
    ///
    /// Errors: `max_batch` 0 is `InvalidArgument`; anything wrong with the bytes
    /// (truncated, corrupted, another format version, an impossible topology,
    /// non-finite parameters) is `BadCheckpoint`, found before anything is
    /// allocated; then as [`Model::new`] (`UnsupportedIsa`, `InvalidConfig` when
    /// `max_batch` makes the arena overflow, `OutOfMemory`).
    pub fn load(bytes: &[u8], max_batch: usize, isa: Isa) -> Result<Model, Error> {
        if max_batch == 0 {
            return Err(Error::InvalidArgument);
        }
        let ck = check(bytes)?;
        let config = ck.header.config.max_batch(max_batch).isa(isa);
        // Sizes first, so that an overflowing max_batch allocates nothing.
        Model::arena_size_for(&config)?;
        let mut values: Vec<f32> = Vec::new();
        values
            .try_reserve_exact(ck.header.param_count)
            .map_err(|_| Error::OutOfMemory)?;
        values.extend(
            ck.params
                .chunks_exact(4)
                .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])),
        );
        debug_assert!(ck.optimizer.is_empty());
        let mut model = Model::new(&config)?;
        model.set_params(&values)?;
        Ok(model)
    }

    /// Save the checkpoint to the file `path`, atomically: written to a temporary
    /// file in the same directory, synced, renamed over `path`, and the directory
    /// synced. A crash, a full disk or an error at any point leaves a previous file
    /// at `path` intact (a crash may leave a `.<name>.*.tmp` file behind). Errors:
    /// `Io` (the details are not kept; use [`Model::save`] and your own I/O for
    /// them), `OutOfMemory`. Unlike the other calls of a model this one allocates
    /// (the checkpoint's bytes and the temporary file's name).
    pub fn save_file(&self, path: impl AsRef<Path>) -> Result<(), Error> {
        let n = self.save_size();
        let mut bytes: Vec<u8> = Vec::new();
        bytes.try_reserve_exact(n).map_err(|_| Error::OutOfMemory)?;
        bytes.resize(n, 0);
        self.save(&mut bytes)?;
        write_atomically(path.as_ref(), &bytes).map_err(|_| Error::Io)
    }

    /// [`Model::load`] from the file `path`. The file is read only as far as its
    /// header justifies: a header that does not match the file's length is
    /// `BadCheckpoint` before the rest is read. `Io` when the file cannot be opened or
    /// read.
    pub fn load_file(path: impl AsRef<Path>, max_batch: usize, isa: Isa) -> Result<Model, Error> {
        if max_batch == 0 {
            return Err(Error::InvalidArgument);
        }
        let mut file = std::fs::File::open(path.as_ref()).map_err(|_| Error::Io)?;
        let mut head = [0u8; FIXED];
        read_full(&mut file, &mut head)?;
        let header = Header::parse(&head)?;
        // Never trust the header's length for an allocation: a regular file must have
        // exactly that length, and anything else is read as far as it goes (growing
        // with the bytes that actually arrive), to at most one byte more.
        let meta = file.metadata().map_err(|_| Error::Io)?;
        if meta.is_file() && meta.len() != header.total_len as u64 {
            return Err(Error::BadCheckpoint);
        }
        let mut bytes: Vec<u8> = Vec::new();
        bytes.extend_from_slice(&head);
        let rest = (header.total_len - FIXED) as u64 + 1;
        (&mut file)
            .take(rest)
            .read_to_end(&mut bytes)
            .map_err(|_| Error::Io)?;
        if bytes.len() != header.total_len {
            return Err(Error::BadCheckpoint);
        }
        Model::load(&bytes, max_batch, isa)
    }
}

/// Fill `buf` from `r`: a short file is `BadCheckpoint`, a read error `Io`.
fn read_full(r: &mut impl Read, buf: &mut [u8]) -> Result<(), Error> {
    r.read_exact(buf).map_err(|e| match e.kind() {
        std::io::ErrorKind::UnexpectedEof => Error::BadCheckpoint,
        _ => Error::Io,
    })
}

/// Write `bytes` to `path` through a synced temporary file in the same directory.
fn write_atomically(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::{Error as IoError, ErrorKind};
    let name = path
        .file_name()
        .ok_or_else(|| IoError::new(ErrorKind::InvalidInput, "the path names no file"))?;
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    // A fresh name (create_new never reuses a file, so concurrent saves and files
    // left by a crash are safe): ".<name>.<pid>.<nanos>.<attempt>.tmp".
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    let mut attempt = 0u32;
    let (tmp, mut file) = loop {
        let mut tmp_name = std::ffi::OsString::from(".");
        tmp_name.push(name);
        tmp_name.push(format!(".{}.{nanos}.{attempt}.tmp", std::process::id()));
        let tmp = dir.join(tmp_name);
        match std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&tmp)
        {
            Ok(f) => break (tmp, f),
            Err(e) if e.kind() == ErrorKind::AlreadyExists && attempt < 100 => attempt += 1,
            Err(e) => return Err(e),
        }
    };
    let written = file
        .write_all(bytes)
        .and_then(|()| file.sync_all())
        .and_then(|()| {
            drop(file);
            std::fs::rename(&tmp, path)
        });
    if let Err(e) = written {
        let _ = std::fs::remove_file(&tmp);
        return Err(e);
    }
    // Make the rename itself durable. (Directories cannot be opened for this on
    // every platform; where they can, a failure is reported.)
    #[cfg(unix)]
    std::fs::File::open(dir)?.sync_all()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc32_matches_the_standard_check_value() {
        assert_eq!(crc32(b"123456789"), 0xCBF4_3926);
        assert_eq!(crc32(b""), 0);
        assert_eq!(
            crc32(b"The quick brown fox jumps over the lazy dog"),
            0x414F_A339
        );
    }

    #[test]
    fn header_offsets_are_consistent() {
        assert_eq!(FIXED, 32 + 8 * MAX_HIDDEN + 8 + 4 + 4);
        let model = Model::new(&Config::new(3, &[5, 4], 2).isa(Isa::Scalar)).unwrap();
        let mut buf = vec![0u8; model.save_size()];
        assert_eq!(model.save(&mut buf), Ok(buf.len()));
        let ck = check(&buf).unwrap();
        assert_eq!(ck.header.param_count, model.param_count());
        assert_eq!(ck.header.total_len, buf.len());
        assert_eq!(ck.header.config.hidden_widths(), &[5, 4]);
        assert!(ck.optimizer.is_empty());
    }
}
