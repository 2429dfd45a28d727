//! The library side of the `fleetjobs` package: the pieces of the server that benchmarks and
//! tests drive in-process, without the binary's command line. Today that is
//! [`device_plane`], the broker hooks over the engine (`benches/mqtt_jobs.rs` serves in-memory
//! MQTT sessions with them), and [`retained`], the durable retained messages the hooks keep.
//! Everything else stays in the binary (`src/main.rs`).

pub mod device_plane;
pub mod retained;
