//! The sink: Personalize's CSV dialect, parts of bounded size, and atomic publication.

pub mod csv_dialect;
pub mod destination;
pub mod parts;
pub mod publish;
pub mod upload;

pub use destination::Destination;
pub use parts::{PartInfo, PartRoller};
pub use publish::Staging;
