//! One connection's HTTP/1.1, built on async-h1's public parts rather than
//! `async_h1::accept` (see [`conn`] for why):
//!
//! | file | owns |
//! | --- | --- |
//! | [`conn`] | the keep-alive loop: heads in, answers out, until it ends or becomes a stream |
//! | [`inbound`] | the reading side: request heads read, bodies framed exactly |
//! | [`vet`] | a request head parsed and vetted before http-types sees a byte of it |
//! | [`head`] | the heads of the server's answers, written by the server |
//! | [`download`] | a file written to a connection: its head, then its bytes by `sendfile` |
//! | [`events`] | the writer of an `/events` stream, from its head until it ends |

pub mod conn;
pub mod download;
pub mod events;
pub mod head;
pub mod inbound;
pub mod vet;
