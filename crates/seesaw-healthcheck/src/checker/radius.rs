//! RADIUS Access-Request (RFC 2865).

use std::fmt;

use md5::{Digest, Md5};
use ring::rand::{SecureRandom, SystemRandom};

use super::{CheckContext, CheckResult, Outcome};
use crate::dial;
use crate::target::Target;

const ACCESS_REQUEST: u8 = 1;
const ACCESS_ACCEPT: u8 = 2;
const ACCESS_REJECT: u8 = 3;
const ACCESS_CHALLENGE: u8 = 11;

const USER_NAME: u8 = 1;
const USER_PASSWORD: u8 = 2;
const SERVICE_TYPE: u8 = 6;
const NAS_IDENTIFIER: u8 = 32;
const NAS_PORT_TYPE: u8 = 61;

const SERVICE_TYPE_LOGIN: u32 = 1;
const NAS_PORT_TYPE_VIRTUAL: u32 = 5;

const HEADER_LENGTH: usize = 20;
/// Largest RADIUS packet (RFC 2865, section 3).
const MAX_PACKET: usize = 4096;
/// Longest User-Password plaintext (RFC 2865, section 5.2).
const MAX_PASSWORD: usize = 128;

/// The reply type a RADIUS check expects.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum RadiusResponse {
    Accept,
    Challenge,
    Reject,
    /// Any authenticated reply.
    Any,
}

impl RadiusResponse {
    /// Parses `accept`, `challenge`, `reject` or `any`; empty means `accept`.
    pub fn parse(text: &str) -> Result<RadiusResponse, String> {
        match text.to_ascii_lowercase().as_str() {
            "" | "accept" => Ok(RadiusResponse::Accept),
            "challenge" => Ok(RadiusResponse::Challenge),
            "reject" => Ok(RadiusResponse::Reject),
            "any" => Ok(RadiusResponse::Any),
            _ => Err(format!(
                "invalid RADIUS response {text:?}: expected accept, challenge, reject or any"
            )),
        }
    }

    fn accepts(self, code: u8) -> bool {
        match self {
            RadiusResponse::Accept => code == ACCESS_ACCEPT,
            RadiusResponse::Challenge => code == ACCESS_CHALLENGE,
            RadiusResponse::Reject => code == ACCESS_REJECT,
            RadiusResponse::Any => true,
        }
    }

    fn name(self) -> &'static str {
        match self {
            RadiusResponse::Accept => "accept",
            RadiusResponse::Challenge => "challenge",
            RadiusResponse::Reject => "reject",
            RadiusResponse::Any => "any",
        }
    }
}

/// A RADIUS authentication check.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct RadiusChecker {
    pub target: Target,
    pub username: String,
    pub password: String,
    /// The shared secret with the server.
    pub secret: String,
    pub response: RadiusResponse,
}

/// Leaves the password and the secret out of debug output.
impl fmt::Debug for RadiusChecker {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RadiusChecker")
            .field("target", &self.target)
            .field("username", &self.username)
            .field("response", &self.response)
            .finish_non_exhaustive()
    }
}

impl RadiusChecker {
    /// Builds a checker from `send` in the form `user:password:secret` and
    /// `receive` naming the expected reply.
    pub fn from_send(target: Target, send: &str, receive: &str) -> Result<RadiusChecker, String> {
        let parts: Vec<&str> = send.split(':').collect();
        let [username, password, secret] = parts[..] else {
            return Err("invalid RADIUS send: expected user:password:secret".to_string());
        };
        if password.len() > MAX_PASSWORD {
            return Err(format!(
                "RADIUS password is {} bytes, longer than the maximum of {MAX_PASSWORD}",
                password.len()
            ));
        }
        Ok(RadiusChecker {
            target,
            username: username.to_string(),
            password: password.to_string(),
            secret: secret.to_string(),
            response: RadiusResponse::parse(receive)?,
        })
    }

    pub(super) async fn check(&self, context: &CheckContext) -> CheckResult {
        let outcome = Outcome::start();
        let message = format!("RADIUS Access-Request to port {}", self.target.port);

        let mut random = [0; 17];
        if let Err(error) = SystemRandom::new().fill(&mut random) {
            return outcome.error(
                format!("{message}; failed to get random bytes"),
                format!("{error:?}"),
            );
        }
        let identifier = random[0];
        let authenticator: [u8; 16] = random[1..].try_into().expect("16 bytes");
        let request = self.encode_request(identifier, &authenticator, &context.hostname);

        let socket = match dial::connect_udp(&self.target) {
            Ok(socket) => socket,
            Err(error) => {
                return outcome.error(format!("{message}; failed to create socket"), error);
            }
        };
        if let Err(error) = socket.send(&request).await {
            return outcome.error(format!("{message}; failed to send request"), error);
        }
        let mut buffer = vec![0; MAX_PACKET];
        let length = match socket.recv(&mut buffer).await {
            Ok(length) => length,
            Err(error) => {
                return outcome.error(format!("{message}; failed to read response"), error);
            }
        };

        let reply = &buffer[..length];
        let Some(reply) = decode_reply(reply) else {
            return outcome.failure(format!("{message}; failed to decode response"));
        };
        if reply[1] != identifier {
            return outcome.failure(format!("{message}; identifier mismatch"));
        }
        if reply[4..20] != response_authenticator(reply, &authenticator, &self.secret) {
            return outcome.failure(format!(
                "{message}; response authenticator mismatch (incorrect secret?)"
            ));
        }

        let code = reply[0];
        let Some(name) = code_name(code) else {
            return outcome.failure(format!("{message}; unknown RADIUS response {code}"));
        };
        let message = format!("{message}; got RADIUS {name} response");
        if !self.response.accepts(code) {
            let expected = self.response.name();
            return outcome.failure(format!("{message}; want {expected} response"));
        }
        outcome.success(message)
    }

    /// Encodes an Access-Request with its attributes in a fixed order.
    fn encode_request(&self, identifier: u8, authenticator: &[u8; 16], nas: &str) -> Vec<u8> {
        let mut packet = vec![ACCESS_REQUEST, identifier, 0, 0];
        packet.extend_from_slice(authenticator);

        push_attribute(&mut packet, NAS_IDENTIFIER, nas.as_bytes());
        push_attribute(&mut packet, USER_NAME, self.username.as_bytes());
        let hidden = hide_password(self.password.as_bytes(), &self.secret, authenticator);
        push_attribute(&mut packet, USER_PASSWORD, &hidden);
        push_attribute(
            &mut packet,
            NAS_PORT_TYPE,
            &NAS_PORT_TYPE_VIRTUAL.to_be_bytes(),
        );
        push_attribute(&mut packet, SERVICE_TYPE, &SERVICE_TYPE_LOGIN.to_be_bytes());

        let length = packet.len() as u16;
        packet[2..4].copy_from_slice(&length.to_be_bytes());
        packet
    }
}

/// Appends one attribute; values longer than 253 bytes are cut to fit the
/// one-byte length.
fn push_attribute(packet: &mut Vec<u8>, kind: u8, value: &[u8]) {
    let value = &value[..value.len().min(253)];
    packet.push(kind);
    packet.push(value.len() as u8 + 2);
    packet.extend_from_slice(value);
}

/// Hides a User-Password as RFC 2865, section 5.2 describes: the password is
/// zero-padded to 16-byte blocks and each block is XORed with
/// MD5(secret || previous cipher block), the first with the authenticator.
fn hide_password(password: &[u8], secret: &str, authenticator: &[u8; 16]) -> Vec<u8> {
    let mut padded = password.to_vec();
    padded.resize(password.len().div_ceil(16) * 16, 0);

    let mut hidden = Vec::with_capacity(padded.len());
    let mut previous: Vec<u8> = authenticator.to_vec();
    for block in padded.chunks(16) {
        let mut hasher = Md5::new();
        hasher.update(secret.as_bytes());
        hasher.update(&previous);
        let key = hasher.finalize();
        let cipher: Vec<u8> = block.iter().zip(key.iter()).map(|(p, k)| p ^ k).collect();
        hidden.extend_from_slice(&cipher);
        previous = cipher;
    }
    hidden
}

/// Returns the reply truncated to its length field, when the header and
/// every attribute are well formed.
fn decode_reply(datagram: &[u8]) -> Option<&[u8]> {
    if datagram.len() < HEADER_LENGTH {
        return None;
    }
    let length = usize::from(u16::from_be_bytes([datagram[2], datagram[3]]));
    if !(HEADER_LENGTH..=MAX_PACKET).contains(&length) || length > datagram.len() {
        return None;
    }
    let packet = &datagram[..length];

    let mut attributes = &packet[HEADER_LENGTH..];
    while !attributes.is_empty() {
        let attribute_length = usize::from(*attributes.get(1)?);
        if attribute_length < 2 || attribute_length > attributes.len() {
            return None;
        }
        attributes = &attributes[attribute_length..];
    }
    Some(packet)
}

/// Computes MD5(code || id || length || request authenticator || attributes
/// || secret), the authenticator a server must put in its reply.
fn response_authenticator(
    reply: &[u8],
    request_authenticator: &[u8; 16],
    secret: &str,
) -> [u8; 16] {
    let mut hasher = Md5::new();
    hasher.update(&reply[..4]);
    hasher.update(request_authenticator);
    hasher.update(&reply[HEADER_LENGTH..]);
    hasher.update(secret.as_bytes());
    hasher.finalize().into()
}

fn code_name(code: u8) -> Option<&'static str> {
    match code {
        ACCESS_ACCEPT => Some("Access-Accept"),
        ACCESS_REJECT => Some("Access-Reject"),
        ACCESS_CHALLENGE => Some("Access-Challenge"),
        _ => None,
    }
}

impl fmt::Display for RadiusChecker {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "RADIUS {}", self.target)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target() -> Target {
        Target::plain("127.0.0.1".parse().unwrap(), 1812)
    }

    #[test]
    fn from_send_splits_credentials() {
        let checker = RadiusChecker::from_send(target(), "alice:pw:s3cret", "reject").unwrap();
        assert_eq!(checker.username, "alice");
        assert_eq!(checker.password, "pw");
        assert_eq!(checker.secret, "s3cret");
        assert_eq!(checker.response, RadiusResponse::Reject);
    }

    #[test]
    fn response_matches_reply_code() {
        let codes = [ACCESS_ACCEPT, ACCESS_REJECT, ACCESS_CHALLENGE];
        let table = [
            (RadiusResponse::Accept, [true, false, false]),
            (RadiusResponse::Reject, [false, true, false]),
            (RadiusResponse::Challenge, [false, false, true]),
            (RadiusResponse::Any, [true, true, true]),
        ];
        for (response, expected) in table {
            for (code, healthy) in codes.iter().zip(expected) {
                assert_eq!(
                    response.accepts(*code),
                    healthy,
                    "{response:?} against reply code {code}"
                );
            }
        }
    }

    #[test]
    fn response_parse_names() {
        assert_eq!(RadiusResponse::parse(""), Ok(RadiusResponse::Accept));
        assert_eq!(RadiusResponse::parse("Accept"), Ok(RadiusResponse::Accept));
        assert_eq!(RadiusResponse::parse("REJECT"), Ok(RadiusResponse::Reject));
        assert_eq!(
            RadiusResponse::parse("challenge"),
            Ok(RadiusResponse::Challenge)
        );
        assert_eq!(RadiusResponse::parse("any"), Ok(RadiusResponse::Any));
        let error = RadiusResponse::parse("ok").unwrap_err();
        assert!(error.contains("invalid RADIUS response \"ok\""), "{error}");
    }

    #[test]
    fn from_send_rejects_two_parts() {
        assert!(RadiusChecker::from_send(target(), "alice:pw", "").is_err());
        assert!(RadiusChecker::from_send(target(), "a:b:c:d", "").is_err());
    }

    #[test]
    fn hidden_password_round_trips() {
        let authenticator = [7; 16];
        let password = b"a password of more than sixteen bytes";
        let hidden = hide_password(password, "secret", &authenticator);
        assert_eq!(hidden.len(), 48);

        // Hiding is its own inverse only for the first block, so undo it
        // block by block as a server does.
        let mut previous = authenticator.to_vec();
        let mut plain = Vec::new();
        for block in hidden.chunks(16) {
            let mut hasher = Md5::new();
            hasher.update(b"secret");
            hasher.update(&previous);
            let key = hasher.finalize();
            plain.extend(block.iter().zip(key.iter()).map(|(c, k)| c ^ k));
            previous = block.to_vec();
        }
        assert_eq!(&plain[..password.len()], password);
        assert!(plain[password.len()..].iter().all(|byte| *byte == 0));
    }

    #[test]
    fn encode_request_sets_length_and_attribute_order() {
        let checker = RadiusChecker::from_send(target(), "bob:pw:s", "").unwrap();
        let packet = checker.encode_request(9, &[1; 16], "lb1");
        assert_eq!(packet[0], ACCESS_REQUEST);
        assert_eq!(packet[1], 9);
        assert_eq!(
            usize::from(u16::from_be_bytes([packet[2], packet[3]])),
            packet.len()
        );
        assert_eq!(&packet[20..25], &[NAS_IDENTIFIER, 5, b'l', b'b', b'1']);
        assert_eq!(&packet[25..30], &[USER_NAME, 5, b'b', b'o', b'b']);
        assert_eq!(&packet[30..32], &[USER_PASSWORD, 18]);
    }

    #[test]
    fn decode_reply_rejects_bad_attribute_length() {
        let mut reply = vec![ACCESS_ACCEPT, 1, 0, 23];
        reply.extend_from_slice(&[0; 16]);
        reply.extend_from_slice(&[18, 1, 0]);
        assert!(decode_reply(&reply).is_none());
        reply[21] = 3;
        assert!(decode_reply(&reply).is_some());
    }
}
