//! Host tensor memory accounting, checked **before** libtorch allocates.
//!
//! Every tensor a plugin holds is a node in a graph of charges: a node carries the bytes its
//! own storage takes and keeps its parents alive for as long as libtorch does — the inputs an
//! autograd op saved for backward, or the base storage of a view. A node's bytes are refunded
//! when the last handle that can reach it is dropped, so the budget covers live handles, the
//! autograd graph reachable from them, gradient slots of parameters and optimiser state.
//!
//! An operation asks [`Budget::admit`] with the bytes of its output (computed from shapes with
//! checked arithmetic, see [`crate::shapes`]) plus any transient workspace it needs; only if
//! that fits under the cap does the host call libtorch. The refusal names the operation, the
//! shape and the sizes, the same way for every op.

use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

/// Bytes per element of every plugin tensor (f32).
pub const ELEMENT_BYTES: u64 = 4;

/// The plugin's tensor-memory counter and its cap. Cloning shares the counter.
#[derive(Debug, Clone)]
pub struct Budget {
    held: Arc<AtomicU64>,
    peak: Arc<AtomicU64>,
    cap: u64,
}

/// One charged allocation; refunds its bytes when the last reference goes.
#[derive(Debug)]
pub struct Charge {
    bytes: u64,
    held: Arc<AtomicU64>,
    parents: Vec<Arc<Charge>>,
}

impl Drop for Charge {
    fn drop(&mut self) {
        self.held.fetch_sub(self.bytes, Ordering::Relaxed);
        // Long autograd chains would otherwise drop recursively, one stack frame per node.
        let mut stack = std::mem::take(&mut self.parents);
        while let Some(node) = stack.pop() {
            if let Ok(mut inner) = Arc::try_unwrap(node) {
                stack.append(&mut inner.parents);
            }
        }
    }
}

/// Why an operation was refused.
#[derive(Debug, Clone, thiserror::Error)]
#[error("tensor-memory cap: `{op}` {shape} needs {need}{transient}, holding {held}, cap {cap} (raise `limits.tensor_memory_mib`)")]
pub struct CapExceeded {
    pub op: String,
    pub shape: String,
    pub need: Size,
    pub transient: TransientNote,
    pub held: Size,
    pub cap: Size,
}

/// A byte count printed in binary units ("4 GiB", "64 MiB", "12 KiB"); `u64::MAX` is "more than 16 EiB".
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Size(pub u64);

impl std::fmt::Display for Size {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        const UNITS: [&str; 7] = ["B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"];
        if self.0 == u64::MAX {
            return write!(f, "more than 16 EiB");
        }
        let mut value = self.0 as f64;
        let mut unit = 0;
        while value >= 1024.0 && unit + 1 < UNITS.len() {
            value /= 1024.0;
            unit += 1;
        }
        if unit == 0 || value >= 100.0 || value.fract() == 0.0 { write!(f, "{value:.0} {}", UNITS[unit]) } else { write!(f, "{value:.1} {}", UNITS[unit]) }
    }
}

/// The transient part of a request, printed only when there is one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TransientNote(pub u64);

impl std::fmt::Display for TransientNote {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.0 > 0 { write!(f, " (+{} of working memory)", Size(self.0)) } else { Ok(()) }
    }
}

impl Budget {
    pub fn new(cap: u64) -> Self {
        Self { held: Arc::new(AtomicU64::new(0)), peak: Arc::new(AtomicU64::new(0)), cap }
    }

    /// Bytes held now.
    pub fn held(&self) -> u64 {
        self.held.load(Ordering::Relaxed)
    }

    /// The most bytes held at once so far.
    pub fn peak(&self) -> u64 {
        self.peak.load(Ordering::Relaxed)
    }

    pub fn cap(&self) -> u64 {
        self.cap
    }

    /// Checks that `bytes` more (plus `transient` working memory, released when the op returns)
    /// fit under the cap. `None` means the size overflowed 64 bits: always refused.
    pub fn admit(&self, op: &str, shape: &dyn std::fmt::Debug, bytes: Option<u64>, transient: Option<u64>) -> Result<(), CapExceeded> {
        let held = self.held();
        let (need, extra) = (bytes.unwrap_or(u64::MAX), transient.unwrap_or(u64::MAX));
        match held.checked_add(need).and_then(|v| v.checked_add(extra)) {
            Some(total) if total <= self.cap => Ok(()),
            _ => Err(CapExceeded { op: op.to_string(), shape: format!("{shape:?}"), need: Size(need), transient: TransientNote(extra), held: Size(held), cap: Size(self.cap) }),
        }
    }

    /// Charges `bytes` (already admitted) as a node that keeps `parents` alive.
    pub fn charge(&self, bytes: u64, parents: Vec<Arc<Charge>>) -> Arc<Charge> {
        let held = self.held.fetch_add(bytes, Ordering::Relaxed) + bytes;
        self.peak.fetch_max(held, Ordering::Relaxed);
        Arc::new(Charge { bytes, held: self.held.clone(), parents })
    }
}

impl Charge {
    /// Bytes of every node reachable from `roots` (each counted once): what a backward pass
    /// through this graph may need again for gradients.
    pub fn reachable_bytes(roots: &[&Arc<Charge>]) -> u64 {
        let mut seen: HashSet<*const Charge> = HashSet::new();
        let mut stack: Vec<&Arc<Charge>> = roots.to_vec();
        let mut total = 0u64;
        while let Some(node) = stack.pop() {
            if seen.insert(Arc::as_ptr(node)) {
                total = total.saturating_add(node.bytes);
                stack.extend(node.parents.iter());
            }
        }
        total
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn graph_memory_is_refunded_with_the_last_handle() {
        let budget = Budget::new(1000);
        let leaf = budget.charge(100, vec![]);
        let mid = budget.charge(200, vec![leaf.clone()]);
        let out = budget.charge(300, vec![mid.clone()]);
        drop(mid);
        assert_eq!(budget.held(), 600, "the output keeps its inputs alive");
        assert_eq!(Charge::reachable_bytes(&[&out]), 600);
        drop(out);
        assert_eq!(budget.held(), 100);
        drop(leaf);
        assert_eq!(budget.held(), 0);
    }

    #[test]
    fn refusal_happens_before_charging_and_overflow_is_refused() {
        let budget = Budget::new(64 << 20);
        let e = budget.admit("zeros", &[32768, 32768], Some(32768 * 32768 * 4), Some(0)).unwrap_err();
        assert_eq!(e.to_string(), "tensor-memory cap: `zeros` [32768, 32768] needs 4 GiB, holding 0 B, cap 64 MiB (raise `limits.tensor_memory_mib`)");
        assert!(budget.admit("randn", &[u32::MAX, u32::MAX], None, Some(0)).unwrap_err().to_string().contains("more than 16 EiB"));
        assert_eq!(budget.held(), 0);
        assert!(budget.admit("add", &[4], Some(16), Some(0)).is_ok());
    }

    #[test]
    fn a_long_chain_drops_without_deep_recursion() {
        let budget = Budget::new(u64::MAX);
        let mut node = budget.charge(1, vec![]);
        for _ in 0..200_000 {
            node = budget.charge(1, vec![node]);
        }
        drop(node);
        assert_eq!(budget.held(), 0);
    }
}
