//! Checkpoints: the evolving state of a [`Simulation`] written to and read from a small,
//! explicit little-endian binary format, and the versioned, checksummed container that
//! `checkpoint.bin` files use.
//!
//! This is the one place that knows which fields of the engine evolve; everything derived from
//! the scenario (geometry, parameters, smoothing and solver objects, ρ normalisation) is rebuilt
//! by [`Simulation::new`] and then overwritten with the saved state. A field added to
//! `Simulation` (or to the structures it holds) must be added to [`Simulation::save_state`] and
//! [`Simulation::restore_state`]; the round-trip test in `tests/robustness.rs` fails otherwise.
//!
//! Container layout (all integers little-endian):
//!
//! | bytes | content |
//! | --- | --- |
//! | 13 | magic `FIBROSIM-CKPT` |
//! | 4 | format version ([`FORMAT_VERSION`]) |
//! | 8 + n | crate version (u64 length, UTF-8) |
//! | 8 | scenario hash (FNV-1a 64 of the resolved scenario TOML) |
//! | 8 + n | payload (u64 length, bytes) |
//! | 8 | FNV-1a 64 of every byte before it |

use super::fibroblasts::CellState;
use super::tissue::Layer;
use super::treatment::Channel;
use super::{Arm, Simulation, WorkStats};
use crate::scenario::Scenario;

/// First bytes of every checkpoint file.
pub const MAGIC: &[u8; 13] = b"FIBROSIM-CKPT";
/// Version of the layout; bumped whenever anything written changes.
pub const FORMAT_VERSION: u32 = 4;

/// FNV-1a 64 of `bytes`.
pub fn fnv1a64(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in bytes {
        h ^= b as u64;
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}

/// Appends values in little-endian order.
#[derive(Debug, Default)]
pub struct Writer {
    /// The bytes so far.
    pub buf: Vec<u8>,
}

impl Writer {
    /// One byte.
    pub fn u8(&mut self, v: u8) {
        self.buf.push(v);
    }
    /// A bool as one byte.
    pub fn bool(&mut self, v: bool) {
        self.u8(v as u8);
    }
    /// A u32.
    pub fn u32(&mut self, v: u32) {
        self.buf.extend_from_slice(&v.to_le_bytes());
    }
    /// A u64.
    pub fn u64(&mut self, v: u64) {
        self.buf.extend_from_slice(&v.to_le_bytes());
    }
    /// An f64, bit for bit.
    pub fn f64(&mut self, v: f64) {
        self.u64(v.to_bits());
    }
    /// Length-prefixed bytes.
    pub fn bytes(&mut self, v: &[u8]) {
        self.u64(v.len() as u64);
        self.buf.extend_from_slice(v);
    }
    /// A length-prefixed UTF-8 string.
    pub fn str(&mut self, v: &str) {
        self.bytes(v.as_bytes());
    }
    /// Length-prefixed f32 values, bit for bit.
    pub fn f32s(&mut self, v: &[f32]) {
        self.u64(v.len() as u64);
        self.buf.reserve(v.len() * 4);
        for x in v {
            self.buf.extend_from_slice(&x.to_bits().to_le_bytes());
        }
    }
    /// Length-prefixed f64 values, bit for bit.
    pub fn f64s(&mut self, v: &[f64]) {
        self.u64(v.len() as u64);
        self.buf.reserve(v.len() * 8);
        for x in v {
            self.buf.extend_from_slice(&x.to_bits().to_le_bytes());
        }
    }
    /// Length-prefixed u64 values.
    pub fn u64s(&mut self, v: &[u64]) {
        self.u64(v.len() as u64);
        for x in v {
            self.u64(*x);
        }
    }
}

/// Reads what a [`Writer`] wrote; every read is bounds-checked and a length is checked against
/// the bytes left before anything is allocated.
#[derive(Debug)]
pub struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    /// Reads from the start of `buf`.
    pub fn new(buf: &'a [u8]) -> Self {
        Reader { buf, pos: 0 }
    }
    /// Whether every byte has been read.
    pub fn at_end(&self) -> bool {
        self.pos == self.buf.len()
    }
    fn take(&mut self, n: usize) -> Result<&'a [u8], String> {
        if self.buf.len() - self.pos < n {
            return Err(format!(
                "truncated: {n} bytes needed at offset {}, {} left",
                self.pos,
                self.buf.len() - self.pos
            ));
        }
        let s = &self.buf[self.pos..self.pos + n];
        self.pos += n;
        Ok(s)
    }
    fn len_of(&mut self, elem: usize) -> Result<usize, String> {
        let n = self.u64()?;
        let left = (self.buf.len() - self.pos) as u64;
        if n.saturating_mul(elem as u64) > left {
            return Err(format!(
                "a length of {n} at offset {} is longer than the file",
                self.pos - 8
            ));
        }
        Ok(n as usize)
    }
    /// One byte.
    pub fn u8(&mut self) -> Result<u8, String> {
        Ok(self.take(1)?[0])
    }
    /// A bool (0 or 1).
    pub fn bool(&mut self) -> Result<bool, String> {
        match self.u8()? {
            0 => Ok(false),
            1 => Ok(true),
            b => Err(format!("byte {b} at offset {} is not a bool", self.pos - 1)),
        }
    }
    /// A u32.
    pub fn u32(&mut self) -> Result<u32, String> {
        let b = self.take(4)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }
    /// A u64.
    pub fn u64(&mut self) -> Result<u64, String> {
        let b = self.take(8)?;
        let mut a = [0u8; 8];
        a.copy_from_slice(b);
        Ok(u64::from_le_bytes(a))
    }
    /// An f64.
    pub fn f64(&mut self) -> Result<f64, String> {
        Ok(f64::from_bits(self.u64()?))
    }
    /// Length-prefixed bytes.
    pub fn bytes(&mut self) -> Result<&'a [u8], String> {
        let n = self.len_of(1)?;
        self.take(n)
    }
    /// A length-prefixed UTF-8 string.
    pub fn str(&mut self) -> Result<&'a str, String> {
        let at = self.pos;
        std::str::from_utf8(self.bytes()?).map_err(|_| format!("text at offset {at} is not UTF-8"))
    }
    /// Length-prefixed f32 values.
    pub fn f32s(&mut self) -> Result<Vec<f32>, String> {
        let n = self.len_of(4)?;
        let b = self.take(n * 4)?;
        Ok(b.chunks_exact(4)
            .map(|c| f32::from_bits(u32::from_le_bytes([c[0], c[1], c[2], c[3]])))
            .collect())
    }
    /// Length-prefixed f64 values.
    pub fn f64s(&mut self) -> Result<Vec<f64>, String> {
        let n = self.len_of(8)?;
        let b = self.take(n * 8)?;
        Ok(b.chunks_exact(8)
            .map(|c| {
                let mut a = [0u8; 8];
                a.copy_from_slice(c);
                f64::from_bits(u64::from_le_bytes(a))
            })
            .collect())
    }
    /// Length-prefixed u64 values.
    pub fn u64s(&mut self) -> Result<Vec<u64>, String> {
        let n = self.len_of(8)?;
        (0..n).map(|_| self.u64()).collect()
    }
}

/// Wraps a payload in the checkpoint container.
pub fn encode_file(scenario_hash: u64, payload: &[u8]) -> Vec<u8> {
    let mut w = Writer::default();
    w.buf.extend_from_slice(MAGIC);
    w.u32(FORMAT_VERSION);
    w.str(env!("CARGO_PKG_VERSION"));
    w.u64(scenario_hash);
    w.bytes(payload);
    let sum = fnv1a64(&w.buf);
    w.u64(sum);
    w.buf
}

/// Checks a checkpoint container and returns (scenario hash, payload); the message says what
/// is wrong (the caller names the file).
pub fn decode_file(bytes: &[u8]) -> Result<(u64, &[u8]), String> {
    if bytes.len() < MAGIC.len() || &bytes[..MAGIC.len()] != MAGIC {
        return Err("not a fibrosim checkpoint (no FIBROSIM-CKPT header)".into());
    }
    if bytes.len() < MAGIC.len() + 4 + 8 {
        return Err("truncated: the file ends inside its header".into());
    }
    let (body, tail) = bytes.split_at(bytes.len() - 8);
    let mut r = Reader::new(&bytes[MAGIC.len()..]);
    let version = r.u32()?;
    if version != FORMAT_VERSION {
        return Err(format!(
            "checkpoint format version {version}; this fibrosim reads version {FORMAT_VERSION} \
             only (rerun the scenario)"
        ));
    }
    let mut sum = [0u8; 8];
    sum.copy_from_slice(tail);
    if u64::from_le_bytes(sum) != fnv1a64(body) {
        return Err(
            "checksum mismatch: the file is truncated or corrupt (rerun from an earlier \
             checkpoint or from the start)"
                .into(),
        );
    }
    let mut r = Reader::new(&body[MAGIC.len() + 4..]);
    let crate_version = r.str()?;
    if crate_version != env!("CARGO_PKG_VERSION") {
        return Err(format!(
            "written by fibrosim {crate_version}; this is fibrosim {} (results would differ; \
             rerun the scenario)",
            env!("CARGO_PKG_VERSION")
        ));
    }
    let hash = r.u64()?;
    let payload = r.bytes()?;
    if !r.at_end() {
        return Err("trailing bytes after the payload".into());
    }
    Ok((hash, payload))
}

fn flat3(v: &[[f64; 3]]) -> Vec<f64> {
    v.iter().flatten().copied().collect()
}

fn unflat3(v: Vec<f64>, what: &str) -> Result<Vec<[f64; 3]>, String> {
    if v.len() % 3 != 0 {
        return Err(format!("{what}: {} values, not a multiple of 3", v.len()));
    }
    Ok(v.chunks_exact(3).map(|c| [c[0], c[1], c[2]]).collect())
}

fn expect_len<T>(v: Vec<T>, n: usize, what: &str) -> Result<Vec<T>, String> {
    if v.len() != n {
        return Err(format!(
            "{what}: {} values, the scenario's grid has {n}",
            v.len()
        ));
    }
    Ok(v)
}

fn write_work(w: &mut Writer, s: &WorkStats, timings: bool) {
    w.u64(s.active_steps);
    w.u64(s.quiet_steps);
    w.u64(s.settled_steps);
    w.u64(s.agent_steps);
    w.u64(s.voxel_field_updates);
    if timings {
        for t in s.phase_seconds {
            w.f64(t);
        }
    }
}

/// Writes work counters (used for the recorder too).
pub fn write_work_stats(w: &mut Writer, s: &WorkStats) {
    write_work(w, s, true);
}

/// Reads work counters written by [`write_work_stats`].
pub fn read_work_stats(r: &mut Reader) -> Result<WorkStats, String> {
    let mut s = WorkStats {
        active_steps: r.u64()?,
        quiet_steps: r.u64()?,
        settled_steps: r.u64()?,
        agent_steps: r.u64()?,
        voxel_field_updates: r.u64()?,
        phase_seconds: [0.0; crate::sim::PHASE_NAMES.len()],
    };
    for t in &mut s.phase_seconds {
        *t = r.f64()?;
    }
    Ok(s)
}

fn layer_of(b: u8) -> Result<Layer, String> {
    match b {
        0 => Ok(Layer::Epidermis),
        1 => Ok(Layer::Papillary),
        2 => Ok(Layer::Reticular),
        _ => Err(format!("layer code {b} is not a layer")),
    }
}

fn state_of(b: u8) -> Result<CellState, String> {
    match b {
        0 => Ok(CellState::Quiescent),
        1 => Ok(CellState::Activated),
        2 => Ok(CellState::Myofibroblast),
        _ => Err(format!("cell state code {b} is not a state")),
    }
}

impl Simulation {
    /// Appends everything of this simulation that evolves (not what [`Simulation::new`] rebuilds
    /// from the scenario) to `w`.
    pub fn save_state(&self, w: &mut Writer) {
        self.write_state(w, true);
    }

    /// The evolving state as bytes, without wall-clock timings: two simulations in the same
    /// state give equal bytes (for tests of determinism and of checkpoints).
    pub fn state_bytes(&self) -> Vec<u8> {
        let mut w = Writer::default();
        self.write_state(&mut w, false);
        w.buf
    }

    fn write_state(&self, w: &mut Writer, timings: bool) {
        w.u8(match self.arm {
            Arm::Treated => 0,
            Arm::Control => 1,
        });
        w.u64(self.tick);
        w.f64(self.last_dt);
        w.bool(self.last_quiet);
        w.u64(self.next_session as u64);
        write_work(w, &self.work, timings);
        let f = &self.fields;
        for v in [&f.n, &f.w, &f.plt, &f.m, &f.p, &f.t, &f.c] {
            w.f32s(v);
        }
        w.bool(f.slow_live);
        for l in f.fast_live {
            w.bool(l);
        }
        let m = &self.matrix;
        for v in [
            &m.col1, &m.col3, &m.el, &m.n1, &m.n3, &m.ne, &m.fibrin, &m.total,
        ] {
            w.f64s(v);
        }
        // Deposits not yet added to the grid are written as added: the same sums, in order.
        w.f64s(&flat3(&self.deposits_with_pending()));
        let c = &self.cells;
        w.u64s(&c.id);
        w.f64s(&flat3(&c.pos));
        w.f64s(&flat3(&c.dir));
        w.bytes(&c.state.iter().map(|s| *s as u8).collect::<Vec<_>>());
        w.f64s(&c.tau);
        w.f64s(&c.tau_q);
        w.bytes(&c.home.iter().map(|l| *l as u8).collect::<Vec<_>>());
        w.u64(c.next_id);
        w.f64s(&self.epidermis);
        w.u64(self.channels.len() as u64);
        for ch in &self.channels {
            w.u32(ch.session);
            w.f64(ch.t_h);
            w.f64(ch.x);
            w.f64(ch.y);
            for t in ch.tip {
                w.f64(t);
            }
            w.f64(ch.r0);
            w.bool(ch.bleeding);
        }
        w.f64s(&self.session_density);
        w.u64s(&self.session_ticks);
        w.f32s(&self.rho_num);
        w.f32s(&self.c_int);
        w.bool(self.c_int_live);
        w.f64(self.pending_h);
        w.f32s(&self.rho_int);
        w.f64(self.matrix_pending_h);
        w.u64(self.slow_ticks);
        w.bool(self.density_stale);
        w.bool(self.pending_quiet);
        w.f64s(&self.deposit_ug);
        w.f64(self.deposit_h);
        w.f64s(&self.inflammation_peak);
        w.bool(self.fibrin_high);
    }

    /// Rebuilds a simulation of `scenario` and overwrites its evolving state with what
    /// [`Simulation::save_state`] wrote; refuses state that does not fit the scenario.
    pub fn restore_state(scenario: &Scenario, r: &mut Reader) -> Result<Simulation, String> {
        let arm = match r.u8()? {
            0 => Arm::Treated,
            1 => Arm::Control,
            b => return Err(format!("arm code {b} is not an arm")),
        };
        let mut s = Simulation::new(scenario, arm);
        let n = s.geom.voxels();
        s.tick = r.u64()?;
        s.last_dt = r.f64()?;
        s.last_quiet = r.bool()?;
        s.next_session = r.u64()? as usize;
        s.work = read_work_stats(r)?;
        // P, T and C live on the signal grid.
        let ns = s.fields.sg.voxels();
        let mut fields = Vec::with_capacity(7);
        for (name, len) in [
            ("n", n),
            ("w", n),
            ("plt", n),
            ("m", n),
            ("p", ns),
            ("t", ns),
            ("c", ns),
        ] {
            fields.push(expect_len(r.f32s()?, len, name)?);
        }
        s.fields.slow_live = r.bool()?;
        for k in 0..3 {
            s.fields.fast_live[k] = r.bool()?;
        }
        let mut it = fields.into_iter();
        let f = &mut s.fields;
        for dst in [
            &mut f.n, &mut f.w, &mut f.plt, &mut f.m, &mut f.p, &mut f.t, &mut f.c,
        ] {
            *dst = it.next().unwrap_or_default();
        }
        // B and M on a coarser signal grid, as the last slow update left them.
        f.restrict_sources();
        let m = &mut s.matrix;
        for (dst, name) in [
            (&mut m.col1, "col1"),
            (&mut m.col3, "col3"),
            (&mut m.el, "elastin"),
            (&mut m.n1, "neo col1"),
            (&mut m.n3, "neo col3"),
            (&mut m.ne, "neo elastin"),
            (&mut m.fibrin, "fibrin"),
            (&mut m.total, "collagen"),
        ] {
            *dst = expect_len(r.f64s()?, n, name)?;
        }
        m.dep = expect_len(unflat3(r.f64s()?, "deposits")?, n, "deposits")?;
        m.dep_live = m.dep.iter().any(|d| d.iter().any(|&x| x != 0.0));
        m.neo_live = m.dep_live
            || [&m.n1, &m.n3, &m.ne, &m.fibrin]
                .iter()
                .any(|v| v.iter().any(|&x| x != 0.0));
        let c = &mut s.cells;
        c.id = r.u64s()?;
        let k = c.id.len();
        c.pos = expect_len(unflat3(r.f64s()?, "positions")?, k, "cell positions")?;
        c.dir = expect_len(unflat3(r.f64s()?, "directions")?, k, "cell directions")?;
        c.state = r
            .bytes()?
            .iter()
            .map(|b| state_of(*b))
            .collect::<Result<_, _>>()?;
        c.state = expect_len(std::mem::take(&mut c.state), k, "cell states")?;
        c.tau = expect_len(r.f64s()?, k, "cell τ")?;
        c.tau_q = expect_len(r.f64s()?, k, "cell τ_q")?;
        c.home = r
            .bytes()?
            .iter()
            .map(|b| layer_of(*b))
            .collect::<Result<_, _>>()?;
        c.home = expect_len(std::mem::take(&mut c.home), k, "cell home layers")?;
        c.next_id = r.u64()?;
        s.epidermis = expect_len(r.f64s()?, s.geom.plane(), "epidermis")?;
        let nch = r.u64()?;
        if nch > (r.buf.len() - r.pos) as u64 / 61 {
            return Err(format!("{nch} channels is longer than the file"));
        }
        s.channels = (0..nch)
            .map(|_| {
                Ok(Channel {
                    session: r.u32()?,
                    t_h: r.f64()?,
                    x: r.f64()?,
                    y: r.f64()?,
                    tip: [r.f64()?, r.f64()?, r.f64()?],
                    r0: r.f64()?,
                    bleeding: r.bool()?,
                })
            })
            .collect::<Result<_, String>>()?;
        s.session_density = r.f64s()?;
        let ticks = r.u64s()?;
        if ticks != s.session_ticks {
            return Err("the session schedule differs from the scenario's".into());
        }
        s.rho_num = expect_len(r.f32s()?, n, "ρ")?;
        s.c_int = expect_len(r.f32s()?, s.fields.sg.voxels(), "∫C dt")?;
        s.c_int_live = r.bool()?;
        s.pending_h = r.f64()?;
        s.rho_int = expect_len(r.f32s()?, n, "∫ρ dt")?;
        s.matrix_pending_h = r.f64()?;
        s.slow_ticks = r.u64()?;
        s.density_stale = r.bool()?;
        s.pending_quiet = r.bool()?;
        let dep = expect_len(r.f64s()?, 2, "deposits since the last sample")?;
        s.deposit_ug = [dep[0], dep[1]];
        s.deposit_h = r.f64()?;
        let pk = expect_len(r.f64s()?, 3, "inflammation peaks")?;
        s.inflammation_peak = [pk[0], pk[1], pk[2]];
        s.fibrin_high = r.bool()?;
        Ok(s)
    }
}
