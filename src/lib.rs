//! Berth: a private container registry and its authenticating HTTPS gateway in one process.
//!
//! The life of one `docker push` request, module by module:
//!
//! 1. [`app`] has built a Pingora server with a rustls HTTPS listener ([`tls`]) whose
//!    application is the [`gateway`]. When client certificates are on, rustls verified the
//!    caller's certificate in the handshake ([`tls::client_cert`]) and the subject it names
//!    rides along with the connection.
//! 2. The [`gateway`] reads the request head and parses the path into a route
//!    ([`gateway::route`]): which operation on which repository.
//! 3. [`auth`] turns the `Authorization` header and the client certificate into an identity
//!    (argon2 for local users, a bind against LDAP for directory users, with a short cache of
//!    recent successes; JWT checks for bearer tokens).
//! 4. [`acl`] decides whether that identity may pull, push or delete in that repository;
//!    nothing reaches the registry engine otherwise.
//! 5. The [`registry`] engine performs the operation over [`storage`] (a data directory or
//!    an S3 bucket), in the CNCF registry's layout; upload bodies stream from the socket
//!    through a hashing writer on a blocking thread into `_uploads` (on S3, as multipart
//!    uploads), and become blobs in one atomic step once the digest matches.
//! 6. [`gateway::respond`] writes the response or the spec's JSON error, and [`metrics`]
//!    and the access log record it.
//!
//! Requests under `/ui/` go instead to the [`ui`], the built-in web pages, which checks the
//! same ACL for every repository it shows.
//!
//! [`config`] reads proxy.yaml; [`live`] holds the part of it that can change while serving
//! and reloads it when the file changes or on `SIGHUP`; [`audit`] writes the audit log;
//! [`cli`] is the command line.

pub mod acl;
pub mod app;
pub mod audit;
pub mod auth;
pub mod cli;
pub mod config;
pub mod gateway;
pub mod live;
pub mod metrics;
pub mod registry;
pub mod storage;
pub mod telemetry;
pub mod tls;
pub mod ui;
