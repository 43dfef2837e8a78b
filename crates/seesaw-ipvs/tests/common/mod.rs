//! Reading the hex fixtures under tests/fixtures.

#![allow(dead_code)]

use std::path::PathBuf;

/// Decodes hex, ignoring whitespace.
pub fn hex(text: &str) -> Vec<u8> {
    let digits: Vec<u8> = text.bytes().filter(|b| !b.is_ascii_whitespace()).collect();
    assert!(
        digits.len().is_multiple_of(2),
        "odd number of hex digits in {text:?}"
    );
    digits
        .chunks(2)
        .map(|pair| {
            let pair = std::str::from_utf8(pair).unwrap();
            u8::from_str_radix(pair, 16).unwrap_or_else(|_| panic!("invalid hex byte {pair:?}"))
        })
        .collect()
}

/// One netlink message of a captured datagram.
#[derive(Debug, Clone)]
pub struct Captured {
    /// True for a message sent by ipvsadm (`NLM_F_REQUEST` set).
    pub request: bool,
    pub message_type: u16,
    pub flags: u16,
    pub sequence: u32,
    pub port: u32,
    /// The whole message, header included.
    pub bytes: Vec<u8>,
}

/// A capture file: `>`/`<` lines of hex datagrams, `#` comments.
pub struct Capture {
    pub name: String,
    pub messages: Vec<Captured>,
}

/// Generic netlink controller's family id.
const GENL_ID_CTRL: u16 = 0x10;

impl Capture {
    pub fn load(relative: &str) -> Capture {
        let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures")
            .join(relative);
        let text = std::fs::read_to_string(&path)
            .unwrap_or_else(|e| panic!("cannot read fixture {}: {e}", path.display()));
        let mut messages = Vec::new();
        for line in text.lines() {
            let (request, datagram) = match line.split_once(' ') {
                Some((">", rest)) => (true, hex(rest)),
                Some(("<", rest)) => (false, hex(rest)),
                _ => continue,
            };
            messages.extend(split(&datagram, request));
        }
        Capture {
            name: relative.to_owned(),
            messages,
        }
    }

    /// Returns the IPVS family id: the type of the first request not sent
    /// to the controller.
    pub fn family_id(&self) -> u16 {
        self.messages
            .iter()
            .find(|m| m.request && m.message_type != GENL_ID_CTRL)
            .unwrap_or_else(|| panic!("{}: no IPVS request", self.name))
            .message_type
    }

    /// Returns the IPVS requests, in order.
    pub fn requests(&self) -> Vec<&Captured> {
        let family = self.family_id();
        self.messages
            .iter()
            .filter(|m| m.request && m.message_type == family)
            .collect()
    }

    /// Returns the request of a one-command capture. ipvsadm sends `GET_INFO`
    /// first, then the command.
    pub fn command_request(&self) -> &Captured {
        let requests = self.requests();
        assert_eq!(
            requests.len(),
            2,
            "{}: expected GET_INFO and one command",
            self.name
        );
        assert_eq!(
            requests[0].bytes[16], 15,
            "{}: first request is not GET_INFO",
            self.name
        );
        requests[1]
    }

    /// Returns the kernel's replies to a request: same sequence number, and same
    /// port id unless the request left it 0 for the kernel to fill in.
    pub fn replies_to(&self, request: &Captured) -> Vec<&Captured> {
        self.messages
            .iter()
            .filter(|m| {
                !m.request
                    && m.sequence == request.sequence
                    && (request.port == 0 || m.port == request.port)
            })
            .collect()
    }
}

fn split(datagram: &[u8], request: bool) -> Vec<Captured> {
    let mut messages = Vec::new();
    let mut offset = 0;
    while offset + 16 <= datagram.len() {
        let field = |at: usize, len: usize| &datagram[offset + at..offset + at + len];
        let length = u32::from_ne_bytes(field(0, 4).try_into().unwrap()) as usize;
        messages.push(Captured {
            request,
            message_type: u16::from_ne_bytes(field(4, 2).try_into().unwrap()),
            flags: u16::from_ne_bytes(field(6, 2).try_into().unwrap()),
            sequence: u32::from_ne_bytes(field(8, 4).try_into().unwrap()),
            port: u32::from_ne_bytes(field(12, 4).try_into().unwrap()),
            bytes: datagram[offset..offset + length].to_vec(),
        });
        offset += (length + 3) & !3;
    }
    messages
}

/// Returns the errno of an `NLMSG_ERROR` message, positive, or 0 for an ack.
pub fn ack_errno(message: &Captured) -> i32 {
    assert_eq!(message.message_type, 2, "not an NLMSG_ERROR message");
    -i32::from_ne_bytes(message.bytes[16..20].try_into().unwrap())
}
