//! E-mail providers.

mod sendgrid;
mod ses;

pub use sendgrid::SendGrid;
pub use ses::Ses;
