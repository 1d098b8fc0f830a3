//! A bounded reader for PyTorch zip checkpoints (`torch.save(state_dict)`).
//!
//! The `data.pkl` program is interpreted here, never by Python and never by an unbounded
//! interpreter: only the opcodes a state dict needs, only the globals of [`ALLOWED_GLOBALS`], each
//! called with the arity and argument types `torch.load(weights_only=True)` expects. The pickle
//! size, the number of live objects, the memo, the nesting depth and the total work are bounded
//! ([`Limits`]), so a few hundred hostile bytes cannot allocate gigabytes, recurse off the stack
//! or loop for long. Every tensor's shape, stride and offset are checked against its storage, and
//! every storage's element count against the bytes the archive stores, before any data is read.
use std::collections::HashMap;
use std::io::Read;
use std::path::Path;
use std::rc::Rc;
use std::sync::Arc;

use candle_core::{DType, Device, Tensor};

/// Globals a `torch.save(state_dict)` pickle may reference.
pub const ALLOWED_GLOBALS: &[(&str, &str)] = &[
    ("collections", "OrderedDict"),
    ("torch._utils", "_rebuild_tensor_v2"),
    ("torch._utils", "_rebuild_parameter"),
    ("torch", "FloatStorage"),
    ("torch", "HalfStorage"),
    ("torch", "BFloat16Storage"),
    ("torch", "DoubleStorage"),
    ("torch", "LongStorage"),
    ("torch", "ByteStorage"),
];

/// Resource bounds of one pickle program.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Bytes of one `*.pkl` member (decompressed).
    pub max_pickle_bytes: u64,
    /// Objects created (each counts once, however often the memo hands it out).
    pub max_objects: usize,
    /// Entries in the memo.
    pub max_memo: usize,
    /// Containers inside containers.
    pub max_depth: usize,
    /// Opcodes plus elements moved or copied.
    pub max_work: u64,
}

impl Limits {
    /// Generous for real checkpoints (a state dict needs about 25 objects per tensor, so 20 000
    /// tensors fit; its depth is 6), and within ~50 MB of memory at the bounds.
    pub const DEFAULT: Limits = Limits {
        max_pickle_bytes: 64 << 20,
        max_objects: 500_000,
        max_memo: 500_000,
        max_depth: 64,
        max_work: 50_000_000,
    };
}

#[derive(Debug, thiserror::Error)]
pub enum PickleError {
    #[error("{0}: not a PyTorch zip checkpoint: {1}")]
    NotZip(String, String),
    #[error("{0}: {1}: refused global `{2}.{3}` (only tensor storage and torch rebuild helpers are allowed)")]
    Refused(String, String, String, String),
    #[error("{0}: {1}: {2}")]
    Program(String, String, String),
    #[error("{0}: no data.pkl inside the archive")]
    NoPickle(String),
    #[error("{0}: tensor `{1}`: {2}")]
    Tensor(String, String, String),
}

/// Why one pickle program was refused (the file and member are added by the caller).
#[derive(Debug, Clone, PartialEq)]
pub enum GuardError {
    Refused(String, String),
    /// Byte position of the opcode and the reason.
    Other(usize, String),
}

/// Where a tensor's elements live: one `data/<key>` member of the archive.
#[derive(Debug, Clone, PartialEq)]
pub struct Storage {
    pub dtype: DType,
    pub key: String,
    /// Elements (not bytes), as the pickle states.
    pub numel: usize,
}

/// One tensor of the state dict: a strided view of a storage.
#[derive(Debug, Clone, PartialEq)]
pub struct TensorRef {
    pub storage: Arc<Storage>,
    /// Offset in elements.
    pub offset: usize,
    pub shape: Vec<usize>,
    pub stride: Vec<usize>,
}

#[derive(Debug, Clone, PartialEq)]
enum Val {
    None,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(String),
    Class(&'static str, &'static str),
    Tuple(Vec<Obj>),
    List(Vec<Obj>),
    Dict(Vec<(Obj, Obj)>),
    Storage(Arc<Storage>),
    Tensor(Box<TensorRef>),
}

/// A value with the nesting depth of its deepest container.
#[derive(Debug, Clone, PartialEq)]
struct Node {
    depth: usize,
    val: Val,
}

type Obj = Rc<Node>;

struct Machine<'a> {
    bytes: &'a [u8],
    pos: usize,
    op_at: usize,
    limits: Limits,
    stack: Vec<Obj>,
    marks: Vec<usize>,
    memo: HashMap<u32, Obj>,
    objects: usize,
    work: u64,
}

type Step<T> = Result<T, GuardError>;

impl<'a> Machine<'a> {
    fn err<T>(&self, msg: impl Into<String>) -> Step<T> {
        Err(GuardError::Other(self.op_at, msg.into()))
    }

    fn take(&mut self, n: usize) -> Step<&'a [u8]> {
        let end = self.pos.checked_add(n).filter(|&e| e <= self.bytes.len());
        match end {
            Some(end) => {
                let s = &self.bytes[self.pos..end];
                self.pos = end;
                Ok(s)
            }
            None => self
                .err(format!("needs {n} more bytes, the pickle ends at byte {}", self.bytes.len())),
        }
    }

    fn u8(&mut self) -> Step<u8> {
        Ok(self.take(1)?[0])
    }

    fn u32(&mut self) -> Step<u32> {
        let b = self.take(4)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }

    fn line(&mut self) -> Step<&'a str> {
        let rest = &self.bytes[self.pos..];
        let Some(n) = rest.iter().take(256).position(|&b| b == b'\n') else {
            return self.err("GLOBAL name is not a newline-terminated line of at most 256 bytes");
        };
        let s =
            std::str::from_utf8(&rest[..n]).or_else(|_| self.err("GLOBAL name is not UTF-8"))?;
        self.pos += n + 1;
        Ok(s)
    }

    fn charge(&mut self, work: usize) -> Step<()> {
        self.work += work as u64;
        if self.work > self.limits.max_work {
            return self.err(format!("more than {} steps of work", self.limits.max_work));
        }
        Ok(())
    }

    fn node(&mut self, val: Val) -> Step<Obj> {
        self.objects += 1;
        if self.objects > self.limits.max_objects {
            return self.err(format!("more than {} objects", self.limits.max_objects));
        }
        let depth = match &val {
            Val::Tuple(v) | Val::List(v) => 1 + v.iter().map(|o| o.depth).max().unwrap_or(0),
            Val::Dict(v) => 1 + v.iter().map(|(k, x)| k.depth.max(x.depth)).max().unwrap_or(0),
            _ => 0,
        };
        if depth > self.limits.max_depth {
            return self.err(format!("nesting deeper than {}", self.limits.max_depth));
        }
        Ok(Rc::new(Node { depth, val }))
    }

    fn push(&mut self, val: Val) -> Step<()> {
        let o = self.node(val)?;
        self.stack.push(o);
        Ok(())
    }

    fn pop(&mut self) -> Step<Obj> {
        let floor = self.marks.last().copied().unwrap_or(0);
        if self.stack.len() <= floor {
            return self.err("stack underflow");
        }
        self.stack.pop().map_or_else(|| self.err("stack underflow"), Ok)
    }

    fn pop_mark(&mut self) -> Step<Vec<Obj>> {
        let Some(at) = self.marks.pop() else { return self.err("no MARK to pop to") };
        let items = self.stack.split_off(at);
        self.charge(items.len())?;
        Ok(items)
    }

    /// The container on top of the stack, cloned first when the memo shares it.
    fn top_container(&mut self) -> Step<&mut Node> {
        let floor = self.marks.last().copied().unwrap_or(0);
        if self.stack.len() <= floor {
            return self.err("stack underflow");
        }
        let cost = match self.stack.last().map(|o| &o.val) {
            Some(Val::List(v)) => v.len(),
            Some(Val::Dict(v)) => v.len(),
            _ => return self.err("APPEND/SETITEM target is not a list or dict"),
        };
        if self.stack.last().is_some_and(|o| Rc::strong_count(o) > 1) {
            // Copy on write: the copy's elements count as work and as new objects.
            self.charge(cost)?;
            self.objects += cost;
            if self.objects > self.limits.max_objects {
                return self.err(format!("more than {} objects", self.limits.max_objects));
            }
        }
        let at = self.op_at;
        self.stack
            .last_mut()
            .map(Rc::make_mut)
            .ok_or(GuardError::Other(at, "stack underflow".into()))
    }

    fn extend(&mut self, items: Vec<Obj>, pairs: bool) -> Step<()> {
        let depth = items.iter().map(|o| o.depth).max().unwrap_or(0) + 1;
        if depth > self.limits.max_depth {
            return self.err(format!("nesting deeper than {}", self.limits.max_depth));
        }
        if pairs && !items.len().is_multiple_of(2) {
            return self.err("SETITEMS with an odd number of items");
        }
        let op_at = self.op_at;
        let top = self.top_container()?;
        top.depth = top.depth.max(depth);
        match (&mut top.val, pairs) {
            (Val::List(v), false) => v.extend(items),
            (Val::Dict(v), true) => {
                let mut it = items.into_iter();
                while let (Some(k), Some(x)) = (it.next(), it.next()) {
                    v.push((k, x));
                }
            }
            _ => {
                return Err(GuardError::Other(
                    op_at,
                    "APPEND to a dict or SETITEM on a list".into(),
                ))
            }
        }
        Ok(())
    }

    fn global(&mut self) -> Step<()> {
        let module = self.line()?;
        let name = self.line()?;
        match ALLOWED_GLOBALS.iter().find(|(m, c)| *m == module && *c == name) {
            Some((m, c)) => self.push(Val::Class(m, c)),
            None => Err(GuardError::Refused(
                module.escape_debug().to_string(),
                name.escape_debug().to_string(),
            )),
        }
    }

    fn int_tuple(&self, o: &Obj, what: &str) -> Step<Vec<usize>> {
        let Val::Tuple(items) = &o.val else { return self.err(format!("{what} is not a tuple")) };
        items
            .iter()
            .map(|x| match x.val {
                Val::Int(i) => usize::try_from(i)
                    .or_else(|_| self.err(format!("{what} has a negative entry {i}"))),
                _ => self.err(format!("{what} has a non-integer entry")),
            })
            .collect()
    }

    /// `BINPERSID` of `('storage', torch.XStorage, key, location, numel)`.
    fn persistent_load(&mut self) -> Step<()> {
        let id = self.pop()?;
        let Val::Tuple(t) = &id.val else { return self.err("persistent id is not a tuple") };
        let [tag, class, key, _location, numel] = t.as_slice() else {
            return self.err(format!("persistent id has {} fields, expected 5", t.len()));
        };
        let (Val::Str(tag), Val::Class("torch", class), Val::Str(key), Val::Int(numel)) =
            (&tag.val, &class.val, &key.val, &numel.val)
        else {
            return self
                .err("persistent id is not ('storage', torch.XStorage, key, location, numel)");
        };
        let dtype = match *class {
            "FloatStorage" => DType::F32,
            "HalfStorage" => DType::F16,
            "BFloat16Storage" => DType::BF16,
            "DoubleStorage" => DType::F64,
            "LongStorage" => DType::I64,
            "ByteStorage" => DType::U8,
            other => {
                return self.err(format!("persistent id names `{other}`, not a storage class"))
            }
        };
        if tag != "storage"
            || key.is_empty()
            || !key.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
        {
            return self.err(format!(
                "persistent id ({tag:?}, .., {key:?}, ..) is not a storage reference"
            ));
        }
        let numel = usize::try_from(*numel)
            .or_else(|_| self.err(format!("storage size {numel} is negative")))?;
        self.push(Val::Storage(Arc::new(Storage { dtype, key: key.clone(), numel })))
    }

    /// `REDUCE`: only the allowed callables, each with the arguments it takes.
    fn reduce(&mut self) -> Step<()> {
        let args = self.pop()?;
        let callable = self.pop()?;
        let Val::Class(module, name) = callable.val else {
            return self.err("REDUCE of a non-callable");
        };
        let Val::Tuple(a) = &args.val else {
            return self.err(format!("{module}.{name}: arguments are not a tuple"));
        };
        let val = match (name, a.as_slice()) {
            ("OrderedDict", []) => Val::Dict(Vec::new()),
            (
                "_rebuild_tensor_v2",
                [storage, offset, size, stride, requires_grad, hooks, rest @ ..],
            ) if rest.len() <= 1 => {
                let (Val::Storage(s), Val::Int(offset), Val::Bool(_), Val::Dict(_)) =
                    (&storage.val, &offset.val, &requires_grad.val, &hooks.val)
                else {
                    return self.err("_rebuild_tensor_v2: expected (storage, int, tuple, tuple, bool, OrderedDict)");
                };
                let offset = usize::try_from(*offset)
                    .or_else(|_| self.err("_rebuild_tensor_v2: negative offset"))?;
                let shape = self.int_tuple(size, "_rebuild_tensor_v2 size")?;
                let stride = self.int_tuple(stride, "_rebuild_tensor_v2 stride")?;
                if shape.len() != stride.len() {
                    return self.err(format!(
                        "_rebuild_tensor_v2: size {shape:?} and stride {stride:?} differ in rank"
                    ));
                }
                let t = TensorRef { storage: s.clone(), offset, shape, stride };
                check_extent(&t).or_else(|m| self.err(format!("_rebuild_tensor_v2: {m}")))?;
                Val::Tensor(Box::new(t))
            }
            ("_rebuild_parameter", [tensor, requires_grad, hooks]) => {
                match (&tensor.val, &requires_grad.val, &hooks.val) {
                    (Val::Tensor(t), Val::Bool(_), Val::Dict(_)) => Val::Tensor(t.clone()),
                    _ => {
                        return self.err("_rebuild_parameter: expected (tensor, bool, OrderedDict)")
                    }
                }
            }
            _ => {
                return self.err(format!(
                    "{module}.{name} called with {} arguments of unexpected types",
                    a.len()
                ))
            }
        };
        self.push(val)
    }

    /// Runs the program to `STOP` and returns the top object.
    fn run(&mut self) -> Step<Obj> {
        loop {
            self.op_at = self.pos;
            let op = self.u8()?;
            self.charge(1)?;
            match op {
                0x80 => {
                    let v = self.u8()?;
                    if v > 5 {
                        return self.err(format!("unknown pickle protocol {v}"));
                    }
                }
                b'.' => {
                    if self.stack.len() != 1 || !self.marks.is_empty() {
                        return self.err(format!(
                            "STOP with {} objects and {} marks on the stack",
                            self.stack.len(),
                            self.marks.len()
                        ));
                    }
                    return self.pop();
                }
                b'c' => self.global()?,
                b'(' => self.marks.push(self.stack.len()),
                b'0' => {
                    self.pop()?;
                }
                b'N' => self.push(Val::None)?,
                0x88 => self.push(Val::Bool(true))?,
                0x89 => self.push(Val::Bool(false))?,
                b'K' => {
                    let v = self.u8()?;
                    self.push(Val::Int(v as i64))?
                }
                b'M' => {
                    let b = self.take(2)?;
                    self.push(Val::Int(u16::from_le_bytes([b[0], b[1]]) as i64))?
                }
                b'J' => {
                    let v = self.u32()? as i32;
                    self.push(Val::Int(v as i64))?
                }
                0x8a => {
                    let n = self.u8()? as usize;
                    if n > 8 {
                        return self.err(format!("LONG1 of {n} bytes does not fit 64 bits"));
                    }
                    let b = self.take(n)?;
                    let mut buf =
                        if b.last().is_some_and(|&x| x & 0x80 != 0) { [0xff; 8] } else { [0; 8] };
                    buf[..n].copy_from_slice(b);
                    self.push(Val::Int(i64::from_le_bytes(buf)))?
                }
                b'G' => {
                    let b = self.take(8)?;
                    let mut a = [0u8; 8];
                    a.copy_from_slice(b);
                    self.push(Val::Float(f64::from_be_bytes(a)))?
                }
                b'X' => {
                    let n = self.u32()? as usize;
                    let b = self.take(n)?;
                    let s =
                        std::str::from_utf8(b).or_else(|_| self.err("BINUNICODE is not UTF-8"))?;
                    self.push(Val::Str(s.to_owned()))?
                }
                b')' => self.push(Val::Tuple(Vec::new()))?,
                b']' => self.push(Val::List(Vec::new()))?,
                b'}' => self.push(Val::Dict(Vec::new()))?,
                b't' => {
                    let items = self.pop_mark()?;
                    self.push(Val::Tuple(items))?
                }
                0x85..=0x87 => {
                    let n = (op - 0x84) as usize;
                    let mut items = Vec::with_capacity(n);
                    for _ in 0..n {
                        items.push(self.pop()?);
                    }
                    items.reverse();
                    self.push(Val::Tuple(items))?
                }
                b'a' => {
                    let v = self.pop()?;
                    self.extend(vec![v], false)?
                }
                b'e' => {
                    let items = self.pop_mark()?;
                    self.extend(items, false)?
                }
                b's' => {
                    let v = self.pop()?;
                    let k = self.pop()?;
                    self.extend(vec![k, v], true)?
                }
                b'u' => {
                    let items = self.pop_mark()?;
                    self.extend(items, true)?
                }
                b'd' => {
                    let items = self.pop_mark()?;
                    if items.len() % 2 != 0 {
                        return self.err("DICT with an odd number of items");
                    }
                    let mut it = items.into_iter();
                    let mut pairs = Vec::new();
                    while let (Some(k), Some(v)) = (it.next(), it.next()) {
                        pairs.push((k, v));
                    }
                    self.push(Val::Dict(pairs))?
                }
                b'q' | b'r' => {
                    let id = if op == b'q' { self.u8()? as u32 } else { self.u32()? };
                    let top = match self.stack.last() {
                        Some(o) => o.clone(),
                        None => return self.err("PUT with an empty stack"),
                    };
                    if self.memo.len() >= self.limits.max_memo && !self.memo.contains_key(&id) {
                        return self
                            .err(format!("memo grows beyond {} entries", self.limits.max_memo));
                    }
                    self.memo.insert(id, top);
                }
                b'h' | b'j' => {
                    let id = if op == b'h' { self.u8()? as u32 } else { self.u32()? };
                    match self.memo.get(&id) {
                        Some(o) => {
                            let o = o.clone();
                            self.stack.push(o)
                        }
                        None => {
                            return self
                                .err(format!("GET of memo entry {id}, which was never stored"))
                        }
                    }
                }
                b'Q' => self.persistent_load()?,
                b'R' => self.reduce()?,
                b'b' => {
                    // OrderedDict state (e.g. `_metadata`): attributes, not entries; dropped.
                    let state = self.pop()?;
                    let obj = self.pop()?;
                    match (&obj.val, &state.val) {
                        (Val::Dict(_), Val::Dict(_)) => self.stack.push(obj),
                        _ => return self.err("BUILD on anything but a dict"),
                    }
                }
                other => return self.err(format!("unsupported opcode 0x{other:02x}")),
            }
        }
    }
}

/// A strided view that reaches outside its storage.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
struct ExtentError(String);

/// The last element a strided view touches must lie inside its storage.
fn check_extent(t: &TensorRef) -> Result<(), ExtentError> {
    let mut numel: usize = 1;
    let mut last = t.offset;
    for (&d, &s) in t.shape.iter().zip(&t.stride) {
        numel =
            numel.checked_mul(d).ok_or_else(|| ExtentError("element count overflows".into()))?;
        if d > 0 {
            last = (d - 1)
                .checked_mul(s)
                .and_then(|x| x.checked_add(last))
                .ok_or_else(|| ExtentError("extent overflows".into()))?;
        }
    }
    if numel > t.storage.numel {
        return Err(ExtentError(format!(
            "size {:?} has {numel} elements, more than its storage's {} (expanded views are not supported)",
            t.shape, t.storage.numel
        )));
    }
    if numel > 0 && last >= t.storage.numel {
        return Err(ExtentError(format!(
            "size {:?} stride {:?} offset {} reaches element {last}, the storage holds {}",
            t.shape, t.stride, t.offset, t.storage.numel
        )));
    }
    Ok(())
}

/// Runs one pickle program under `limits`; returns its result's tensors by dict key.
pub fn read_state_dict(
    bytes: &[u8],
    limits: Limits,
) -> Result<Vec<(String, TensorRef)>, GuardError> {
    let mut m = Machine {
        bytes,
        pos: 0,
        op_at: 0,
        limits,
        stack: Vec::new(),
        marks: Vec::new(),
        memo: HashMap::new(),
        objects: 0,
        work: 0,
    };
    let top = m.run()?;
    // A plain state dict, or one under a wrapper key (DDP / training checkpoints).
    let tensors = |o: &Obj| -> Vec<(String, TensorRef)> {
        let Val::Dict(pairs) = &o.val else { return Vec::new() };
        pairs
            .iter()
            .filter_map(|(k, v)| match (&k.val, &v.val) {
                (Val::Str(k), Val::Tensor(t)) => Some((k.clone(), (**t).clone())),
                _ => None,
            })
            .collect()
    };
    let direct = tensors(&top);
    if !direct.is_empty() {
        return Ok(direct);
    }
    if let Val::Dict(pairs) = &top.val {
        for wrapper in ["module", "state_dict", "model"] {
            if let Some((_, v)) =
                pairs.iter().find(|(k, _)| matches!(&k.val, Val::Str(s) if s == wrapper))
            {
                let inner = tensors(v);
                if !inner.is_empty() {
                    return Ok(inner);
                }
            }
        }
    }
    Ok(Vec::new())
}

/// Compatibility entry point: runs the program and reports only whether it is acceptable.
pub fn check_pickle_bytes(bytes: &[u8]) -> Result<(), GuardError> {
    read_state_dict(bytes, Limits::DEFAULT).map(|_| ())
}

/// The tensors of a PyTorch zip checkpoint, with every storage checked against the archive.
pub struct PthFile {
    path: std::path::PathBuf,
    origin: String,
    tensors: HashMap<String, (String, TensorRef)>,
}

impl PthFile {
    pub fn open(path: &Path, limits: Limits) -> Result<Self, PickleError> {
        let origin = path.display().to_string();
        let not_zip = |e: String| PickleError::NotZip(origin.clone(), e);
        let file = std::fs::File::open(path).map_err(|e| not_zip(e.to_string()))?;
        let mut zip = zip::ZipArchive::new(std::io::BufReader::new(file))
            .map_err(|e| not_zip(e.to_string()))?;
        let names: Vec<String> =
            zip.file_names().filter_map(|s| s.ok().map(|s| s.into_owned())).collect();
        let Some(pkl) = names.iter().find(|n| n.ends_with("data.pkl")).cloned() else {
            return Err(PickleError::NoPickle(origin));
        };
        let program = |m: String| PickleError::Program(origin.clone(), pkl.clone(), m);
        let mut bytes = Vec::new();
        {
            let member = zip.by_name(&pkl).map_err(|e| program(e.to_string()))?;
            member
                .take(limits.max_pickle_bytes + 1)
                .read_to_end(&mut bytes)
                .map_err(|e| program(e.to_string()))?;
        }
        if bytes.len() as u64 > limits.max_pickle_bytes {
            return Err(program(format!("larger than {} bytes", limits.max_pickle_bytes)));
        }
        let found = read_state_dict(&bytes, limits).map_err(|e| match e {
            GuardError::Refused(m, c) => PickleError::Refused(origin.clone(), pkl.clone(), m, c),
            GuardError::Other(at, m) => program(format!("opcode at byte {at}: {m}")),
        })?;
        let dir = pkl.strip_suffix(".pkl").unwrap_or(&pkl).to_owned();
        let mut tensors = HashMap::new();
        for (name, t) in found {
            let shown = name.escape_debug().to_string();
            let member = format!("{dir}/{}", t.storage.key);
            let stored = zip.by_name(&member).map(|f| f.size()).map_err(|_| {
                PickleError::Tensor(
                    origin.clone(),
                    shown.clone(),
                    format!("storage `{member}` is missing"),
                )
            })?;
            let need = (t.storage.numel as u64).checked_mul(t.storage.dtype.size_in_bytes() as u64);
            if need != Some(stored) {
                return Err(PickleError::Tensor(
                    origin.clone(),
                    shown,
                    format!(
                        "storage `{member}` of {} {:?} elements needs {} bytes, the archive stores {stored}",
                        t.storage.numel,
                        t.storage.dtype,
                        need.map_or("more than 2^64".to_owned(), |n| n.to_string())
                    ),
                ));
            }
            tensors.insert(name, (member, t));
        }
        Ok(PthFile { path: path.to_owned(), origin, tensors })
    }

    /// Tensor names with their dtype and shape.
    pub fn infos(&self) -> impl Iterator<Item = (&String, DType, &[usize])> {
        self.tensors.iter().map(|(k, (_, t))| (k, t.storage.dtype, t.shape.as_slice()))
    }

    /// Dtype and shape of one tensor.
    pub fn info(&self, name: &str) -> Option<(DType, &[usize])> {
        self.tensors.get(name).map(|(_, t)| (t.storage.dtype, t.shape.as_slice()))
    }

    pub fn is_empty(&self) -> bool {
        self.tensors.is_empty()
    }

    /// Reads one tensor (its storage, then the strided view), on the CPU.
    pub fn get(&self, name: &str) -> candle_core::Result<Tensor> {
        let Some((member, t)) = self.tensors.get(name) else {
            candle_core::bail!("{}: no tensor `{name}`", self.origin)
        };
        let file = std::fs::File::open(&self.path)?;
        let mut zip = zip::ZipArchive::new(std::io::BufReader::new(file))
            .map_err(candle_core::Error::wrap)?;
        let f = zip.by_name(member).map_err(candle_core::Error::wrap)?;
        let esize = t.storage.dtype.size_in_bytes();
        let want = t.storage.numel * esize;
        let mut raw = Vec::with_capacity(want);
        f.take(want as u64).read_to_end(&mut raw)?;
        if raw.len() != want {
            candle_core::bail!(
                "{}: `{member}` holds {} bytes, expected {want}",
                self.origin,
                raw.len()
            );
        }
        let numel: usize = t.shape.iter().product();
        let contiguous = {
            let mut expect = 1;
            t.shape.iter().zip(&t.stride).rev().all(|(&d, &s)| {
                let ok = d <= 1 || s == expect;
                expect *= d;
                ok
            })
        };
        let bytes = if contiguous {
            raw[t.offset * esize..(t.offset + numel) * esize].to_vec()
        } else {
            let mut out = Vec::with_capacity(numel * esize);
            let mut idx = vec![0usize; t.shape.len()];
            for _ in 0..numel {
                let e = t.offset + idx.iter().zip(&t.stride).map(|(i, s)| i * s).sum::<usize>();
                out.extend_from_slice(&raw[e * esize..(e + 1) * esize]);
                for d in (0..idx.len()).rev() {
                    idx[d] += 1;
                    if idx[d] < t.shape[d] {
                        break;
                    }
                    idx[d] = 0;
                }
            }
            out
        };
        Tensor::from_raw_buffer(&bytes, t.storage.dtype, &t.shape, &Device::Cpu)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `{"x": os.system("echo hi")}` as protocol 2 pickle.
    fn evil() -> Vec<u8> {
        let mut p = vec![0x80, 2, b'}', b'X'];
        p.extend_from_slice(&1u32.to_le_bytes());
        p.push(b'x');
        p.extend_from_slice(b"cposix\nsystem\n");
        p.push(b'X');
        p.extend_from_slice(&7u32.to_le_bytes());
        p.extend_from_slice(b"echo hi");
        p.extend_from_slice(&[0x85, b'R', b's', b'.']);
        p
    }

    fn other(bytes: &[u8]) -> String {
        match read_state_dict(bytes, Limits::DEFAULT) {
            Err(GuardError::Other(_, m)) => m,
            r => panic!("expected an error, got {r:?}"),
        }
    }

    #[test]
    fn refuses_foreign_global() {
        match check_pickle_bytes(&evil()) {
            Err(GuardError::Refused(m, c)) => {
                assert_eq!((m.as_str(), c.as_str()), ("posix", "system"))
            }
            other => panic!("expected refusal, got {other:?}"),
        }
    }

    #[test]
    fn accepts_plain_dict_and_fixtures() {
        assert!(check_pickle_bytes(&[0x80, 2, b'}', b'.']).is_ok());
        let fx = concat!(env!("CARGO_MANIFEST_DIR"), "/../../shared/fixtures/emu-tiny/");
        let m = PthFile::open(&Path::new(fx).join("model.pt"), Limits::DEFAULT).unwrap();
        assert_eq!(m.infos().count(), 105);
        let p = PthFile::open(&Path::new(fx).join("dtype_probe.pt"), Limits::DEFAULT).unwrap();
        assert_eq!(p.infos().count(), 9);
    }

    #[test]
    fn bounds_hold() {
        // Depth: 100 nested one-tuples.
        let mut p = vec![0x80, 2, b'N'];
        p.extend(std::iter::repeat_n(0x85, 100));
        p.push(b'.');
        assert!(other(&p).contains("nesting deeper than 64"));
        // Memo doubling: x = (x, x) seventy times stays linear in objects, and hits the depth bound.
        let mut p = vec![0x80, 2, b']', b'q', 0];
        for _ in 0..70 {
            p.extend_from_slice(&[b'(', b'h', 0, b'h', 0, b't', b'q', 0]);
        }
        p.push(b'.');
        assert!(other(&p).contains("nesting deeper"));
        // Memo growth: distinct LONG_BINPUT ids beyond the memo bound.
        let mut p = vec![0x80, 2, b'N'];
        for i in 0..20u32 {
            p.push(b'r');
            p.extend_from_slice(&i.to_le_bytes());
        }
        let small = Limits { max_memo: 10, ..Limits::DEFAULT };
        assert!(
            matches!(read_state_dict(&p, small), Err(GuardError::Other(_, m)) if m.contains("memo grows beyond 10"))
        );
        // Work: a long run of MARKs and empty tuples under a small work bound.
        let p: Vec<u8> = [0x80, 2].into_iter().chain(std::iter::repeat_n(b')', 1000)).collect();
        let small = Limits { max_work: 100, ..Limits::DEFAULT };
        assert!(
            matches!(read_state_dict(&p, small), Err(GuardError::Other(_, m)) if m.contains("steps of work"))
        );
        // Arity: _rebuild_tensor_v2 with one argument.
        let mut p = vec![0x80, 2];
        p.extend_from_slice(b"ctorch._utils\n_rebuild_tensor_v2\n");
        p.extend_from_slice(&[b'N', 0x85, b'R', b'.']);
        assert!(other(&p).contains("_rebuild_tensor_v2 called with 1 arguments"));
        // A string longer than the program.
        let mut p = vec![0x80, 2, b'X'];
        p.extend_from_slice(&u32::MAX.to_le_bytes());
        assert!(other(&p).contains("more bytes"));
    }
}
