//! taurus-audit checks, for every Huawei Cloud TaurusDB instance in a set of
//! CSV inventories, whether encrypted backup is on, and writes compliance
//! reports that list the instances where it is off.
//!
//! The modules follow the pipeline: [`inventory`] streams and validates rows,
//! [`credentials`] finds how to authenticate, [`api`] sends one request and
//! classifies the response, [`scan`] runs the rate-limited worker pool, and
//! [`report`] writes the files. [`sim`] is the local API simulator that the
//! tests, the demo and the benchmark run against.

pub mod api;
pub mod app;
pub mod cli;
pub mod config;
pub mod credentials;
pub mod demo;
pub mod exit;
pub mod finding;
pub mod inventory;
pub mod report;
pub mod scan;
pub mod sim;
