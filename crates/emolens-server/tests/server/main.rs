//! emolens-server's integration tests, in one binary (one compile and link instead of one per
//! file): the API, campaigns on SQLite and PostgreSQL, reaction-video jobs and timelines, and the
//! web app in a real browser, each against a real server on a loopback port.

mod common;

mod api;
mod browser;
mod campaigns;
mod erasure;
mod limits;
mod live;
mod ondevice;
mod openapi;
mod trust;
mod videos;
mod workspaces;
