//! Delivering an event to a subscription, from the first attempt to its resolution.
//!
//! - [`attempt`] performs one signed webhook attempt over a client whose connector reaches only
//!   addresses that passed the check of [`resolver`].
//! - [`policy`] is pure: what an answer means, when to retry, what follows.
//! - [`resolve`] is the one place a delivery is resolved (attempt → settle → record → follow-up),
//!   for the first pass over an event and for a retry alike.
//! - [`retry_loop`] takes due retries from the queue and hands each to [`resolve`].

pub mod attempt;
pub mod policy;
pub(crate) mod resolve;
pub mod resolver;
pub(crate) mod retry_loop;

pub use attempt::{Attempt, Deliverer, MAX_ANSWER_BODY, webhook_body};
pub use policy::{RetryPolicy, Verdict};
pub use resolver::{Resolve, SystemResolver};
