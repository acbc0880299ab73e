//! The sink: Personalize's CSV dialect, parts of bounded size, and atomic publication.

pub mod csv_dialect;
pub mod parts;
pub mod publish;
pub mod upload;

pub use parts::{PartInfo, PartRoller};
pub use publish::{Destination, Staging};
