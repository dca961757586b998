//! One file per stage kind; each adds the method that runs it to [`crate::executor::Run`].

mod data;
mod evaluate;
pub(crate) mod method;
mod report;
mod zoo;

pub use evaluate::ZooReference;
pub use report::utc;
