//! What the browser journeys stand on: the portal's release binary started
//! as an operator starts it, ChromeDriver with Debian's headless Chromium,
//! and a `Person` who reads labels, types, ticks, attaches files and presses
//! buttons. After every page a person reaches, `Person::check` fails the
//! test on any JavaScript error or CSP violation in the browser's log, any
//! serious or critical axe-core finding (WCAG 2.0/2.1 A and AA), horizontal
//! scrolling at 320 px, and saves a screenshot.
mod checks;
mod person;
mod servers;

pub use person::{Person, Screen};
pub use servers::{output_dir, Backends, Driver, Portal};
