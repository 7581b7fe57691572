//! The memory allocator every chirp binary uses: mimalloc instead of the
//! system's.
//!
//! A request through the read path allocates a few hundred small objects
//! (headers, protobuf messages, JSON strings) on one worker thread and often
//! frees them on another. Profiling the gateway and the timeline service
//! under load showed glibc's malloc and free, with their arena locks and
//! consolidation, at about a sixth of all their CPU (docs/BENCHMARKS.md);
//! mimalloc's thread-local free lists do the same work for less. The
//! cost is a C library in the build. Each `main.rs` installs it with one
//! line: `#[global_allocator] static ALLOCATOR: Allocator = Allocator;`.

pub use mimalloc::MiMalloc as Allocator;
