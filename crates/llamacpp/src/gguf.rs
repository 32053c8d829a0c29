//! The GGUF v3 container (ggml's `docs/gguf.md`): a header, typed key/value metadata,
//! tensor descriptions, then the tensor data at aligned offsets. A small writer (tailor
//! writes its models itself, streaming the data) and a reader of everything but the data
//! (for tests and for checking a file before handing it to llama.cpp).
//!
//! No well-kept Rust crate writes GGUF without pulling in a tensor framework (candle's
//! writer wants candle tensors in memory; a 0.5B model at f32 is 2 GB), so this is the
//! documented format by hand: little-endian, strings as `u64` length + UTF-8 bytes.

use std::io::{self, Read, Write};

/// `GGUF` in ASCII, read as a little-endian u32.
pub const MAGIC: [u8; 4] = *b"GGUF";
pub const VERSION: u32 = 3;
/// ggml's default alignment of tensor data (`general.alignment` when absent).
pub const ALIGNMENT: u64 = 32;

/// ggml tensor types tailor writes (ids of `enum ggml_type`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum GgmlType {
    F32,
    F16,
    Q4_0,
    Q8_0,
}

impl GgmlType {
    pub fn id(self) -> u32 {
        match self {
            GgmlType::F32 => 0,
            GgmlType::F16 => 1,
            GgmlType::Q4_0 => 2,
            GgmlType::Q8_0 => 8,
        }
    }

    pub fn from_id(id: u32) -> Option<Self> {
        [GgmlType::F32, GgmlType::F16, GgmlType::Q4_0, GgmlType::Q8_0]
            .into_iter()
            .find(|t| t.id() == id)
    }

    /// Elements per block and bytes per block.
    pub fn block(self) -> (u64, u64) {
        match self {
            GgmlType::F32 => (1, 4),
            GgmlType::F16 => (1, 2),
            GgmlType::Q4_0 => (32, 18),
            GgmlType::Q8_0 => (32, 34),
        }
    }

    /// Bytes of a tensor of `dims` (ggml order: `dims[0]` is the row length, which must be
    /// a whole number of blocks).
    pub fn bytes(self, dims: &[u64]) -> u64 {
        let (per, bytes) = self.block();
        let row = dims.first().copied().unwrap_or(1);
        let rows: u64 = dims.iter().skip(1).product();
        row.div_ceil(per) * bytes * rows
    }
}

/// A metadata value (the subset of GGUF's types tailor writes and reads back).
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    U32(u32),
    I32(i32),
    U64(u64),
    F32(f32),
    Bool(bool),
    String(String),
    /// An array of strings (e.g. `general.tags`).
    Strings(Vec<String>),
    /// An array of i32 (per-layer values: `lfm2.attention.head_count_kv`).
    I32s(Vec<i32>),
}

const T_U8: u32 = 0;
const T_I8: u32 = 1;
const T_U16: u32 = 2;
const T_I16: u32 = 3;
const T_U32: u32 = 4;
const T_I32: u32 = 5;
const T_F32: u32 = 6;
const T_BOOL: u32 = 7;
const T_STRING: u32 = 8;
const T_ARRAY: u32 = 9;
const T_U64: u32 = 10;
const T_I64: u32 = 11;
const T_F64: u32 = 12;

/// One tensor's description: name, ggml dims, type; its offset is computed on writing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TensorDesc {
    pub name: String,
    /// ggml order: `dims[0]` is the contiguous (row) dimension.
    pub dims: Vec<u64>,
    pub ty: GgmlType,
}

impl TensorDesc {
    pub fn bytes(&self) -> u64 {
        self.ty.bytes(&self.dims)
    }

    pub fn numel(&self) -> u64 {
        self.dims.iter().product()
    }
}

/// What a GGUF file holds, less the tensor data.
#[derive(Debug, Clone, PartialEq)]
pub struct Header {
    pub metadata: Vec<(String, Value)>,
    pub tensors: Vec<TensorDesc>,
}

fn align(n: u64) -> u64 {
    n.div_ceil(ALIGNMENT) * ALIGNMENT
}

fn put_str(w: &mut impl Write, s: &str) -> io::Result<()> {
    w.write_all(&(s.len() as u64).to_le_bytes())?;
    w.write_all(s.as_bytes())
}

impl Header {
    pub fn get(&self, key: &str) -> Option<&Value> {
        self.metadata.iter().find(|(k, _)| k == key).map(|(_, v)| v)
    }

    /// Offsets of each tensor's data, relative to the start of the data section.
    pub fn offsets(&self) -> Vec<u64> {
        let mut at = 0;
        self.tensors
            .iter()
            .map(|t| {
                let here = at;
                at = align(at + t.bytes());
                here
            })
            .collect()
    }

    /// Bytes of the whole file.
    pub fn file_bytes(&self) -> u64 {
        let mut head = Vec::new();
        // Writing into a Vec cannot fail.
        let _ = self.write_head(&mut head);
        align(head.len() as u64) + self.tensors.iter().map(|t| align(t.bytes())).sum::<u64>()
    }

    fn write_head(&self, w: &mut impl Write) -> io::Result<()> {
        w.write_all(&MAGIC)?;
        w.write_all(&VERSION.to_le_bytes())?;
        w.write_all(&(self.tensors.len() as u64).to_le_bytes())?;
        w.write_all(&(self.metadata.len() as u64).to_le_bytes())?;
        for (key, value) in &self.metadata {
            put_str(w, key)?;
            match value {
                Value::U32(v) => {
                    w.write_all(&T_U32.to_le_bytes())?;
                    w.write_all(&v.to_le_bytes())?;
                }
                Value::I32(v) => {
                    w.write_all(&T_I32.to_le_bytes())?;
                    w.write_all(&v.to_le_bytes())?;
                }
                Value::U64(v) => {
                    w.write_all(&T_U64.to_le_bytes())?;
                    w.write_all(&v.to_le_bytes())?;
                }
                Value::F32(v) => {
                    w.write_all(&T_F32.to_le_bytes())?;
                    w.write_all(&v.to_le_bytes())?;
                }
                Value::Bool(v) => {
                    w.write_all(&T_BOOL.to_le_bytes())?;
                    w.write_all(&[u8::from(*v)])?;
                }
                Value::String(s) => {
                    w.write_all(&T_STRING.to_le_bytes())?;
                    put_str(w, s)?;
                }
                Value::Strings(list) => {
                    w.write_all(&T_ARRAY.to_le_bytes())?;
                    w.write_all(&T_STRING.to_le_bytes())?;
                    w.write_all(&(list.len() as u64).to_le_bytes())?;
                    for s in list {
                        put_str(w, s)?;
                    }
                }
                Value::I32s(list) => {
                    w.write_all(&T_ARRAY.to_le_bytes())?;
                    w.write_all(&T_I32.to_le_bytes())?;
                    w.write_all(&(list.len() as u64).to_le_bytes())?;
                    for v in list {
                        w.write_all(&v.to_le_bytes())?;
                    }
                }
            }
        }
        for (t, offset) in self.tensors.iter().zip(self.offsets()) {
            put_str(w, &t.name)?;
            w.write_all(&(t.dims.len() as u32).to_le_bytes())?;
            for d in &t.dims {
                w.write_all(&d.to_le_bytes())?;
            }
            w.write_all(&t.ty.id().to_le_bytes())?;
            w.write_all(&offset.to_le_bytes())?;
        }
        Ok(())
    }

    /// Writes the file: the header, then each tensor's bytes from `data(index, desc, w)`,
    /// which must write exactly `desc.bytes()` bytes (checked), padded to the alignment.
    pub fn write(
        &self,
        w: &mut impl Write,
        mut data: impl FnMut(usize, &TensorDesc, &mut dyn Write) -> io::Result<()>,
    ) -> io::Result<()> {
        let mut counted = Counting { inner: w, n: 0 };
        self.write_head(&mut counted)?;
        pad(&mut counted)?;
        for (i, t) in self.tensors.iter().enumerate() {
            let start = counted.n;
            data(i, t, &mut counted)?;
            let wrote = counted.n - start;
            if wrote != t.bytes() {
                return Err(io::Error::other(format!(
                    "tensor `{}`: wrote {wrote} bytes, its shape takes {}",
                    t.name,
                    t.bytes()
                )));
            }
            pad(&mut counted)?;
        }
        Ok(())
    }

    /// Reads the header and tensor descriptions (not the data) and checks that the data
    /// offsets are the aligned, packed ones this writer produces.
    pub fn read(r: &mut impl Read) -> Result<Self, GgufError> {
        let mut magic = [0u8; 4];
        r.read_exact(&mut magic)?;
        if magic != MAGIC {
            return Err(GgufError::Format(format!(
                "not a GGUF file (magic {magic:?})"
            )));
        }
        let version = get_u32(r)?;
        if version != VERSION {
            return Err(GgufError::Format(format!(
                "GGUF version {version}; this reader reads version {VERSION}"
            )));
        }
        let n_tensors = get_u64(r)?;
        let n_kv = get_u64(r)?;
        if n_tensors > 1 << 24 || n_kv > 1 << 24 {
            return Err(GgufError::Format(format!(
                "implausible counts: {n_tensors} tensors, {n_kv} keys"
            )));
        }
        let mut metadata = Vec::new();
        for _ in 0..n_kv {
            let key = get_str(r)?;
            let ty = get_u32(r)?;
            let value = read_value(r, ty, &key)?;
            metadata.push((key, value));
        }
        let mut tensors = Vec::new();
        let mut offsets = Vec::new();
        for _ in 0..n_tensors {
            let name = get_str(r)?;
            let n_dims = get_u32(r)?;
            if n_dims == 0 || n_dims > 4 {
                return Err(GgufError::Format(format!(
                    "tensor `{name}` has {n_dims} dimensions"
                )));
            }
            let dims = (0..n_dims)
                .map(|_| get_u64(r))
                .collect::<Result<Vec<_>, _>>()?;
            let id = get_u32(r)?;
            let ty = GgmlType::from_id(id)
                .ok_or_else(|| GgufError::Format(format!("tensor `{name}` has ggml type {id}")))?;
            offsets.push(get_u64(r)?);
            tensors.push(TensorDesc { name, dims, ty });
        }
        let header = Header { metadata, tensors };
        if header.offsets() != offsets {
            return Err(GgufError::Format(
                "tensor data offsets are not packed at the alignment".into(),
            ));
        }
        Ok(header)
    }
}

fn read_value(r: &mut impl Read, ty: u32, key: &str) -> Result<Value, GgufError> {
    Ok(match ty {
        T_U32 => Value::U32(get_u32(r)?),
        T_I32 => Value::I32(get_u32(r)? as i32),
        T_U64 => Value::U64(get_u64(r)?),
        T_F32 => Value::F32(f32::from_bits(get_u32(r)?)),
        T_BOOL => {
            let mut b = [0u8; 1];
            r.read_exact(&mut b)?;
            Value::Bool(b[0] != 0)
        }
        T_STRING => Value::String(get_str(r)?),
        T_ARRAY => {
            let elem = get_u32(r)?;
            let n = get_u64(r)?;
            match elem {
                _ if n > 1 << 24 => {
                    return Err(GgufError::Format(format!(
                        "key `{key}`: an array of {n} items is more than this reader takes"
                    )));
                }
                T_STRING => Value::Strings((0..n).map(|_| get_str(r)).collect::<Result<_, _>>()?),
                T_I32 => Value::I32s(
                    (0..n)
                        .map(|_| get_u32(r).map(|v| v as i32))
                        .collect::<Result<_, _>>()?,
                ),
                _ => {
                    return Err(GgufError::Format(format!(
                        "key `{key}`: arrays of type {elem} ({n} items) are not read"
                    )));
                }
            }
        }
        T_U8 | T_I8 | T_U16 | T_I16 | T_I64 | T_F64 => {
            return Err(GgufError::Format(format!(
                "key `{key}`: value type {ty} is not read by this reader"
            )));
        }
        other => {
            return Err(GgufError::Format(format!(
                "key `{key}`: unknown value type {other}"
            )));
        }
    })
}

/// A malformed or unsupported GGUF file.
#[derive(Debug, thiserror::Error)]
pub enum GgufError {
    #[error("{0}")]
    Io(#[from] io::Error),
    #[error("{0}")]
    Format(String),
}

fn get_u32(r: &mut impl Read) -> io::Result<u32> {
    let mut b = [0u8; 4];
    r.read_exact(&mut b)?;
    Ok(u32::from_le_bytes(b))
}

fn get_u64(r: &mut impl Read) -> io::Result<u64> {
    let mut b = [0u8; 8];
    r.read_exact(&mut b)?;
    Ok(u64::from_le_bytes(b))
}

fn get_str(r: &mut impl Read) -> Result<String, GgufError> {
    let n = get_u64(r)?;
    if n > 1 << 20 {
        return Err(GgufError::Format(format!("string of {n} bytes")));
    }
    let mut b = vec![0u8; n as usize];
    r.read_exact(&mut b)?;
    String::from_utf8(b).map_err(|_| GgufError::Format("string is not UTF-8".into()))
}

struct Counting<'a, W: Write> {
    inner: &'a mut W,
    n: u64,
}

impl<W: Write> Write for Counting<'_, W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.n += n as u64;
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

fn pad<W: Write>(w: &mut Counting<'_, W>) -> io::Result<()> {
    let zeros = [0u8; ALIGNMENT as usize];
    let n = (align(w.n) - w.n) as usize;
    w.write_all(&zeros[..n])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header() -> Header {
        Header {
            metadata: vec![
                ("general.architecture".into(), Value::String("llama".into())),
                ("llama.block_count".into(), Value::U32(2)),
                ("llama.rope.freq_base".into(), Value::F32(10000.0)),
                ("x.u64".into(), Value::U64(1 << 40)),
                ("x.i32".into(), Value::I32(-3)),
                ("x.bool".into(), Value::Bool(true)),
                (
                    "x.list".into(),
                    Value::Strings(vec!["a".into(), "βγ".into()]),
                ),
                ("x.ints".into(), Value::I32s(vec![0, 8, -1])),
            ],
            tensors: vec![
                TensorDesc {
                    name: "a".into(),
                    dims: vec![64, 3],
                    ty: GgmlType::Q4_0,
                },
                TensorDesc {
                    name: "b".into(),
                    dims: vec![5],
                    ty: GgmlType::F32,
                },
                TensorDesc {
                    name: "c".into(),
                    dims: vec![32, 2],
                    ty: GgmlType::Q8_0,
                },
                TensorDesc {
                    name: "d".into(),
                    dims: vec![7, 3],
                    ty: GgmlType::F16,
                },
            ],
        }
    }

    fn write(h: &Header) -> Vec<u8> {
        let mut out = Vec::new();
        h.write(&mut out, |i, t, w| {
            w.write_all(&vec![i as u8; t.bytes() as usize])
        })
        .unwrap();
        out
    }

    #[test]
    fn round_trips_and_places_data_where_the_header_says() {
        let h = header();
        let bytes = write(&h);
        assert_eq!(bytes.len() as u64, h.file_bytes());
        let back = Header::read(&mut bytes.as_slice()).unwrap();
        assert_eq!(back, h);
        // Q4_0 64x3 = 2 blocks x 18 x 3 rows; F32 5 = 20; Q8_0 = 68; F16 = 42.
        let sizes: Vec<u64> = h.tensors.iter().map(TensorDesc::bytes).collect();
        assert_eq!(sizes, [108, 20, 68, 42]);
        assert_eq!(h.offsets(), [0, 128, 160, 256]);
        let data_start = bytes.len() - (256 + 64);
        assert_eq!(data_start % 32, 0);
        for (i, off) in h.offsets().iter().enumerate() {
            assert_eq!(bytes[data_start + *off as usize], i as u8);
        }
    }

    #[test]
    fn a_short_tensor_write_is_an_error() {
        let h = header();
        let e = h
            .write(&mut Vec::new(), |_, _, w| w.write_all(&[0u8; 3]))
            .unwrap_err();
        assert!(e.to_string().contains("tensor `a`: wrote 3 bytes"), "{e}");
    }

    #[test]
    fn garbage_is_refused_not_a_panic() {
        let bytes = write(&header());
        for cut in [0, 3, 4, 10, 30, 100, 200] {
            assert!(Header::read(&mut &bytes[..cut.min(bytes.len())]).is_err());
        }
        let mut bad = bytes.clone();
        bad[0] = b'X';
        assert!(
            Header::read(&mut bad.as_slice())
                .unwrap_err()
                .to_string()
                .contains("not a GGUF")
        );
    }
}
