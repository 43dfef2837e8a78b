//! DNS query over UDP.

use std::fmt;
use std::net::IpAddr;

use hickory_proto::op::{Message, MessageType, Query, ResponseCode};
use hickory_proto::rr::{Name, RData, RecordType};

use super::{CheckResult, Outcome};
use crate::dial;
use crate::target::Target;

/// Largest DNS response over UDP without EDNS (RFC 1035, section 4.2.1).
const MAX_UDP_RESPONSE: usize = 512;

/// A DNS check: one query, and an answer that must match.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct DnsChecker {
    pub target: Target,
    /// The query name, fully qualified (with the trailing dot).
    pub name: String,
    pub query_type: RecordType,
    /// The address an A or AAAA answer must contain.
    pub answer: String,
}

impl DnsChecker {
    /// Builds a checker, qualifying `name` and rejecting a type other than A
    /// and AAAA or an `answer` that is not an address of that type.
    pub fn new(
        target: Target,
        name: &str,
        query_type: &str,
        answer: &str,
    ) -> Result<DnsChecker, String> {
        let query_type = match query_type.to_ascii_uppercase().as_str() {
            "A" => RecordType::A,
            "AAAA" => RecordType::AAAA,
            other => {
                return Err(format!(
                    "unsupported DNS query type {other:?}: only A and AAAA answers can be matched"
                ));
            }
        };
        let address: IpAddr = answer
            .parse()
            .map_err(|_| format!("DNS answer {answer:?} is not an IP address"))?;
        if address.is_ipv4() != (query_type == RecordType::A) {
            return Err(format!(
                "DNS answer {answer:?} is not an address for a {query_type} query"
            ));
        }
        let name = if name.ends_with('.') {
            name.to_string()
        } else {
            format!("{name}.")
        };
        Name::from_ascii(&name).map_err(|error| format!("invalid DNS name {name:?}: {error}"))?;

        Ok(DnsChecker {
            target,
            name,
            query_type,
            answer: address.to_string(),
        })
    }

    pub(super) async fn check(&self) -> CheckResult {
        let outcome = Outcome::start();
        let message = format!(
            "DNS {} IN {} query to port {}",
            self.name, self.query_type, self.target.port
        );
        // new() validated both.
        let name = Name::from_ascii(&self.name).expect("validated DNS name");
        let expected: IpAddr = self.answer.parse().expect("validated DNS answer");

        let mut query = Message::query();
        query.metadata.id = random_id();
        query.metadata.recursion_desired = true;
        query.add_query(Query::query(name.clone(), self.query_type));
        let request = match query.to_vec() {
            Ok(request) => request,
            Err(error) => {
                return outcome.error(format!("{message}; failed to encode query"), error);
            }
        };

        let socket = match dial::connect_udp(&self.target) {
            Ok(socket) => socket,
            Err(error) => {
                return outcome.error(format!("{message}; failed to create socket"), error);
            }
        };
        if let Err(error) = socket.send(&request).await {
            return outcome.error(format!("{message}; failed to send request"), error);
        }

        // Datagrams with another id are stale or forged replies; skip them
        // until the caller's timeout.
        let mut buffer = [0; MAX_UDP_RESPONSE];
        let response = loop {
            let length = match socket.recv(&mut buffer).await {
                Ok(length) => length,
                Err(error) => {
                    return outcome.error(format!("{message}; failed to read response"), error);
                }
            };
            match Message::from_vec(&buffer[..length]) {
                Ok(response) if response.metadata.id == query.metadata.id => break response,
                Ok(_) => continue,
                Err(error) => {
                    return outcome.error(format!("{message}; failed to decode response"), error);
                }
            }
        };

        if response.metadata.message_type != MessageType::Response {
            return outcome.failure(format!("{message}; not a query response"));
        }
        if response.metadata.response_code != ResponseCode::NoError {
            let code = u16::from(response.metadata.response_code);
            return outcome.failure(format!("{message}; non-zero response code - {code}"));
        }
        if response.answers.is_empty() {
            return outcome.failure(format!("{message}; no answers received"));
        }

        for record in &response.answers {
            if record.name != name || record.record_type() != self.query_type {
                continue;
            }
            let address: IpAddr = match &record.data {
                RData::A(a) => a.0.into(),
                RData::AAAA(aaaa) => aaaa.0.into(),
                _ => continue,
            };
            if address == expected {
                return outcome.success(format!("{message}; received answer {address}"));
            }
        }
        outcome.failure(format!("{message}; failed to match answer"))
    }
}

fn random_id() -> u16 {
    let mut bytes = [0; 2];
    // A failure leaves the id 0, which still works because the reply is
    // matched against whatever id the query carried.
    let _ = ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut bytes);
    u16::from_be_bytes(bytes)
}

impl fmt::Display for DnsChecker {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "DNS {} IN {} {}",
            self.name, self.query_type, self.target
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target() -> Target {
        Target::plain("127.0.0.1".parse().unwrap(), 53)
    }

    #[test]
    fn new_qualifies_name() {
        let checker = DnsChecker::new(target(), "www.example", "a", "192.0.2.1").unwrap();
        assert_eq!(checker.name, "www.example.");
        assert_eq!(checker.query_type, RecordType::A);
    }

    #[test]
    fn new_rejects_answer_of_other_family() {
        let error = DnsChecker::new(target(), "www.example", "AAAA", "192.0.2.1").unwrap_err();
        assert!(error.contains("AAAA"), "{error}");
    }

    #[test]
    fn new_rejects_unmatchable_type() {
        assert!(DnsChecker::new(target(), "www.example", "MX", "192.0.2.1").is_err());
    }
}
